"""`build_dataset`: names, errors with install hints, limit, subsets and batching."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lm4vis.data import DATASETS, DatasetInfo, DatasetNotFoundError, build_dataset, class_balanced_subset
from lm4vis.data import animal


@pytest.mark.parametrize(
    "name, env, hint",
    [
        ("fashion-mnist", "LM4VIS_FASHION_MNIST", "apt-get install dataset-fashion-mnist"),
        ("cluttered-fashion-mnist", "LM4VIS_FASHION_MNIST", "apt-get install dataset-fashion-mnist"),
        ("animal-mnist", "LM4VIS_ANIMAL_MNIST", "pip install --no-deps animal-mnist"),
        ("cluttered-animal-mnist", "LM4VIS_ANIMAL_MNIST", "pip install --no-deps animal-mnist"),
    ],
)
def test_missing_dataset_says_how_to_get_it(tmp_path: Path, monkeypatch, name: str, env: str, hint: str) -> None:
    monkeypatch.setenv(env, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match=hint) as info:
        build_dataset(name)
    assert isinstance(info.value, FileNotFoundError) and str(tmp_path / "nowhere") in str(info.value)


def test_missing_animal_package_says_how_to_get_it(monkeypatch) -> None:
    monkeypatch.delenv("LM4VIS_ANIMAL_MNIST", raising=False)
    monkeypatch.setattr(animal.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match="pip install --no-deps animal-mnist"):
        build_dataset("animal-mnist")


def test_explicit_root_overrides_the_default(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        build_dataset("fashion-mnist", root=str(tmp_path))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(name="mnist"), ValueError, "unknown dataset 'mnist'"),
        (dict(name="imagefolder"), ValueError, "needs root"),
        (dict(name="idx"), ValueError, "needs root"),
        (dict(name="masks-folder"), ValueError, "needs root"),
        (dict(name="idx", root="/x", split="dev"), ValueError, "unknown split"),
        (dict(name="idx", root="/x", split="all"), ValueError, "split 'all'"),
        (dict(name="idx", root="/nonexistent-dir"), DatasetNotFoundError, "no directory /nonexistent-dir"),
    ],
)
def test_argument_errors(kwargs, error, message: str) -> None:
    with pytest.raises(error, match=message):
        build_dataset(**kwargs)


def test_registered_names() -> None:
    assert set(DATASETS) == {
        "fashion-mnist", "animal-mnist", "cluttered-fashion-mnist", "cluttered-animal-mnist",
        "imagefolder", "idx", "masks-folder",
    }
    assert {n for n, s in DATASETS.items() if s.has_masks} == {
        "cluttered-fashion-mnist", "cluttered-animal-mnist", "masks-folder",
    }


def test_masks_requested_from_a_dataset_without_masks(tiny_idx_dir: Path) -> None:
    with pytest.raises(ValueError, match="has no foreground masks"):
        build_dataset("idx", root=str(tiny_idx_dir), with_masks=True)


@pytest.mark.parametrize("limit, size", [(None, 22), (5, 5), (100, 22)])
def test_limit_keeps_the_first_items(tiny_idx_dir: Path, limit, size: int) -> None:
    full = build_dataset("idx", root=str(tiny_idx_dir))
    ds = build_dataset("idx", root=str(tiny_idx_dir), limit=limit)
    assert len(ds) == size
    assert all(torch.equal(ds[i][0], full[i][0]) for i in range(size))
    with pytest.raises(IndexError):
        ds[size]


def test_class_balanced_subset(tiny_idx_dir: Path) -> None:
    ds = build_dataset("idx", root=str(tiny_idx_dir))  # 22 train items, labels i % 3
    sub = class_balanced_subset(ds, per_class=2, seed=0)
    assert len(sub) == 6 and np.bincount(sub.targets).tolist() == [2, 2, 2]
    assert sub.info == ds.info
    again = class_balanced_subset(ds, per_class=2, seed=0)
    np.testing.assert_array_equal(sub.indices, again.indices)
    assert all(sub[i][1] == int(sub.targets[i]) for i in range(len(sub)))


def test_items_batch_with_the_default_collate(tiny_idx_dir: Path) -> None:
    ds = build_dataset("idx", root=str(tiny_idx_dir), image_size=12)
    images, labels = next(iter(DataLoader(ds, batch_size=5)))
    assert images.shape == (5, 1, 12, 12) and images.dtype == torch.uint8 and labels.dtype == torch.int64


@pytest.mark.skipif(importlib.util.find_spec("animal_mnist") is None, reason="pip install --no-deps animal-mnist")
def test_cluttered_build_options() -> None:
    ds = build_dataset(
        "cluttered-animal-mnist", split="val", image_size=32, limit=3, with_masks=True,
        canvas_size=48, distractors=2, seed=5,
    )
    assert ds.info == DatasetInfo(
        "cluttered-animal-mnist", 10, 1, 32, ds.info.class_names, True
    ) and ds.canvas_size == 48 and ds.distractors == 2
    image, label, mask = ds[2]
    assert image.shape == (1, 32, 32) and mask.shape == (32, 32) and mask.any()
    # the object and its label come from the same split's item
    assert label == build_dataset("animal-mnist", split="val")[2][1]


def test_info_checks_class_names() -> None:
    with pytest.raises(ValueError, match="class names"):
        DatasetInfo("x", 3, 1, 28, ("a", "b"), False)
    assert DatasetInfo("x", 2, 1, 28, ("a", "b"), False).to_dict()["class_names"] == ["a", "b"]
