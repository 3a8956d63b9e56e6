"""ETH/UCY on small files in the Social-GAN release's layout and line format."""

from __future__ import annotations

import numpy as np
import pytest
from motion_files import write_eth_file

from lm4vis.data.base import DatasetNotFoundError
from lm4vis.data.motion import FEATURES, EthUcy, EthUcyDataConfig, collate
from lm4vis.data.skips import BadInputError

COL = {name: i for i, name in enumerate(FEATURES)}


def _walker(steps, start, velocity):
    steps = list(steps)
    return steps, np.asarray(start) + np.asarray(steps)[:, None] * np.asarray(velocity)


def _release(root, frame_step=10, sep="\t"):
    """eth held out: its test file has two walkers seen at all 24 steps and one seen at steps
    3..9 only; train has a file where only one walker is seen throughout."""
    write_eth_file(root / "eth/test/biwi_eth.txt", {
        1: _walker(range(24), (0.0, 0.0), (0.4, 0.0)),
        2: _walker(range(24), (5.0, 5.0), (0.0, -0.4)),
        3: _walker(range(3, 10), (2.0, 2.0), (0.0, 0.0)),
    }, frame_step=frame_step, sep=sep)
    write_eth_file(root / "eth/train/crowds_zara01_train.txt", {
        7: _walker(range(20), (0.0, 0.0), (0.3, 0.3)),
        8: _walker(range(10), (1.0, 0.0), (0.3, 0.0)),
    }, sep=" ")
    return root


@pytest.mark.parametrize("frame_step, sep", [(10, "\t"), (6, "\t"), (10, " ")])
def test_windows_and_items(tmp_path, frame_step, sep):
    ds = EthUcy(EthUcyDataConfig(root=str(_release(tmp_path, frame_step, sep))), "test")
    # 24 steps hold 24 - 20 + 1 = 5 windows, each with two walkers seen throughout
    assert len(ds) == 10 and ds.info.hz == 2.5 and not ds.info.has_map
    item = ds[0]  # window 0, walker 1 walking +x at 1 m/s
    np.testing.assert_allclose(item["future"][:, 0], 0.4 * np.arange(1, 13), atol=1e-5)
    np.testing.assert_allclose(item["future"][:, 1], 0.0, atol=1e-5)
    focal = item["vectors"][0][~item["vector_mask"][0]]
    assert len(focal) == 7 and focal[0, COL["time"]].item() == pytest.approx(-6 / 2.5)
    # context: walker 2 throughout, walker 3 seen at steps 3..7 of the observed 8 (4 vectors)
    counts = sorted((~item["vector_mask"][1:]).sum(1).tolist())
    assert counts == [4, 7] and item["polyline_type"].tolist() == [0, 1, 1]
    later = ds[8]  # window 4: walker 3 was last seen at step 9, inside the observed steps 4..11
    assert len(later["polyline_type"]) == 3


def test_min_pedestrians_drops_lonely_windows(tmp_path):
    root = _release(tmp_path)
    assert len(EthUcy(EthUcyDataConfig(root=str(root)), "train")) == 0  # one walker throughout
    assert len(EthUcy(EthUcyDataConfig(root=str(root), min_pedestrians=1), "train")) == 1


def test_stride(tmp_path):
    ds = EthUcy(EthUcyDataConfig(root=str(_release(tmp_path)), stride=2), "test")
    assert len(ds) == 6  # windows at steps 0, 2, 4


@pytest.mark.parametrize("line", ["780.0\t1.0\t8.46", "780.0\t1.0\tx\t3.59", "780.0\t1.0\tnan\t3.59"])
def test_bad_rows_skip_and_count_or_fail(tmp_path, line):
    root = _release(tmp_path)
    path = root / "eth/test/biwi_eth.txt"
    path.write_text(path.read_text() + line + "\n")
    ds = EthUcy(EthUcyDataConfig(root=str(root)), "test")
    assert len(ds) == 10 and ds.skips.to_dict()["counts"] == {"bad-row": 1}
    with pytest.raises(BadInputError, match=r"biwi_eth\.txt:\d+.*on_bad_row='skip'"):
        EthUcy(EthUcyDataConfig(root=str(root), on_bad_row="fail"), "test")


def test_empty_file_is_counted(tmp_path):
    root = _release(tmp_path)
    (root / "eth/test/empty.txt").write_text("\n")
    ds = EthUcy(EthUcyDataConfig(root=str(root)), "test")
    assert len(ds) == 10 and ds.skips.to_dict()["counts"] == {"empty-file": 1}


def test_collate(tmp_path):
    ds = EthUcy(EthUcyDataConfig(root=str(_release(tmp_path))), "test")
    batch = collate([ds[i] for i in range(4)])
    assert batch["vectors"].shape == (4, 3, 7, len(FEATURES)) and batch["skipped"] == {}


def test_missing_release_says_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"hotel/val/\*\.txt.*download_data"):
        EthUcy(EthUcyDataConfig(root=str(tmp_path), scene="hotel"), "val")


@pytest.mark.parametrize("kwargs, message", [
    (dict(root=""), "data.root must name"),
    (dict(root="x", scene="zara3"), "zara1, zara2"),
    (dict(root="x", obs_len=0), "obs_len"),
    (dict(root="x", on_bad_row="ignore"), "skip or fail"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EthUcyDataConfig(**kwargs)
