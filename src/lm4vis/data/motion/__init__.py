"""Motion forecasting datasets: Argoverse 1.1, ETH/UCY and a traffic simulator, vectorised alike.

    from lm4vis.data.motion import SimTraffic, SimTrafficConfig
    ds = SimTraffic(SimTrafficConfig(split="val", num_scenes=256))
    batch = ds.collate([ds[i] for i in range(8)])
    batch["vectors"]        # float32 (B, P, V, F): polylines of vectors in the focal frame
    ds.info                 # MotionInfo(name, split, obs_len, pred_len, hz, has_map, ...)

`DATASETS` names each dataset with its config class. The engine reaches them as registered
datasets (``data.name: sim-traffic | argoverse1 | eth-ucy``, light configs in
`lm4vis.data.configs`) through one data source, `lm4vis.data.motion.source.MotionSource`.
"""

from .argoverse1 import Argoverse1, Argoverse1Config, ArgoverseLanes, read_sequence, read_vector_map
from .base import MotionConfig, MotionDataset, MotionInfo
from .eth_ucy import SCENES, EthUcy, EthUcyConfig
from .frame import FocalFrame, focal_frame, to_local, to_world
from .sim_roads import LAYOUTS
from .sim_traffic import GROUND_TRUTH_KEYS, MANEUVERS, SimTraffic, SimTrafficConfig, generate_scene
from .vectorize import FEATURES, NUM_FEATURES, POLYLINE_TYPES, Lane, Scene, collate, vectorize

#: Registered name -> (config class, dataset class).
DATASETS: dict[str, tuple[type[MotionConfig], type[MotionDataset]]] = {
    "argoverse1": (Argoverse1Config, Argoverse1),
    "eth-ucy": (EthUcyConfig, EthUcy),
    "sim-traffic": (SimTrafficConfig, SimTraffic),
}

__all__ = [
    "DATASETS", "MotionConfig", "MotionDataset", "MotionInfo",
    "Argoverse1", "Argoverse1Config", "ArgoverseLanes", "read_sequence", "read_vector_map",
    "EthUcy", "EthUcyConfig", "SCENES",
    "SimTraffic", "SimTrafficConfig", "generate_scene", "LAYOUTS", "MANEUVERS", "GROUND_TRUTH_KEYS",
    "FocalFrame", "focal_frame", "to_local", "to_world",
    "FEATURES", "NUM_FEATURES", "POLYLINE_TYPES", "Lane", "Scene", "collate", "vectorize",
]
