"""What the motion datasets share: their description and one item pipeline.

Their options are the light configs of their registrations (`lm4vis.data.configs`:
`MotionDataConfig` and a subclass per dataset), declared once: a dataset is built from a run's
``data`` section and a split, ``SimTraffic(cfg.data, "val")``.

Each dataset reads a `Scene` (``_scene``) in its own format and the base class turns it into an
item with `vectorize` (``_item``, which a dataset may extend), kept as an ``.npz`` in the
dataset's cache folder when it has one. Scenes found unusable while an item is read (possibly
in a DataLoader worker) come back as `Skipped` markers that `collate` counts into
``batch["skipped"]``, and a scene that lost tracks to ``max_agents`` as a `Counted` item (used,
and counted once under ``agents-beyond-max_agents``); problems found while indexing are counted
on ``skips``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..cache import atomic_save_npz
from ..configs import MotionDataConfig
from ..skips import BadInputError, Counted, SkipLog, Skipped
from .vectorize import DROPPED_AGENTS, FEATURES, POLYLINE_TYPES, Scene, Vectorized, collate, vectorize


@dataclass(frozen=True)
class MotionInfo:
    """What a model needs to know about a motion dataset before it sees an item.

    Args:
        name: registered dataset name (``argoverse1``, ``eth-ucy``, ``sim-traffic``).
        split: ``train``, ``val`` or ``test``.
        obs_len: observed steps per scene.
        pred_len: future steps to forecast (``future`` is (pred_len, 2)).
        hz: steps per second.
        has_map: items carry lane polylines (Argoverse with ``map_root``, the simulator).
        has_future: items of this split carry ground truth (not Argoverse's test split).
        feature_names: what each of the F numbers of a vector means.
        polyline_types: names of the ``polyline_type`` values.
        extra_keys: item keys beyond the shared ones (the simulator's ground truth).
    """

    name: str
    split: str
    obs_len: int
    pred_len: int
    hz: float
    has_map: bool
    has_future: bool
    feature_names: tuple[str, ...] = FEATURES
    polyline_types: tuple[str, ...] = POLYLINE_TYPES
    extra_keys: tuple[str, ...] = ()

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bad_scene(policy: str, dataset: str, reason: str, detail: str, fix: str) -> Skipped:
    """An unusable scene met while reading an item: raise `BadInputError` under ``fail``, else
    the `Skipped` marker that `collate` counts (a worker's own counters never reach the engine).

    Args:
        policy: ``skip`` or ``fail``.
        dataset: name used in the message.
        reason: short key the skip is counted under.
        detail: which scene, and what is wrong with it.
        fix: what the user can do.
    """
    if policy == "fail":
        raise BadInputError(f"{dataset}: {detail}; {fix}")
    return Skipped(reason, detail)


def _counted(item: dict[str, Tensor]) -> dict[str, Tensor]:
    """A scene that lost tracks to ``max_agents`` is used, and counted once (`Counted`)."""
    return Counted(item, DROPPED_AGENTS) if int(item.get("dropped_agents", 0)) else item


class MotionDataset(Dataset):
    """Base of the motion datasets: items are dicts of tensors (`vectorize`'s module doc).

    Subclasses set ``info``, ``cfg`` (their `MotionDataConfig` subclass), ``split``,
    ``options`` (what their items depend on: the key of the cache folder and of scenes kept in
    memory), ``skips`` and ``cache`` (a cache folder for processed items, or None), and
    implement ``__len__`` and ``_scene`` (or ``_item``, to add keys of their own).
    """

    info: MotionInfo
    cfg: MotionDataConfig
    split: str
    options: dict[str, Any]
    skips: SkipLog
    cache: Path | None = None
    collate = staticmethod(collate)

    def _scene(self, index: int) -> Scene | Skipped:
        """Scene ``index`` in world coordinates, or why it cannot be used."""
        raise NotImplementedError

    def _item(self, index: int) -> dict[str, Tensor] | Skipped:
        scene = self._scene(index)
        if isinstance(scene, Skipped):
            return scene
        return self._vectorize(scene).item

    def _vectorize(self, scene: Scene) -> Vectorized:
        cfg = self.cfg
        return vectorize(scene, self.info.pred_len, cfg.max_agents, cfg.lane_radius,
                         cfg.lane_piece_vectors, cfg.min_heading_distance)

    def _cache_name(self, index: int) -> str:
        """File name of item ``index`` in the cache folder."""
        return f"{index}.npz"

    def __getitem__(self, index: int) -> dict[str, Tensor] | Skipped:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.info.name} of length {len(self)}")
        index %= len(self)
        cached = self.cache / self._cache_name(index) if self.cache is not None else None
        if cached is not None and cached.is_file():
            with np.load(cached, allow_pickle=False) as f:
                return _counted({key: torch.from_numpy(f[key]) for key in f.files})
        item = self._item(index)
        if cached is not None and not isinstance(item, Skipped):  # a skip is re-read: cheap, rare
            atomic_save_npz(cached, **{key: value.numpy() for key, value in item.items()})
        return item if isinstance(item, Skipped) else _counted(item)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.info.split!r}, scenes={len(self)}, "
                f"has_map={self.info.has_map}, has_future={self.info.has_future})")


__all__ = ["MotionInfo", "MotionDataConfig", "MotionDataset", "bad_scene"]
