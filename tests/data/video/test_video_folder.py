"""video-folder on small class trees of real videos in several containers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from video_files import write_video

from lm4vis.data.base import DatasetNotFoundError
from lm4vis.data.video import build_video_dataset, build_video_folder

SMALL = dict(num_frames=4, image_size=16)
# one container per class, so the tree exercises several demuxers and decoders
CODECS = {"push": ("libvpx-vp9", "webm"), "pull": ("mpeg4", "mp4"), "spin": ("libvpx", "mkv")}


def _tree(root: Path, per_class: int) -> None:
    for cls, (codec, suffix) in CODECS.items():
        for i in range(per_class):
            write_video(root / cls / f"{i}.{suffix}", 6, codec=codec, width=24, height=16)
    (root / "push" / "notes.txt").write_text("not a video")  # ignored: not a video extension


@pytest.fixture(scope="module")
def flat_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flat")
    _tree(root, 10)
    return root


@pytest.mark.parametrize("split, size", [("train", 24), ("val", 3), ("test", 3), ("all", 30)])
def test_one_tree_is_split_per_class(flat_tree: Path, split: str, size: int) -> None:
    ds = build_video_folder(split, str(flat_tree), **SMALL)
    assert len(ds) == size and ds.info.class_names == ("pull", "push", "spin")
    if split != "all":
        assert sorted(ds.targets.tolist()) == sorted([0, 1, 2] * (size // 3))
    assert ds.clip.train == (split == "train") and ds.clip.flip is True


def test_splits_of_one_tree_are_disjoint(flat_tree: Path) -> None:
    parts = [set(build_video_folder(s, str(flat_tree)).files) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == 30 and len(set.union(*parts)) == 30


def test_split_folders_and_every_container_decode(tmp_path: Path) -> None:
    _tree(tmp_path / "train", 2)
    _tree(tmp_path / "val", 1)
    ds = build_video_dataset("video-folder", "val", str(tmp_path), **SMALL)
    assert len(ds) == 3 and all("/val/" in f for f in ds.files)
    batch = ds.collate([ds[i] for i in range(len(ds))])
    assert batch["video"].shape == (3, 3, 4, 16, 16) and batch["video"].dtype == torch.float32
    assert batch["skipped"] == {}
    assert sorted(Path(f).suffix for f in ds.files) == [".mkv", ".mp4", ".webm"]


def test_val_is_carved_from_train_when_missing(tmp_path: Path) -> None:
    _tree(tmp_path / "train", 10)
    train, val = (build_video_folder(s, str(tmp_path)) for s in ("train", "val"))
    assert (len(train), len(val)) == (27, 3) and set(train.files).isdisjoint(val.files)


@pytest.mark.parametrize(
    "layout, split, message",
    [("missing", "train", "no directory"), ("empty", "train", "no class folders"), ("train-only", "test", "no test folder")],
)
def test_layout_errors_name_the_fix(tmp_path: Path, layout: str, split: str, message: str) -> None:
    root = tmp_path / "root"
    if layout != "missing":
        root.mkdir()
    if layout == "train-only":
        write_video(root / "train" / "a" / "0.webm", 4)
    with pytest.raises(DatasetNotFoundError, match=message):
        build_video_folder(split, str(root))
