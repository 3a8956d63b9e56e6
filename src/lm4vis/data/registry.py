"""Dataset names and the one factory, `build_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .animal import build_animal_mnist
from .base import ImageDataset
from .cluttered import ClutteredDataset
from .folders import FOLDER_SPLITS, build_imagefolder, build_masks_folder
from .mnist import build_fashion_mnist, build_idx


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    Args:
        builder: ``builder(split, root, **kwargs) -> ImageDataset``.
        needs_root: ``root`` must be given (users' data) rather than found on the machine.
        has_masks: items can carry foreground masks.
        description: one line for listings.
    """

    builder: Callable[..., ImageDataset]
    needs_root: bool
    has_masks: bool
    description: str


def _cluttered(base_builder: Callable[..., ImageDataset]) -> Callable[..., ImageDataset]:
    def build(
        split: str = "train",
        root: str | None = None,
        *,
        image_size: int | None = None,
        with_masks: bool = False,
        transform: Callable[[Tensor], Any] | None = None,
        seed: int = 0,
        canvas_size: int = 64,
        distractors: int = 4,
        **clutter: Any,
    ) -> ClutteredDataset:
        # Objects and distractor fragments come from the same split, so val/test scenes never
        # show a training image.
        base = base_builder(split, root)
        return ClutteredDataset(
            base, canvas_size=canvas_size, distractors=distractors, seed=seed,
            image_size=image_size, with_masks=with_masks, transform=transform, **clutter,
        )

    return build


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(build_fashion_mnist, False, False, "Fashion-MNIST, 28x28 gray, 10 classes (55k/5k/10k)"),
    "animal-mnist": DatasetSpec(build_animal_mnist, False, False, "Animal-MNIST silhouettes, 28x28 gray, 10 classes (8k/1k/1k)"),
    "cluttered-fashion-mnist": DatasetSpec(
        _cluttered(build_fashion_mnist), False, True, "Fashion-MNIST objects in clutter, 64x64, exact masks"
    ),
    "cluttered-animal-mnist": DatasetSpec(
        _cluttered(build_animal_mnist), False, True, "Animal-MNIST objects in clutter, 64x64, exact masks"
    ),
    "imagefolder": DatasetSpec(build_imagefolder, True, False, "root/[split/]<class>/*.png|jpg (ImageNet layout)"),
    "idx": DatasetSpec(build_idx, True, False, "a directory of MNIST-format IDX files"),
    "masks-folder": DatasetSpec(build_masks_folder, True, True, "root/images/*.png + root/masks/*.png [+ labels.csv]"),
}
_SEEDED = {"cluttered-fashion-mnist", "cluttered-animal-mnist"}


def build_dataset(
    name: str,
    split: str = "train",
    root: str | None = None,
    image_size: int | None = None,
    seed: int = 0,
    with_masks: bool = False,
    limit: int | None = None,
    transform: Callable[[Tensor], Any] | None = None,
    **options: Any,
) -> ImageDataset:
    """Build a registered dataset; items are ``(image uint8 [C,H,W], label)`` or, with masks,
    ``(image, label, mask bool [H,W])``.

    Args:
        name: one of `DATASETS`.
        split: ``train``, ``val`` or ``test`` (``all`` too for imagefolder and masks-folder).
            Splits are fixed on every machine; ``seed`` does not change them.
        root: data directory; required for imagefolder, idx and masks-folder, an override for
            the others.
        image_size: side of the returned images; None keeps the native size (28 for the MNISTs,
            the canvas for cluttered-*, 224 for imagefolder).
        seed: seed of the cluttered scene generator (other datasets have nothing random).
        with_masks: return foreground masks (cluttered-* and masks-folder only).
        limit: keep only the first ``limit`` items, for quick runs.
        transform: applied to the image tensor only.
        **options: dataset-specific options: ``canvas_size``, ``distractors``, ``scale_range``,
            ``fragment_range``, ``mask_threshold`` for cluttered-*; ``in_chans`` for
            imagefolder/masks-folder; ``val_size`` for idx.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if spec.needs_root and root is None:
        raise ValueError(f"dataset {name!r} needs root=<path to your data> ({spec.description})")
    if split == "all" and name not in ("imagefolder", "masks-folder"):
        raise ValueError("split 'all' exists only for imagefolder and masks-folder; use one of train, val, test")
    if split not in FOLDER_SPLITS:
        raise ValueError(f"unknown split {split!r}; use train, val or test")
    kwargs: dict[str, Any] = dict(image_size=image_size, with_masks=with_masks, transform=transform, **options)
    if name in _SEEDED:
        kwargs["seed"] = seed
    return spec.builder(split, root, **kwargs).limit(limit)
