"""What every point-cloud dataset shares: its description, its bad-input policy, one item
pipeline and the collate.

A dataset reads a *source cloud* already fitted to ``num_points`` (``_cloud``); the base class
does the rest in one place: unit-sphere normalisation, the training augmentation drawn from
``(seed, epoch, index)``, and the conversion to an item::

    {"points": float32 (num_points, 3 + C),   # x, y, z, then info.channels[3:] (normals)
     "label":  int64 (),
     "mask":   bool (num_points,)}            # only when info.has_masks: True = object point

Keys are ``int`` item indices or ``(index, epoch)`` pairs, as `EpochSampler(with_epoch=True)`
yields them; the epoch only changes the augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from ...ops import farthest_point_sample
from ..indexed import IndexedDataset
from ..skips import SkipLog, Skipped, check_policy, drop_skipped
from .transforms import PointAugment, normalize_unit_sphere

XYZ: tuple[str, ...] = ("x", "y", "z")
NORMALS: tuple[str, ...] = ("nx", "ny", "nz")
SHORT_CLOUD_POLICIES: tuple[str, ...] = ("resample", "fail")
#: Seed of the with-replacement resampling of short clouds (mixed with the cloud's index).
RESAMPLE_SEED = 0x5EED


@dataclass(frozen=True)
class PointCloudInfo:
    """What a model needs to know about a point-cloud dataset before it sees an item.

    Args:
        name: registered dataset name (``modelnet40-h5``, ``shapes3d``, ...).
        num_classes: number of labels; labels are ``0..num_classes-1``.
        class_names: one name per label.
        num_points: points per item.
        channels: the meaning of each column of ``points``: x, y, z, then e.g. nx, ny, nz.
        has_masks: items carry a per-point foreground mask (``mask``).
        up_axis: the coordinate pointing up (1 = y, ModelNet's convention): rotation
            augmentations turn about it.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    num_points: int
    channels: tuple[str, ...] = XYZ
    has_masks: bool = False
    up_axis: int = 1

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"PointCloudInfo({self.name!r}): {len(self.class_names)} class names for "
                f"{self.num_classes} classes; give one name per class"
            )
        if self.num_points <= 0:
            raise ValueError(f"{self.name}: num_points must be positive, got {self.num_points}")
        if tuple(self.channels[:3]) != XYZ:
            raise ValueError(f"{self.name}: channels must start with x, y, z, got {self.channels}")
        if self.up_axis not in (0, 1, 2):
            raise ValueError(f"{self.name}: up_axis must be 0 (x), 1 (y) or 2 (z), got {self.up_axis}")

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def inputs_key(self) -> str:
        """The item key of the model's input (`ClassificationTask` reads its batches by it)."""
        return "points"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_names"], out["channels"] = list(self.class_names), list(self.channels)
        return out


@dataclass(frozen=True)
class BadInputPolicy:
    """What a loader does with each kind of bad input (see `lm4vis.data.skips`).

    Args:
        short_cloud: a cloud with fewer points than ``num_points``: ``resample`` (repeat
            random points, counted as ``short-cloud-resampled``) or ``fail``.
        nonfinite: NaN/Inf coordinates: ``skip`` (counted) or ``fail``.
        unreadable: a file that cannot be parsed: ``skip`` (counted) or ``fail``.
    """

    short_cloud: str = "resample"
    nonfinite: str = "skip"
    unreadable: str = "skip"

    def __post_init__(self) -> None:
        if self.short_cloud not in SHORT_CLOUD_POLICIES:
            raise ValueError(f"short_cloud={self.short_cloud!r} is unknown; choose resample or fail")
        check_policy("nonfinite", self.nonfinite)
        check_policy("unreadable", self.unreadable)


def check_split(split: str, allowed: Sequence[str], dataset: str) -> str:
    """``split``, or a ValueError naming the splits ``dataset`` has."""
    if split not in allowed:
        raise ValueError(f"{dataset} has no split {split!r}; use one of {', '.join(allowed)}")
    return split


def resample_rng(*parts: int) -> np.random.Generator:
    """The generator that pads a short cloud: fixed by the cloud's identity, not by the run."""
    return np.random.default_rng(np.random.SeedSequence([RESAMPLE_SEED, *parts]))


