"""Animal-MNIST: 10k silhouettes of 10 animals, 28x28, from the ``animal-mnist`` wheel.

The package is located with `importlib.util.find_spec` and never imported: its loader imports
tensorflow, which lm4vis neither needs nor installs. Its two files are gzipped pickles of numpy
arrays (images uint8 [10000,28,28], labels int64 [10000], sorted by class); they are read with
the numpy-only unpickler of `safe_pickle`.

The package has no split, so a fixed-seed stratified 80/10/10 split is made here (the same on
every machine and for every ``seed`` of the caller, so test sets stay comparable).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import zlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from torch import Tensor

from .base import (
    DatasetInfo, DatasetNotFoundError, ImageDataset, as_tensor_image, check_split, stratified_split,
)
from .safe_pickle import load_array

ANIMAL_MNIST_PACKAGE = "animal_mnist"
ANIMAL_MNIST_ENV = "LM4VIS_ANIMAL_MNIST"
ANIMAL_MNIST_INSTALL = "pip install --no-deps animal-mnist"
ANIMAL_MNIST_FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")
# Order of the package's description ("Bear, Bird, Cat, Cow, Dog, Elephant, Giraffe, Horse,
# Sheep, Zebra"); checked against the images of each label (label 6 is the long-necked one,
# label 9 the striped one).
ANIMAL_MNIST_CLASSES = (
    "bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra",
)
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
SPLIT_SEED = 20240101  # fixed on purpose: not the caller's seed


def animal_mnist_root(root: str | None = None) -> str:
    """Directory of the two Animal-MNIST files: ``root``, else $LM4VIS_ANIMAL_MNIST, else the
    installed package's ``data/Animal_MNIST``.

    Args:
        root: explicit directory, or None.
    """
    folder = root or os.environ.get(ANIMAL_MNIST_ENV)
    if folder:
        return folder
    spec = importlib.util.find_spec(ANIMAL_MNIST_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(
            f"animal-mnist: the {ANIMAL_MNIST_PACKAGE} package is not installed; "
            f"run `{ANIMAL_MNIST_INSTALL}` (--no-deps: its tensorflow dependency is not needed)"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "Animal_MNIST")


def _read_pickle_gz(path: str) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            return load_array(f, name=path)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupt gzip data ({e}); reinstall with `{ANIMAL_MNIST_INSTALL}`") from e


@lru_cache(maxsize=2)
def load_animal_arrays(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N,28,28] and labels int64 [N] of Animal-MNIST, validated, read-only.

    Args:
        folder: directory holding the two gzipped pickles.
    """
    paths = [os.path.join(folder, f) for f in ANIMAL_MNIST_FILES]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DatasetNotFoundError(
            f"animal-mnist: missing {', '.join(missing)}; run `{ANIMAL_MNIST_INSTALL}` "
            f"or point ${ANIMAL_MNIST_ENV} or root= at a directory holding {' and '.join(ANIMAL_MNIST_FILES)}"
        )
    images, labels = (_read_pickle_gz(p) for p in paths)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: expected images [N,28,28], got {images.shape}")
    if images.dtype != np.uint8:
        if images.min() < 0 or images.max() > 255:
            raise ValueError(f"{paths[0]}: pixel values outside 0..255 ({images.dtype})")
        images = images.astype(np.uint8)
    labels = labels.reshape(-1).astype(np.int64)
    if len(labels) != len(images):
        raise ValueError(f"{paths[1]}: {len(labels)} labels for {len(images)} images")
    if labels.min() < 0 or labels.max() >= len(ANIMAL_MNIST_CLASSES):
        raise ValueError(f"{paths[1]}: labels must be 0..{len(ANIMAL_MNIST_CLASSES) - 1}, "
                         f"got {labels.min()}..{labels.max()}")
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


class AnimalMNIST(ImageDataset):
    """Animal-MNIST with a fixed stratified 80/10/10 train/val/test split.

    Args:
        split: ``train``, ``val`` or ``test``.
        root: directory of the two files (default: $LM4VIS_ANIMAL_MNIST or the package's).
        image_size: side of the returned images; None keeps 28.
        with_masks: must be False (no masks; use ``cluttered-animal-mnist``).
        transform: applied to the image tensor only.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | None = None,
        *,
        image_size: int | None = None,
        with_masks: bool = False,
        transform: Callable[[Tensor], Any] | None = None,
    ) -> None:
        check_split(split)
        images, labels = load_animal_arrays(animal_mnist_root(root))
        parts = dict(zip(SPLIT_FRACTIONS, stratified_split(labels, list(SPLIT_FRACTIONS.values()), SPLIT_SEED)))
        info = DatasetInfo(
            name="animal-mnist",
            num_classes=len(ANIMAL_MNIST_CLASSES),
            in_chans=1,
            image_size=image_size or images.shape[1],
            class_names=ANIMAL_MNIST_CLASSES,
            has_masks=False,
        )
        super().__init__(info, parts[split], labels, with_masks=with_masks, transform=transform)
        self.images = images

    def _load(self, source_index: int) -> tuple[Tensor, Tensor | None]:
        return as_tensor_image(self.images[source_index]), None


def build_animal_mnist(split: str = "train", root: str | None = None, **kwargs: Any) -> AnimalMNIST:
    """Animal-MNIST (see `AnimalMNIST`).

    Args:
        split: ``train``, ``val`` or ``test``.
        root: directory of the two files, or None for the installed package.
        **kwargs: ``image_size``, ``with_masks``, ``transform``.
    """
    return AnimalMNIST(split, root, **kwargs)
