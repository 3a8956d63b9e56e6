"""Motion forecasting datasets: Argoverse 1.1, ETH/UCY and a traffic simulator, vectorised alike.

    from lm4vis.data.motion import SimTraffic, SimTrafficDataConfig
    ds = SimTraffic(SimTrafficDataConfig(num_val=256, cache=False), split="val")
    batch = ds.collate([ds[i] for i in range(8)])
    batch["vectors"]        # float32 (B, P, V, F): polylines of vectors in the focal frame
    ds.info                 # MotionInfo(name, split, obs_len, pred_len, hz, has_map, ...)

`DATASETS` names each dataset with its config class: the light config it is registered with
(`lm4vis.data.configs`), the ``data`` section of a run, so that every option is declared once.
The engine reaches them as registered datasets (``data.name: sim-traffic | argoverse1 |
eth-ucy``) through one data source, `lm4vis.data.motion.source.MotionSource`.
"""

from ..configs import Argoverse1DataConfig, EthUcyDataConfig, MotionDataConfig, SimTrafficDataConfig
from .argoverse1 import Argoverse1, ArgoverseLanes, read_sequence, read_vector_map
from .base import MotionDataset, MotionInfo
from .eth_ucy import SCENES, EthUcy
from .frame import FocalFrame, focal_frame, to_local, to_world
from .sim_roads import LAYOUTS
from .sim_traffic import GROUND_TRUTH_KEYS, MANEUVERS, SimTraffic, generate_scene, split_size
from .vectorize import FEATURES, NUM_FEATURES, POLYLINE_TYPES, Lane, Scene, collate, vectorize

#: Registered name -> (config class, dataset class).
DATASETS: dict[str, tuple[type[MotionDataConfig], type[MotionDataset]]] = {
    "argoverse1": (Argoverse1DataConfig, Argoverse1),
    "eth-ucy": (EthUcyDataConfig, EthUcy),
    "sim-traffic": (SimTrafficDataConfig, SimTraffic),
}

__all__ = [
    "DATASETS", "MotionDataConfig", "MotionDataset", "MotionInfo",
    "Argoverse1", "Argoverse1DataConfig", "ArgoverseLanes", "read_sequence", "read_vector_map",
    "EthUcy", "EthUcyDataConfig", "SCENES",
    "SimTraffic", "SimTrafficDataConfig", "generate_scene", "split_size", "LAYOUTS", "MANEUVERS", "GROUND_TRUTH_KEYS",
    "FocalFrame", "focal_frame", "to_local", "to_world",
    "FEATURES", "NUM_FEATURES", "POLYLINE_TYPES", "Lane", "Scene", "collate", "vectorize",
]
