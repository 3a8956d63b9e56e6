"""Fixtures of the video tests: a small SSv2 release written once, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from video_files import write_release


@pytest.fixture(scope="session")
def release_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small release, written once per session; tests copy it with `release`."""
    return write_release(tmp_path_factory.mktemp("ssv2"))


@pytest.fixture
def release(release_source: Path, tmp_path: Path) -> Path:
    """A fresh copy of the small release that a test may damage."""
    return Path(shutil.copytree(release_source, tmp_path / "ssv2"))
