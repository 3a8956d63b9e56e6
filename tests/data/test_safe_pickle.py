"""The numpy-only unpickler refuses pickles that would run code."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from lm4vis.data import UnsafePickleError, load_array
from lm4vis.data.animal import load_animal_arrays


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "array", [np.arange(12, dtype=np.uint8).reshape(3, 4), np.linspace(0, 1, 5), np.array([3, -1], np.int64)]
)
def test_plain_arrays_load(array: np.ndarray) -> None:
    np.testing.assert_array_equal(load_array(pickle.dumps(array, protocol=4)), array)


def test_malicious_pickle_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsCode(marker))
    assert pickle.loads(payload) == 0 and marker.exists()  # the payload really runs code...
    marker.unlink()
    with pytest.raises(UnsafePickleError, match="refusing to load posix.system|refusing to load os.system"):
        load_array(payload)
    assert not marker.exists()  # ...but not through load_array


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"a": 1}, "expected a numpy array"),
        (np.array([object(), 1], dtype=object), "refusing to load|dtype object refused"),
        (np.array([1, 2]).view(np.recarray), "refusing to load numpy.*recarray"),
    ],
)
def test_non_plain_arrays_are_refused(obj, message: str) -> None:
    with pytest.raises(UnsafePickleError, match=message):
        load_array(pickle.dumps(obj))


def test_truncated_pickle_is_a_clear_error() -> None:
    with pytest.raises(pickle.UnpicklingError, match="not a readable array pickle"):
        load_array(pickle.dumps(np.zeros(100))[:-20])


def test_tampered_animal_files_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with gzip.open(tmp_path / "animal_data_version_3.gz", "wb") as f:
        pickle.dump(_RunsCode(marker), f)
    with gzip.open(tmp_path / "animal_label_version_3.gz", "wb") as f:
        pickle.dump(np.zeros(1, np.int64), f)
    with pytest.raises(UnsafePickleError):
        load_animal_arrays(str(tmp_path))
    assert not marker.exists()
