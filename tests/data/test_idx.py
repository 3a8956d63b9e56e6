"""The IDX reader and writer, and the "idx" dataset on a directory written here."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from lm4vis.data import IDXError, build_dataset, read_idx, write_idx
from lm4vis.data.idx import parse_idx


@pytest.mark.parametrize(
    "dtype, shape, name",
    [
        (np.uint8, (5, 7, 3), "images-idx3-ubyte"),
        (np.uint8, (11,), "labels-idx1-ubyte.gz"),
        (np.int8, (2, 3), "a.gz"),
        (np.int16, (4, 2), "b"),
        (np.int32, (3,), "c.gz"),
        (np.float32, (2, 2, 2), "d"),
        (np.float64, (6,), "e.gz"),
    ],
)
def test_idx_round_trip(tmp_path: Path, dtype, shape, name) -> None:
    rng = np.random.default_rng(1)
    array = (rng.normal(0, 50, shape)).astype(dtype)
    path = tmp_path / name
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(back, array)
    assert not back.flags.writeable


def test_idx_header_is_big_endian_mnist_layout(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.zeros((2, 3, 4), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3])
    assert raw[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4])
    assert len(raw) == 16 + 24


def _valid() -> bytes:
    return bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(range(4))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x01\x00\x08\x01" + bytes(8), "bad magic"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 7]), "unknown IDX type code"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (bytes([0, 0, 0x08, 3, 0, 0]), "truncated header"),
        (_valid()[:-1], "truncated or corrupt"),
        (_valid() + b"\x00", "truncated or corrupt"),
        (b"\x00\x00", "too short"),
        (gzip.compress(_valid())[:-6], "corrupt gzip"),
        (b"\x1f\x8b" + b"garbage" * 5, "corrupt gzip"),
    ],
)
def test_corrupt_idx_raises_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "x"
    write_idx(path, np.zeros(3, np.uint8))
    assert read_idx(path).sum() == 0
    write_idx(path, np.ones(4, np.uint8))
    assert read_idx(path).tolist() == [1, 1, 1, 1]


def test_parse_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IDX cannot store"):
        write_idx(tmp_path / "x", np.zeros(2, np.uint64))
    assert parse_idx(_valid()).tolist() == [[0, 1], [2, 3]]


@pytest.mark.parametrize("split, size", [("train", 22), ("val", 2), ("test", 6)])
def test_idx_dataset_splits(tiny_idx_dir: Path, split: str, size: int) -> None:
    ds = build_dataset("idx", split=split, root=str(tiny_idx_dir))
    assert len(ds) == size
    image, label = ds[0]
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8)
    # labels 0..max over both files: train has 0..2, test 0..4
    assert ds.info.num_classes == 5 and ds.info.class_names[4] == "class_4"
    assert ds.info.in_chans == 1 and ds.info.image_size == 8 and not ds.info.has_masks


def test_idx_dataset_val_is_tail_of_train(tiny_idx_dir: Path) -> None:
    train = build_dataset("idx", split="train", root=str(tiny_idx_dir))
    val = build_dataset("idx", split="val", root=str(tiny_idx_dir))
    images = read_idx(tiny_idx_dir / "train-images-idx3-ubyte.gz")
    assert set(train.indices.tolist()).isdisjoint(val.indices.tolist())
    torch.testing.assert_close(val[1][0][0], torch.from_numpy(images[-1].copy()))
    torch.testing.assert_close(train[0][0][0], torch.from_numpy(images[0].copy()))


def test_idx_dataset_resizes(tiny_idx_dir: Path) -> None:
    ds = build_dataset("idx", split="test", root=str(tiny_idx_dir), image_size=20)
    assert ds.info.image_size == 20 and ds[3][0].shape == (1, 20, 20) and ds[3][0].dtype == torch.uint8


def test_idx_dataset_accepts_raw_and_dotted_names(tmp_path: Path) -> None:
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images.idx3-ubyte", np.full((13, 4, 4), 9, np.uint8), compress=False)
        write_idx(tmp_path / f"{prefix}-labels.idx1-ubyte", np.zeros(13, np.uint8), compress=False)
    ds = build_dataset("idx", split="test", root=str(tmp_path))
    assert len(ds) == 13 and int(ds[0][0].max()) == 9
