"""The data source of the motion datasets: a run's ``data`` section -> each split's scenes.

One source serves ``sim-traffic``, ``argoverse1`` and ``eth-ucy`` (see
`lm4vis.train.datamodule.DataSource`). It hands the run's ``data`` section (the light config
`lm4vis.data.configs.MotionDataConfig` subclass each dataset is registered with, which is also
the loader's own) and a split to the loader, and limits a split to ``limit_train`` /
``limit_val`` scenes. Nothing is estimated
from the data (the focal frame normalises every scene), so `resolve` returns the config as is.

Bad input is never silent: problems found while indexing are counted on the split's ``skips``
(ETH/UCY's unreadable lines, stray files beside Argoverse's CSVs); problems found while a scene
is read (no AGENT, a focal track too short, a NaN coordinate) come back as markers that the
motion collate counts in ``batch["skipped"]``, as it counts the tracks left out by
``max_agents``. Both reach the run summary's ``skipped`` section.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ...train.config import ConfigError, RunConfig
from ..base import DatasetNotFoundError
from ..cache import cache_key
from ..skips import SkipLog
from .argoverse1 import Argoverse1
from .base import MotionDataset, MotionInfo
from .eth_ucy import EthUcy
from .sim_traffic import SimTraffic

#: Registered name -> the loader (built from the run's ``data`` section and a split).
LOADERS: dict[str, type[MotionDataset]] = {"sim-traffic": SimTraffic, "argoverse1": Argoverse1, "eth-ucy": EthUcy}


#: Scenes kept in memory (``data.keep_in_memory``), by (loader options, split, index); shared by
#: every source of this process, so that the runs of one ``compare`` read each scene once.
_IN_MEMORY: dict[tuple[str, str, int], Any] = {}


class LimitedScenes(Dataset):
    """The first ``size`` scenes of a motion dataset, with its ``info``, ``skips`` and collate;
    optionally kept in memory once read.

    Args:
        base: the split's dataset.
        size: how many of its scenes to keep.
        memory_key: when given, scenes are kept in this process's memory under this key (what
            the loader's items depend on, its ``options``, so that no other config reads them).
    """

    def __init__(self, base: MotionDataset, size: int, memory_key: str | None = None) -> None:
        self.base, self.size, self.memory_key = base, min(size, len(base)), memory_key

    @property
    def info(self) -> MotionInfo:
        return self.base.info

    @property
    def skips(self) -> SkipLog:
        return self.base.skips

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < self.size:
            raise IndexError(f"scene {index} out of range for {self.size} scenes")
        if self.memory_key is None:
            return self.base[index]
        key = (self.memory_key, self.base.split, index)
        if key not in _IN_MEMORY:
            _IN_MEMORY[key] = self.base[index]  # items are never changed in place: the collate copies
        return _IN_MEMORY[key]


class MotionSource:
    """The data source of a registered motion dataset (see the module docstring).

    Args:
        cfg: the run config (``data``: a `MotionDataConfig` subclass).
    """

    #: Motion items carry no augmentation to seed by epoch.
    accepts_epoch = False

    def __init__(self, cfg: RunConfig) -> None:
        if cfg.data.name not in LOADERS:
            raise ConfigError(f"data.name={cfg.data.name!r} has no motion loader; choose one of {', '.join(LOADERS)}")
        self.cfg = cfg
        self._splits: dict[str, MotionDataset] = {}

    def split(self, name: str) -> MotionDataset:
        """The loader of split ``name``, built once (Argoverse and ETH/UCY index files here)."""
        if name not in self._splits:
            loader = LOADERS[self.cfg.data.name]
            try:
                self._splits[name] = loader(self.cfg.data, name)
            except DatasetNotFoundError as e:
                raise ConfigError(f"{e}; check data.root") from None
        return self._splits[name]

    @property
    def info(self) -> MotionInfo:
        """The training split's `MotionInfo` (features per vector, horizon, map, ...)."""
        return self.split("train").info

    @property
    def notes(self) -> list[str]:
        """What the run summary should say about the data: a split without lanes is agents only."""
        info = self.info
        if info.has_map:
            return []
        if self.cfg.data.name == "argoverse1":
            return ["no map: scenes are agents only (set data.map_root to the map_files folder of "
                    "hd_maps.tar.gz for lane polylines)"]
        return [f"no map: {info.name} scenes are agents only"]

    def resolve(self) -> RunConfig:
        """Nothing is estimated from motion data; the validation split must have futures."""
        val = self.split(self.cfg.data.val_split)
        if not val.info.has_future:
            raise ConfigError(f"the {self.cfg.data.val_split} split of {self.cfg.data.name} has no ground-truth "
                              "futures to score; set data.val_split=val")
        return self.cfg

    def dataset(self, split: str, train: bool) -> Dataset:
        """Split ``split``, limited to ``data.limit_train`` (training) or ``data.limit_val``
        scenes."""
        d = self.cfg.data
        base = self.split(split)
        limit = d.limit_train if split == "train" else d.limit_val
        size = len(base) if limit is None else min(limit, len(base))
        memory_key = f"{d.name}:{cache_key(**base.options)}" if d.keep_in_memory else None
        if size == len(base) and memory_key is None:
            return base
        return LimitedScenes(base, size, memory_key)


__all__ = ["MotionSource", "LimitedScenes", "LOADERS"]
