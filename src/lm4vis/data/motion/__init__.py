"""Motion forecasting datasets, vectorised alike: polylines of vectors in the focal frame."""

from .argoverse1 import Argoverse1, Argoverse1Config, ArgoverseLanes, read_sequence, read_vector_map
from .base import MotionConfig, MotionDataset, MotionInfo
from .eth_ucy import SCENES, EthUcy, EthUcyConfig
from .frame import FocalFrame, focal_frame, to_local, to_world
from .vectorize import FEATURES, NUM_FEATURES, POLYLINE_TYPES, Lane, Scene, collate, vectorize

__all__ = [
    "MotionConfig", "MotionDataset", "MotionInfo",
    "Argoverse1", "Argoverse1Config", "ArgoverseLanes", "read_sequence", "read_vector_map",
    "EthUcy", "EthUcyConfig", "SCENES",
    "FocalFrame", "focal_frame", "to_local", "to_world",
    "FEATURES", "NUM_FEATURES", "POLYLINE_TYPES", "Lane", "Scene", "collate", "vectorize",
]
