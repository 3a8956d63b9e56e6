"""The definitions, in numpy loops: what `farthest_point_sample` and `knn` must return.

Slow on purpose: one cloud and one query at a time, a full sort per query. The tests compare
the torch ops with these on random clouds, and ``benchmarks/points_ops.py`` times both.
"""

from __future__ import annotations

import numpy as np


def _sq_dist(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    # Same summation order as lm4vis.ops.squared_distance (x, then y, then z).
    diff = points[:, :3] - centre[:3]
    return diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] + diff[:, 2] * diff[:, 2]


def farthest_point_sample_reference(xyz: np.ndarray, num_samples: int, start_index: int = 0) -> np.ndarray:
    """``(B, N, 3) -> (B, G)``: greedy farthest points, ties to the lower index.

    Args:
        xyz: coordinates.
        num_samples: points to pick per cloud.
        start_index: first pick.
    """
    out = np.empty((xyz.shape[0], num_samples), dtype=np.int64)
    for b, cloud in enumerate(xyz):
        nearest = np.full(len(cloud), np.inf, dtype=cloud.dtype)
        current = start_index
        for step in range(num_samples):
            out[b, step] = current
            nearest = np.minimum(nearest, _sq_dist(cloud, cloud[current]))
            current = int(np.argmax(nearest))  # first maximum
    return out


def knn_reference(query: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """``(B, G, 3), (B, N, 3) -> (B, G, k)``: nearest first, ties by lower index.

    Args:
        query: query coordinates.
        points: coordinates searched.
        k: neighbours per query.
    """
    out = np.empty(query.shape[:2] + (k,), dtype=np.int64)
    for b in range(query.shape[0]):
        for g in range(query.shape[1]):
            out[b, g] = np.argsort(_sq_dist(points[b], query[b, g]), kind="stable")[:k]
    return out


__all__ = ["farthest_point_sample_reference", "knn_reference"]
