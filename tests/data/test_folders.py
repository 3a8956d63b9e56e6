"""ImageFolder and masks-folder on tiny trees written here with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lm4vis.data import DatasetNotFoundError, build_dataset


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _image(k: int, size: tuple[int, int] = (12, 16), rgb: bool = True) -> np.ndarray:
    rng = np.random.default_rng(k)
    return rng.integers(0, 256, (*size, 3) if rgb else size, dtype=np.uint8)


def _class_tree(root: Path, classes: dict[str, int], rgb: bool = True, ext: str = "png") -> None:
    k = 0
    for cls, n in classes.items():
        for i in range(n):
            _save(root / cls / f"{i:03d}.{ext}", _image(k, rgb=rgb))
            k += 1


@pytest.mark.parametrize(
    "split, size", [("train", 16), ("val", 2), ("test", 2), ("all", 20)]
)
def test_flat_imagefolder_is_split_per_class(tmp_path: Path, split: str, size: int) -> None:
    _class_tree(tmp_path, {"cat": 10, "dog": 10})
    ds = build_dataset("imagefolder", split=split, root=str(tmp_path))
    assert len(ds) == size
    assert ds.info.class_names == ("cat", "dog") and ds.info.in_chans == 3 and ds.info.image_size == 224
    assert sorted(np.bincount(ds.targets).tolist()) == [size // 2, size // 2]
    image, label = ds[0]
    assert image.shape == (3, 224, 224) and image.dtype == torch.uint8 and label in (0, 1)


def test_flat_imagefolder_splits_are_disjoint(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"a": 7, "b": 9, "c": 5})
    files = [set(build_dataset("imagefolder", split=s, root=str(tmp_path)).files) for s in ("train", "val", "test")]
    assert sum(map(len, files)) == 21 and len(set.union(*files)) == 21


def test_split_imagefolder_carves_val_from_train(tmp_path: Path) -> None:
    _class_tree(tmp_path / "train", {"a": 10, "b": 10})
    _class_tree(tmp_path / "test", {"a": 2, "b": 3})
    sets = {s: build_dataset("imagefolder", split=s, root=str(tmp_path), image_size=8) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in sets.items()} == {"train": 18, "val": 2, "test": 5}
    assert set(sets["train"].files).isdisjoint(sets["val"].files)
    assert all("/test/" in f for f in sets["test"].files)
    assert sets["val"][0][0].shape == (3, 8, 8)


def test_grayscale_folder_has_one_channel(tmp_path: Path) -> None:
    _class_tree(tmp_path, {"x": 4, "y": 4}, rgb=False)
    ds = build_dataset("imagefolder", split="all", root=str(tmp_path), image_size=10)
    assert ds.info.in_chans == 1 and ds[0][0].shape == (1, 10, 10)


def test_center_crop_keeps_the_middle(tmp_path: Path) -> None:
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, 10:30] = 255  # the middle 20x20 square is white, the sides black
    _save(tmp_path / "only" / "a.png", array)
    image, _ = build_dataset("imagefolder", split="all", root=str(tmp_path), image_size=20)[0]
    assert image.shape == (3, 20, 20) and image.min() == 255


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "no directory"),
        ("empty", "no class folders"),
        ("no_images", "no images"),
    ],
)
def test_imagefolder_errors_name_the_path(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "no_images":
        (root / "cls").mkdir()
        (root / "cls" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetNotFoundError, match=message) as info:
        build_dataset("imagefolder", split="all", root=str(root))
    assert str(root) in str(info.value)


def _masks_tree(root: Path, n: int = 10, labels: list[str] | None = None) -> dict[str, np.ndarray]:
    masks = {}
    for i in range(n):
        name = f"img{i}"
        _save(root / "images" / f"{name}.png", _image(i, size=(16, 16)))
        mask = np.zeros((16, 16), np.uint8)
        mask[i : i + 5, 2 : 4 + i] = 255 if i % 2 else 1  # nonzero of any value is foreground
        _save(root / "masks" / f"{name}.png", mask)
        masks[name] = mask > 0
    if labels is not None:
        rows = ["name,label"] + [f"img{i}.png,{labels[i]}" for i in range(n)]
        (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return masks


def test_masks_folder_round_trip(tmp_path: Path) -> None:
    masks = _masks_tree(tmp_path)
    ds = build_dataset("masks-folder", split="all", root=str(tmp_path), with_masks=True)
    assert len(ds) == 10 and ds.info.has_masks and ds.info.image_size == 16 and ds.info.num_classes == 1
    for i in range(len(ds)):
        image, label, mask = ds[i]
        name = Path(ds.files[i]).stem
        assert label == 0 and image.shape == (3, 16, 16) and mask.dtype == torch.bool
        np.testing.assert_array_equal(mask.numpy(), masks[name])
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), np.asarray(Image.open(ds.files[i])))


@pytest.mark.parametrize(
    "labels, names, expected",
    [
        (["0", "2"] * 5, ("class_0", "class_1", "class_2"), {0, 2}),
        (["dog", "cat"] * 5, ("cat", "dog"), {0, 1}),
    ],
)
def test_masks_folder_labels_csv(tmp_path: Path, labels, names, expected) -> None:
    _masks_tree(tmp_path, labels=labels)
    ds = build_dataset("masks-folder", split="all", root=str(tmp_path))
    assert ds.info.class_names == names and set(ds.targets.tolist()) == expected
    for i in range(len(ds)):
        k = int(Path(ds.files[i]).stem[3:])
        assert names[ds[i][1]] == (f"class_{labels[k]}" if labels[k].isdigit() else labels[k])


def test_masks_folder_resize_and_split(tmp_path: Path) -> None:
    _masks_tree(tmp_path, n=20)
    ds = build_dataset("masks-folder", split="test", root=str(tmp_path), image_size=8, with_masks=True)
    image, _, mask = ds[0]
    assert len(ds) == 2 and image.shape == (3, 8, 8) and mask.shape == (8, 8)


def test_masks_folder_missing_mask_is_named(tmp_path: Path) -> None:
    _masks_tree(tmp_path, n=3)
    (tmp_path / "masks" / "img1.png").unlink()
    with pytest.raises(FileNotFoundError, match="img1"):
        build_dataset("masks-folder", split="all", root=str(tmp_path))


def test_masks_folder_unlabelled_image_is_named(tmp_path: Path) -> None:
    _masks_tree(tmp_path, n=3, labels=["a", "b", "a"])
    _save(tmp_path / "images" / "extra.png", _image(9, size=(16, 16)))
    _save(tmp_path / "masks" / "extra.png", np.ones((16, 16), np.uint8))
    with pytest.raises(ValueError, match="extra"):
        build_dataset("masks-folder", split="all", root=str(tmp_path))
