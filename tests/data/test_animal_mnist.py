"""Animal-MNIST from the animal-mnist wheel's data files (skipped when not installed)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from lm4vis.data import build_dataset
from lm4vis.data.animal import ANIMAL_MNIST_CLASSES

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("animal_mnist") is None,
    reason="Animal-MNIST not installed (pip install --no-deps animal-mnist)",
)


def test_animal_mnist_splits_cover_10k_without_overlap() -> None:
    splits = {s: build_dataset("animal-mnist", split=s) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 8000, "val": 1000, "test": 1000}
    seen = np.concatenate([d.indices for d in splits.values()])
    assert len(seen) == 10000 and len(np.unique(seen)) == 10000
    for ds in splits.values():
        # stratified: every class has exactly its share
        counts = np.bincount(ds.targets, minlength=10)
        assert (counts == len(ds) // 10).all()


def test_animal_mnist_items_and_info() -> None:
    ds = build_dataset("animal-mnist", split="val", limit=20)
    assert ds.info.num_classes == 10 and ds.info.class_names == ANIMAL_MNIST_CLASSES
    assert len(ds) == 20
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8 and image.max() > 100
    # the first items of a split mix classes (limit must not keep one class only)
    assert len(set(ds.targets.tolist())) >= 5


def test_animal_mnist_split_is_fixed() -> None:
    a = build_dataset("animal-mnist", split="test", seed=0)
    b = build_dataset("animal-mnist", split="test", seed=123)  # seed is not the split's seed
    np.testing.assert_array_equal(a.indices, b.indices)


def test_animal_mnist_never_imports_the_package() -> None:
    build_dataset("animal-mnist", split="val", limit=1)[0]
    assert "animal_mnist" not in sys.modules