def fit_num_points(
    points: np.ndarray, mask: np.ndarray | None, num_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Exactly ``num_points`` rows: farthest point sampling (from row 0) of a larger cloud, or
    every row plus random repeats of a smaller one.

    Args:
        points: ``(n, C)`` float32, finite.
        mask: ``(n,)`` bool or None; follows the rows.
        num_points: rows wanted.
        rng: draws the repeats of a short cloud.
    """
    n = len(points)
    if n == num_points:
        return points, mask
    if n > num_points:
        rows = farthest_point_sample(torch.from_numpy(np.ascontiguousarray(points[None, :, :3])), num_points)[0].numpy()
    else:
        rows = np.concatenate([np.arange(n), rng.choice(n, num_points - n, replace=True)])
    return points[rows], None if mask is None else mask[rows]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation's generator of one item in one epoch."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


class PointCloudDataset(IndexedDataset):
    """Base of every lm4vis point-cloud dataset (see the module docstring for items).

    Subclasses pass ``info``, ``indices`` (source index of each item) and ``source_targets``
    (label of every source index), and implement ``_cloud``.

    Args:
        info: the dataset's description.
        indices: source index of each item, in item order.
        source_targets: label of every source index.
        augment: training augmentation, or None (evaluation).
        seed: the run seed the augmentation is drawn from.
        normalize: centre each cloud and scale it into the unit sphere before augmenting.
        policy: what to do with bad input.
        skips: the log that indexing already counted into (a fresh one when None).
    """

    def __init__(
        self,
        info: PointCloudInfo,
        indices: np.ndarray,
        source_targets: np.ndarray,
        *,
        augment: PointAugment | None = None,
        seed: int = 0,
        normalize: bool = False,
        policy: BadInputPolicy = BadInputPolicy(),
        skips: SkipLog | None = None,
    ) -> None:
        self.info = info
        self.indices = np.asarray(indices, dtype=np.int64)
        self.source_targets = np.asarray(source_targets, dtype=np.int64)
        self.augment, self.seed, self.normalize, self.policy = augment, seed, normalize, policy
        self.skips = skips if skips is not None else SkipLog(info.name)

    # -- what a subclass provides ------------------------------------------------------------
    def _cloud(self, source_index: int) -> tuple[np.ndarray, np.ndarray | None] | Skipped:
        """Points ``(num_points, num_channels)`` float32 and mask ``(num_points,)`` bool or
        None, or a `Skipped` marker for a cloud found bad only now."""
        raise NotImplementedError

    # -- the shared item pipeline ------------------------------------------------------------
    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor] | Skipped:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.info.name} of length {len(self)}")
        index %= len(self)
        source = int(self.indices[index])
        cloud = self._cloud(source)
        if isinstance(cloud, Skipped):
            return cloud
        points, mask = cloud
        if self.normalize:
            points = normalize_unit_sphere(points)
        if self.augment is not None:
            normals_at = self.info.channels.index("nx") if "nx" in self.info.channels else None
            points, mask = self.augment(points, mask, item_rng(self.seed, epoch, index),
                                        self.info.up_axis, normals_at)
        item = {
            # Copies: sources are often arrays shared by every item (and read-only caches).
            "points": torch.tensor(points, dtype=torch.float32),
            "label": torch.tensor(self.source_targets[source], dtype=torch.long),
        }
        if self.info.has_masks:
            item["mask"] = torch.tensor(mask, dtype=torch.bool)
        return item

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.info.name!r}, items={len(self)}, "
            f"num_points={self.info.num_points}, channels={','.join(self.info.channels)}, "
            f"num_classes={self.info.num_classes}, has_masks={self.info.has_masks}, "
            f"skipped={self.skips.total})"
        )


def collate_points(items: list[dict[str, torch.Tensor] | Skipped]) -> dict[str, Any]:
    """Stack items into a batch, dropping `Skipped` markers.

    Returns:
        The stacked keys of the items (``points`` (B, num_points, C), ``label`` (B,),
        ``mask`` (B, num_points)), none of them when every item was skipped, and
        ``skipped``: {reason: count} of the markers dropped from this batch.
    """
    kept, skipped = drop_skipped(items)
    batch: dict[str, Any] = default_collate(kept) if kept else {}
    batch["skipped"] = skipped
    return batch


__all__ = ["XYZ", "NORMALS", "PointCloudInfo", "BadInputPolicy", "PointCloudDataset", "collate_points",
           "fit_num_points", "resample_rng", "item_rng", "check_split"]
