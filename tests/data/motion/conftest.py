"""Every motion test caches into its own temporary folder, never the user's cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from lm4vis.data.cache import CACHE_ENV


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache
