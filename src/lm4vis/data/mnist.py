"""MNIST-layout datasets: Fashion-MNIST and any directory of IDX files ("idx").

A directory holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` and the ``t10k-``
(or ``test-``) pair, each raw or ``.gz``; ``train-images.idx3-ubyte`` spellings work too.
The val split is the tail of the train file, so train/val/test never share an image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from .base import DatasetInfo, DatasetNotFoundError, ImageDataset, as_tensor_image, check_split
from .idx import IDXError, read_idx

FASHION_MNIST_ENV = "LM4VIS_FASHION_MNIST"
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's package installs it
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_VAL = 5000  # train = first 55k of the train file, val = its last 5k

_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


def find_idx_file(root: str, split_file: str, kind: str) -> str | None:
    """Path of the images or labels IDX file of ``split_file`` in ``root``, or None.

    Args:
        root: the directory.
        split_file: ``train`` or ``test`` (the file pair, not the dataset split).
        kind: ``images`` or ``labels``.
    """
    ndim = 3 if kind == "images" else 1
    for prefix in _PREFIXES[split_file]:
        for sep in ("-", "."):
            for suffix in ("", ".gz"):
                path = os.path.join(root, f"{prefix}-{kind}{sep}idx{ndim}-ubyte{suffix}")
                if os.path.isfile(path):
                    return path
    return None


class IDXDataset(ImageDataset):
    """Images and labels of an MNIST-layout directory, held in memory as uint8 arrays.

    Args:
        root: directory with the IDX files.
        split: ``train``, ``val`` (last ``val_size`` of the train file) or ``test``.
        name: dataset name for ``info``.
        class_names: one name per label; None gives ``class_0..`` for labels ``0..max``.
        val_size: train-file images kept for val; None takes one twelfth (5k of 60k).
        image_size: side of the returned images; None keeps the native size.
        with_masks: must be False (IDX datasets have no masks).
        transform: applied to the image tensor only.
        install_hint: how to get the files, for the error when they are missing.
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        name: str = "idx",
        class_names: Sequence[str] | None = None,
        val_size: int | None = None,
        image_size: int | None = None,
        with_masks: bool = False,
        transform: Callable[[Tensor], Any] | None = None,
        install_hint: str = "check the path: it must hold train-images-idx3-ubyte(.gz) and the "
        "train-labels / t10k-images / t10k-labels files",
    ) -> None:
        check_split(split)
        file_split = "test" if split == "test" else "train"
        paths = {kind: find_idx_file(root, file_split, kind) for kind in ("images", "labels")}
        missing = [k for k, p in paths.items() if p is None]
        if not os.path.isdir(root) or missing:
            what = f"no directory {root}" if not os.path.isdir(root) else (
                f"no {file_split} {' and '.join(missing)} IDX file in {root} "
                f"(found: {', '.join(sorted(os.listdir(root))) or 'nothing'})"
            )
            raise DatasetNotFoundError(f"{name}: {what}; {install_hint}")
        images = read_idx(paths["images"])
        labels = read_idx(paths["labels"])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise IDXError(f"{paths['images']}: expected uint8 images [N,H,W], got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise IDXError(
                f"{paths['labels']}: expected {len(images)} labels for {paths['images']}, "
                f"got shape {labels.shape}"
            )
        if labels.min(initial=0) < 0:
            raise IDXError(f"{paths['labels']}: negative labels; labels must be 0..num_classes-1")
        if class_names is None:
            class_names = [f"class_{i}" for i in range(self._num_classes(root, labels))]
        elif int(labels.max(initial=0)) >= len(class_names):
            raise IDXError(f"{paths['labels']}: label {int(labels.max())} but only {len(class_names)} classes")
        n = len(images)
        if split == "test":
            indices = np.arange(n)
        else:
            n_val = n // 12 if val_size is None else val_size
            if not 0 < n_val < n:
                raise ValueError(f"{name}: cannot carve {n_val} val images from {n} train images")
            indices = np.arange(n - n_val) if split == "train" else np.arange(n - n_val, n)
        native = images.shape[1]
        if images.shape[1] != images.shape[2] and image_size is None:
            raise ValueError(f"{name}: images are {images.shape[1]}x{images.shape[2]}, not square; pass image_size")
        info = DatasetInfo(
            name=name,
            num_classes=len(class_names),
            in_chans=1,
            image_size=image_size or native,
            class_names=tuple(class_names),
            has_masks=False,
        )
        super().__init__(info, indices, labels, with_masks=with_masks, transform=transform)
        self.images = images
        self.root = root

    @staticmethod
    def _num_classes(root: str, labels: np.ndarray) -> int:
        # Count over both label files so that train and test agree on num_classes.
        top = int(labels.max(initial=0))
        for file_split in _PREFIXES:
            path = find_idx_file(root, file_split, "labels")
            if path is not None:
                top = max(top, int(read_idx(path).max(initial=0)))
        return top + 1

    def _load(self, source_index: int) -> tuple[Tensor, Tensor | None]:
        return as_tensor_image(self.images[source_index]), None


def fashion_mnist_root(root: str | None = None) -> str:
    """Directory of the Fashion-MNIST IDX files: ``root``, else $LM4VIS_FASHION_MNIST, else
    Debian's install location.

    Args:
        root: explicit directory, or None.
    """
    return root or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR


def build_fashion_mnist(
    split: str = "train", root: str | None = None, **kwargs: Any
) -> IDXDataset:
    """Fashion-MNIST: train = first 55k of the train file, val = last 5k, test = t10k.

    Args:
        split: ``train``, ``val`` or ``test``.
        root: directory of the IDX files (default: $LM4VIS_FASHION_MNIST or Debian's path).
        **kwargs: ``image_size``, ``with_masks``, ``transform`` of `IDXDataset`.
    """
    folder = fashion_mnist_root(root)
    hint = (
        f"install it with `{FASHION_MNIST_INSTALL}` (Debian), or point ${FASHION_MNIST_ENV} "
        "or root= at a directory holding the four Fashion-MNIST IDX files"
    )
    return IDXDataset(
        folder, split, name="fashion-mnist", class_names=FASHION_MNIST_CLASSES,
        val_size=FASHION_MNIST_VAL, install_hint=hint, **kwargs,
    )


def build_idx(split: str = "train", root: str | None = None, **kwargs: Any) -> IDXDataset:
    """Any MNIST-layout directory; labels ``0..max`` over both label files.

    Args:
        split: ``train``, ``val`` (last twelfth of the train file) or ``test``.
        root: the directory (required).
        **kwargs: ``image_size``, ``with_masks``, ``transform``, ``val_size`` of `IDXDataset`.
    """
    if root is None:
        raise ValueError("dataset 'idx' needs root=<directory with train-images-idx3-ubyte(.gz) ...>")
    return IDXDataset(root, split, name="idx", **kwargs)
