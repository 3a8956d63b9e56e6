"""Writers of tiny vision-language releases in their exact published layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm4vis.data.cache import CACHE_ENV

from vl_release import Question, VQAv2Release, write_jpeg  # noqa: F401 (the fixtures' types)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test caches in its own folder, never in ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path


@pytest.fixture
def vqav2(tmp_path: Path) -> VQAv2Release:
    return VQAv2Release(tmp_path / "vqav2")


@pytest.fixture
def karpathy_root(tmp_path: Path) -> Path:
    return tmp_path / "flickr30k"


@pytest.fixture
def vqa_question() -> type:
    """The `Question` record the VQAv2 writer takes (a fixture, so no test imports this module)."""
    return Question
