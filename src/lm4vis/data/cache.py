"""Where derived data (sampled point clouds, processed scenes, decoded clips) is cached.

Never next to a user's data: the release folders may be read-only or shared, and a cache
written beside them would be mistaken for part of the release. The folder is
``$LM4VIS_CACHE`` when set, else ``~/.cache/lm4vis``; each dataset takes a sub-folder named by
its name and a key of everything the cached values depend on, so changing an option never
reads a stale cache. Cached arrays are ``.npy`` / ``.npz`` (read with ``allow_pickle=False``)
or tensors saved with ``torch.save`` and read with ``weights_only=True``: no cache file can
run code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

CACHE_ENV = "LM4VIS_CACHE"


def cache_root() -> Path:
    """``$LM4VIS_CACHE`` or ``~/.cache/lm4vis``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lm4vis"


def cache_key(**parts: Any) -> str:
    """A short stable hash of JSON-serialisable options (paths, point counts, versions)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir(dataset: str, **parts: Any) -> Path:
    """The cache folder of one dataset under one set of options (created on first use).

    Args:
        dataset: the registered dataset name, e.g. ``modelnet40-resampled``.
        **parts: everything the cached values depend on (source root, options, format version).
    """
    path = cache_root() / dataset / cache_key(**parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    # Through a temporary file in the same folder, renamed at the end: a killed process never
    # leaves half a file behind for the next run to read.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    tmp.replace(path)


def atomic_save_npy(path: Path, array: Any) -> None:
    """Write ``array`` to ``path`` (``.npy``) atomically, without pickling."""
    import numpy as np

    _atomic_write(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))


def atomic_save_npz(path: Path, **arrays: Any) -> None:
    """Write named ``arrays`` to ``path`` (``.npz``) atomically; refuses object arrays, which
    only a pickle could store."""
    import numpy as np

    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    pickled = [name for name, value in arrays.items() if value.dtype.hasobject]
    if pickled:
        raise TypeError(f"atomic_save_npz: {', '.join(pickled)} would need a pickle; store plain arrays")
    _atomic_write(path, lambda f: np.savez(f, **arrays))


__all__ = ["CACHE_ENV", "cache_root", "cache_key", "cache_dir", "atomic_save_npy", "atomic_save_npz"]
