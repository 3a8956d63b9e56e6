"""What every lm4vis dataset shares: its description, its errors, and one item pipeline.

Each dataset reads a *source item* at its native size (``_load``) and the base class does the
rest in one place: the split is a table of source indices, ``limit`` and subsets cut that table,
``image_size`` resizes (bilinear for images, nearest for masks), ``transform`` touches the image
only. Items are tensors so the default DataLoader collate works unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .indexed import IndexedDataset
from .transforms import resize_image, resize_mask

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before it sees an item.

    Args:
        name: registered dataset name (``fashion-mnist``, ``cluttered-animal-mnist``, ...).
        num_classes: number of labels; labels are ``0..num_classes-1``.
        in_chans: image channels (1 grayscale, 3 RGB).
        image_size: side of the square images the dataset returns.
        class_names: one name per label.
        has_masks: whether items can carry a foreground mask (``with_masks=True``).
    """

    name: str
    num_classes: int
    in_chans: int
    image_size: int
    class_names: tuple[str, ...]
    has_masks: bool

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"DatasetInfo({self.name!r}): {len(self.class_names)} class names for "
                f"{self.num_classes} classes; give one name per class"
            )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_names"] = list(self.class_names)
        return out


class DatasetNotFoundError(FileNotFoundError):
    """A dataset whose files are not on this machine; the message says how to get them."""


def check_split(split: str, allowed: Sequence[str] = SPLITS) -> str:
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(allowed)}")
    return split


class ImageDataset(IndexedDataset):
    """Base of every lm4vis dataset: items ``(image uint8 [C,H,W], label)`` or, with masks,
    ``(image, label, mask bool [H,W])``.

    Subclasses pass ``info``, ``indices`` (source index of each item, in item order) and
    ``source_targets`` (label of every source index), and implement ``_load``, which returns the
    image at its native size; items whose size differs from ``info.image_size`` are resized here.

    Args:
        info: the dataset's description; ``info.image_size`` is the size items come out at.
        indices: source index of each item of this split.
        source_targets: label of every source index (so ``targets`` and balanced subsets are free).
        with_masks: return the foreground mask as a third element.
        transform: applied to the image tensor only, after resizing.
    """

    def __init__(
        self,
        info: DatasetInfo,
        indices: np.ndarray,
        source_targets: np.ndarray,
        *,
        with_masks: bool = False,
        transform: Callable[[Tensor], Any] | None = None,
    ) -> None:
        if with_masks and not info.has_masks:
            raise ValueError(
                f"{info.name} has no foreground masks; use a cluttered-* dataset or "
                "masks-folder for masks, or pass with_masks=False"
            )
        self.info = info
        self.indices = np.asarray(indices, dtype=np.int64)
        self.source_targets = np.asarray(source_targets, dtype=np.int64)
        self.with_masks = with_masks
        self.transform = transform

    # -- what a subclass provides ------------------------------------------------------------
    def _load(self, source_index: int) -> tuple[Tensor, Tensor | None]:
        """Image uint8 [C,h,w] and, if the dataset has masks, its bool mask [h,w]."""
        raise NotImplementedError

    # -- the shared item pipeline ------------------------------------------------------------
    def __getitem__(self, index: int) -> tuple:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.info.name} of length {len(self)}")
        source = int(self.indices[index])
        image, mask = self._load(source)
        size = self.info.image_size
        if image.shape[-2:] != (size, size):
            image = resize_image(image, size)
            if mask is not None:
                mask = resize_mask(mask, size)
        label = int(self.source_targets[source])
        if self.transform is not None:
            image = self.transform(image)
        if self.with_masks:
            return image, label, mask
        return image, label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.info.name!r}, items={len(self)}, "
            f"image_size={self.info.image_size}, in_chans={self.info.in_chans}, "
            f"num_classes={self.info.num_classes}, with_masks={self.with_masks})"
        )


def stratified_split(
    labels: np.ndarray, fractions: Sequence[float], seed: int
) -> list[np.ndarray]:
    """Split indices ``0..len(labels)-1`` into parts with the same class mix, deterministically.

    Each part comes back shuffled (by the same seed) so that its first items cover every class:
    ``limit`` keeps the first items, and a class-sorted order would keep only one class.

    Args:
        labels: label of every index.
        fractions: share of each part; must sum to 1.
        seed: seed of the permutation; the same seed gives the same parts.
    """
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        # Cumulative rounding keeps every member in exactly one part.
        bounds = np.round(np.cumsum([0.0, *fractions]) * len(members)).astype(int)
        for p in range(len(fractions)):
            parts[p].append(members[bounds[p] : bounds[p + 1]])
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def class_balanced_subset(ds: ImageDataset, per_class: int, seed: int = 0) -> ImageDataset:
    """At most ``per_class`` items of every class, picked at random but deterministically.

    Args:
        ds: an lm4vis dataset (its ``targets`` are read; no image is loaded).
        per_class: items to keep per class (fewer when a class has fewer).
        seed: seed of the pick; the result is shuffled so that classes interleave.
    """
    if per_class <= 0:
        raise ValueError(f"per_class must be positive, got {per_class}")
    targets = np.asarray(ds.targets)
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(targets == cls))[:per_class] for cls in np.unique(targets)
    ]
    positions = rng.permutation(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
    return ds.subset(positions)


def as_tensor_image(array: np.ndarray) -> Tensor:
    """uint8 array [H,W] or [H,W,C] -> uint8 tensor [C,H,W].

    Always a copy: sources are often read-only memory shared between splits.
    """
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.array(array, dtype=np.uint8, order="C", copy=True))
