"""Datasets of one file per shape, fitted to ``num_points`` once and cached as ``.npy``.

Reading a 10,000-row text file and running farthest point sampling on it costs far more than a
training step's share, so every source is prepared once, in the main process while indexing
(bad files are counted on the dataset's `SkipLog` there), batched by size for the sampling, and
written to `lm4vis.data.cache.cache_dir` (never next to the data). A cache file is named by
the source's relative path, size and modification time, so an edited file is prepared again;
the folder's key holds the root, ``num_points``, the channels and a format version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...ops import farthest_point_sample
from ..cache import atomic_save_npy, cache_dir
from ..skips import BadInputError, SkipLog, Skipped
from .base import BadInputPolicy, PointCloudDataset, PointCloudInfo, fit_num_points, resample_rng
from .io import CloudReadError, sample_surface
from .transforms import PointAugment

log = logging.getLogger(__name__)

#: Bump when what a cache file holds changes.
CACHE_VERSION = 1
#: Clouds sampled together by one batched FPS call while preparing.
PREPARE_BATCH = 32
#: Fixed permutation of the item order, so that ``limit`` keeps a mix of classes.
ORDER_SEED = 20240101

#: The cache file of a padded cloud; the name keeps the source's own point count.
SHORT_NAME = re.compile(r"[0-9a-f]+\.short-(\d+)\.npy")

#: ``reader(path) -> (points (n, C) float32, faces (F, 3) int64 or None)``.
Reader = Callable[[Path], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Source:
    """One shape file.

    Args:
        path: the file.
        label: its class.
        name: path relative to the dataset root (messages, cache file name, sampling seed).
    """

    path: Path
    label: int
    name: str


class CachedCloudDataset(PointCloudDataset):
    """Clouds read by ``reader`` from one file each, prepared into the cache while indexing.

    A mesh (faces present) is sampled uniformly on its surface; a cloud is reduced by farthest
    point sampling from its first point, or padded by the ``short_cloud`` policy.

    Args:
        info: the dataset's description (``num_points``, ``channels``).
        sources: every shape of the split.
        reader: parses one file, raising `CloudReadError` or `OSError` when it cannot.
        root: the dataset's root folder (part of the cache key).
        augment, seed, normalize, policy: see `PointCloudDataset`.
    """

    def __init__(
        self,
        info: PointCloudInfo,
        sources: Sequence[Source],
        reader: Reader,
        root: Path,
        *,
        augment: PointAugment | None = None,
        seed: int = 0,
        normalize: bool = True,
        policy: BadInputPolicy = BadInputPolicy(),
    ) -> None:
        self.info, self.sources, self.reader = info, list(sources), reader
        self.cache = cache_dir(info.name, root=str(Path(root).resolve()), num_points=info.num_points,
                               channels=list(info.channels), version=CACHE_VERSION)
        self.num_points, self.policy = info.num_points, policy
        self.skips = SkipLog(info.name)
        self._files: dict[int, str] = {}  # source index -> cache file name, once prepared
        failed = self._prepare(range(len(self.sources)))
        ready = [i for i in range(len(self.sources)) if i not in failed]
        order = np.random.default_rng(ORDER_SEED).permutation(np.asarray(ready, dtype=np.int64))
        super().__init__(info, order, [s.label for s in self.sources], augment=augment, seed=seed,
                         normalize=normalize, policy=policy, skips=self.skips)

    def _digest(self, source_index: int) -> str:
        src = self.sources[source_index]
        try:
            stat = src.path.stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:  # a listed file that is missing: it is read (and reported) every time
            stamp = "missing"
        return hashlib.sha1(f"{src.name}|{stamp}".encode()).hexdigest()[:20]

    def cache_path(self, source_index: int) -> Path:
        """Where prepared source ``source_index`` is cached."""
        return self.cache / self._files[source_index]

    # -- preparation ---------------------------------------------------------------------------
    def _short(self, src: Source, count: int) -> None:
        detail = f"{src.name}: {count} points, {self.num_points} asked"
        if self.policy.short_cloud == "fail":
            raise BadInputError(f"{self.info.name}: {detail}; ask num_points <= {count}, "
                                "or pass short_cloud='resample' to repeat random points")
        self.skips.skip("short-cloud-resampled", detail)

    def _read(self, source_index: int) -> tuple[np.ndarray, int | None] | Skipped:
        """The source's points (at least ``num_points`` rows) and, when it had to be padded,
        its own point count; or the skip it turned into."""
        src = self.sources[source_index]
        ext = src.path.suffix.lower().lstrip(".") or "file"
        try:
            points, faces = self.reader(src.path)
            if not np.isfinite(points).all():
                return self._bad(self.policy.nonfinite, "nonfinite-coordinates",
                                 f"{src.name}: NaN/Inf coordinates",
                                 "pass nonfinite='skip' to drop and count such files, or fix the file")
            if faces is not None and len(faces):
                # Seeded by the file's name: the same file always gives the same cloud.
                rng = np.random.default_rng(zlib.crc32(src.name.encode()))
                return sample_surface(points, faces, self.num_points, rng), None
        except (CloudReadError, OSError) as e:
            return self._bad(self.policy.unreadable, f"unreadable-{ext}", f"{src.name}: {e}",
                             "pass unreadable='skip' to drop and count such files, or replace the file")
        count = len(points)
        if count >= self.num_points:
            return points, None
        self._short(src, count)
        return fit_num_points(points, None, self.num_points, resample_rng(zlib.crc32(src.name.encode())))[0], count

    def _bad(self, policy: str, reason: str, detail: str, fix: str) -> Skipped:
        self.skips.handle(policy, reason, detail, fix)  # raises under "fail"
        return Skipped(reason, detail)

    def _prepare(self, positions: Sequence[int] | range) -> dict[int, Skipped]:
        """Cache every source in ``positions`` that is not cached yet; returns the ones that
        could not be (counted on ``skips``).

        A padded cloud is cached as ``<digest>.short-<count>.npy``, so later builds count it
        again (and refuse it under ``short_cloud="fail"``) without reading its source.
        """
        cached = {name.split(".", 1)[0]: name for name in os.listdir(self.cache)
                  if name.endswith(".npy") and not name.startswith(".")}  # not atomic_save's temporaries
        pending = []
        for i in positions:
            name = cached.get(self._digest(i))
            if name is None:
                pending.append(i)
                continue
            self._files[i] = name
            short = SHORT_NAME.fullmatch(name)
            if short:
                self._short(self.sources[i], int(short.group(1)))
        if len(pending) > PREPARE_BATCH:
            log.info("%s: preparing %d clouds of %d points into %s (once)", self.info.name, len(pending),
                     self.num_points, self.cache)
        failed: dict[int, Skipped] = {}
        for start in range(0, len(pending), PREPARE_BATCH):
            read = {i: self._read(i) for i in pending[start : start + PREPARE_BATCH]}
            failed |= {i: r for i, r in read.items() if isinstance(r, Skipped)}
            clouds = {i: r for i, r in read.items() if not isinstance(r, Skipped)}
            by_size: dict[int, list[int]] = {}
            for i, (cloud, _) in clouds.items():
                by_size.setdefault(len(cloud), []).append(i)
            for size, members in by_size.items():
                batch = np.stack([clouds[i][0] for i in members])
                if size > self.num_points:
                    rows = farthest_point_sample(torch.from_numpy(batch[..., :3]), self.num_points).numpy()
                    batch = np.take_along_axis(batch, rows[..., None], axis=1)
                for i, cloud in zip(members, batch):
                    short = clouds[i][1]
                    name = f"{self._digest(i)}.npy" if short is None else f"{self._digest(i)}.short-{short}.npy"
                    atomic_save_npy(self.cache / name, np.ascontiguousarray(cloud, dtype=np.float32))
                    self._files[i] = name
        return failed

    # -- items ---------------------------------------------------------------------------------
    def _cloud(self, source_index: int) -> tuple[np.ndarray, None] | Skipped:
        try:
            return np.load(self.cache_path(source_index), allow_pickle=False), None
        except (OSError, ValueError):
            # The cache was cleared under a running job: prepare this one source again.
            self._files.pop(source_index, None)
            failed = self._prepare([source_index])
            if source_index in failed:
                return failed[source_index]
            return np.load(self.cache_path(source_index), allow_pickle=False), None


__all__ = ["CachedCloudDataset", "Source", "Reader", "CACHE_VERSION"]
