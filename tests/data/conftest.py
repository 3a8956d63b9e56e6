"""Fixtures of the data tests: tiny datasets written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lm4vis.data import write_idx


@pytest.fixture
def tiny_idx_dir(tmp_path: Path) -> Path:
    """An MNIST-layout directory: 24 train + 6 test images of 8x8; labels 0..2 in train, 0..4 in test."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 24), ("t10k", 6)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 8, 8), dtype=np.uint8))
        labels = np.arange(n, dtype=np.uint8) % (3 if prefix == "train" else 5)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path
