"""Fashion-MNIST from Debian's dataset-fashion-mnist package (skipped when not installed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.data import build_dataset
from lm4vis.data.mnist import FASHION_MNIST_CLASSES, fashion_mnist_root, find_idx_file

pytestmark = pytest.mark.skipif(
    find_idx_file(fashion_mnist_root(), "train", "images") is None,
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


@pytest.mark.parametrize("split, size", [("train", 55000), ("val", 5000), ("test", 10000)])
def test_fashion_mnist_splits(split: str, size: int) -> None:
    ds = build_dataset("fashion-mnist", split=split)
    assert len(ds) == size
    assert ds.info.num_classes == 10 and ds.info.class_names == FASHION_MNIST_CLASSES
    assert ds.info.in_chans == 1 and ds.info.image_size == 28
    image, label = ds[-1]
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8 and 0 <= label < 10
    # every class is present (the files are not class-sorted)
    assert np.bincount(ds.targets, minlength=10).min() > size // 20


def test_fashion_mnist_train_and_val_do_not_overlap() -> None:
    train, val = build_dataset("fashion-mnist", "train"), build_dataset("fashion-mnist", "val")
    assert train.indices.max() < val.indices.min()
    assert len(train) + len(val) == 60000


def test_fashion_mnist_resize_limit_transform() -> None:
    ds = build_dataset("fashion-mnist", "test", image_size=32, limit=7, transform=lambda x: x.float() / 255)
    assert len(ds) == 7 and ds.info.image_size == 32
    image, _ = ds[6]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32 and 0 < image.max() <= 1
