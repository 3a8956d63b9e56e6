"""Datasets held whole in memory: the HDF5 releases (ModelNet40 2048, ScanObjectNN).

A release's arrays are small enough to read at once (ModelNet40's train split: 9,840 clouds of
2,048 points, 240 MB), and reading them in the main process means every bad cloud is found and
counted while indexing, on the dataset's own `SkipLog`, before any worker starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..skips import BadInputError, SkipLog
from .base import BadInputPolicy, PointCloudDataset, PointCloudInfo, fit_num_points, resample_rng
from .transforms import PointAugment


class ArrayCloudDataset(PointCloudDataset):
    """Clouds from arrays ``(M, P, C)``, fitted to ``info.num_points`` per item (farthest
    point sampling from point 0 when ``P`` is larger, repeats when smaller).

    Args:
        info: the dataset's description (``num_points`` may differ from ``P``).
        data: ``(M, P, C)`` float32 clouds, xyz first.
        labels: ``(M,)`` int labels.
        masks: ``(M, P)`` bool foreground masks, or None.
        origins: where each cloud came from (``file.h5[row]``), for messages.
        augment, seed, normalize, policy: see `PointCloudDataset`.
    """

    def __init__(
        self,
        info: PointCloudInfo,
        data: np.ndarray,
        labels: np.ndarray,
        masks: np.ndarray | None,
        origins: Sequence[str],
        *,
        augment: PointAugment | None = None,
        seed: int = 0,
        normalize: bool = False,
        policy: BadInputPolicy = BadInputPolicy(),
    ) -> None:
        skips = SkipLog(info.name)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        bad_labels = np.flatnonzero((labels < 0) | (labels >= info.num_classes))
        if bad_labels.size:
            i = int(bad_labels[0])
            raise BadInputError(
                f"{info.name}: {origins[i]} has label {labels[i]} outside 0..{info.num_classes - 1} "
                f"({bad_labels.size} such clouds); this file does not belong to this release"
            )
        keep = np.isfinite(data).all(axis=(1, 2))
        for i in np.flatnonzero(~keep):
            skips.handle(policy.nonfinite, "nonfinite-coordinates", f"{origins[i]}: NaN/Inf coordinates",
                         fix="pass nonfinite='skip' to drop and count such clouds")
        indices = np.flatnonzero(keep)
        stored = data.shape[1]
        if stored < info.num_points and len(indices):
            detail = f"clouds of {stored} points, {info.num_points} asked"
            if policy.short_cloud == "fail":
                raise BadInputError(f"{info.name}: {detail}; ask num_points <= {stored}, or pass "
                                    "short_cloud='resample' to repeat random points")
            skips.skip("short-cloud-resampled", detail, count=len(indices))
        super().__init__(info, indices, labels, augment=augment, seed=seed, normalize=normalize,
                         policy=policy, skips=skips)
        self.data, self.masks = data, masks

    def _cloud(self, source_index: int) -> tuple[np.ndarray, np.ndarray | None]:
        mask = None if self.masks is None else self.masks[source_index]
        return fit_num_points(self.data[source_index], mask, self.info.num_points, resample_rng(source_index))


__all__ = ["ArrayCloudDataset"]
