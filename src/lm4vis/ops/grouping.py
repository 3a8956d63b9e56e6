"""k nearest neighbours and local groups of a point cloud, in plain batched torch.

`knn` computes exact squared distances (see `squared_distance`) a block of queries at a time,
so the ``(B, G, N)`` distance matrix is never held whole: at N = 10k points the full matrix of
a batch of 32 clouds with 512 centres would be 650 MB. Neighbours come sorted by distance, ties
by lower index, whatever ``topk`` does inside.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .sampling import squared_distance

#: Distance-matrix entries computed at once by default (64 MiB in fp32).
KNN_BLOCK_ELEMENTS = 1 << 24


def _knn_rows(dist: Tensor, k: int) -> Tensor:
    """The k smallest entries of each row of ``dist`` (R, N), ordered by (distance, index)."""
    num_points = dist.shape[-1]
    values, idx = dist.topk(min(k + 1, num_points), dim=-1, largest=False, sorted=True)
    idx = idx[:, :k]
    if k < num_points:
        # Where the (k+1)-th distance equals the k-th, topk chose arbitrarily among the tied
        # entries (duplicate points, mostly); those rows take the lowest tied indices instead.
        # Peeking at one more value spares a pass over every row to count ties.
        tied = values[:, k] == values[:, k - 1]
        if tied.any():
            rows = tied.nonzero().squeeze(1)
            d, kth = dist[rows], values[rows, k - 1 : k]
            closer, at_kth = d < kth, d == kth
            places = k - closer.sum(dim=-1, keepdim=True)
            take = closer | (at_kth & (at_kth.cumsum(dim=-1) <= places))
            idx[rows] = take.nonzero()[:, 1].view(-1, k)  # row-major: ascending index
    # Index order first, then a stable sort by distance: equal distances keep index order.
    idx = idx.sort(dim=-1).values
    order = dist.gather(-1, idx).sort(dim=-1, stable=True).indices
    return idx.gather(-1, order)


@torch.no_grad()
def knn(query: Tensor, points: Tensor, k: int, block_elements: int = KNN_BLOCK_ELEMENTS) -> Tensor:
    """Indices of the ``k`` points nearest to each query, nearest first, ties by lower index.

    Args:
        query: ``(B, G, 3)`` query coordinates (only the first 3 channels are read).
        points: ``(B, N, 3)`` coordinates searched (only the first 3 channels are read).
        k: neighbours per query, at most ``N``.
        block_elements: distance-matrix entries computed at once; peak memory is about three
            times that many elements of the points' dtype.

    Returns:
        ``(B, G, k)`` long indices into ``N``.
    """
    if query.dim() != 3 or points.dim() != 3 or query.shape[0] != points.shape[0]:
        raise ValueError(
            f"knn needs query (B, G, 3) and points (B, N, 3) of the same batch, got "
            f"{tuple(query.shape)} and {tuple(points.shape)}"
        )
    batch, num_query = query.shape[:2]
    num_points = points.shape[1]
    if not 0 < k <= num_points:
        raise ValueError(f"cannot take {k} neighbours among {num_points} points; ask 1..{num_points}")
    query, points = query[..., :3], points[..., :3].unsqueeze(1)
    step = max(1, block_elements // max(1, batch * num_points))
    out = torch.empty(batch, num_query, k, dtype=torch.long, device=query.device)
    for start in range(0, num_query, step):
        q = query[:, start : start + step].unsqueeze(2)  # (B, g, 1, 3)
        dist = squared_distance(q, points)  # (B, g, N)
        out[:, start : start + step] = _knn_rows(dist.flatten(0, 1), k).view(batch, -1, k)
    return out


def gather_points(points: Tensor, idx: Tensor) -> Tensor:
    """``points[b, idx[b, ...]]`` for every cloud ``b``.

    Args:
        points: ``(B, N, C)``.
        idx: ``(B, ...)`` long indices into ``N``.

    Returns:
        ``(B, ..., C)``.
    """
    batch = points.shape[0]
    flat = idx.reshape(batch, -1, 1).expand(-1, -1, points.shape[-1])
    return points.gather(1, flat).view(*idx.shape, points.shape[-1])


class Groups(NamedTuple):
    """Local neighbourhoods of a cloud.

    Attributes:
        neighbourhoods: ``(B, G, k, C)``; coordinates relative to the group's centre, any
            further channels (normals) as they were.
        centres: ``(B, G, 3)`` centre coordinates.
        idx: ``(B, G, k)`` index of every member in the input cloud (nearest first; the
            centre itself is first unless it has exact duplicates with lower indices).
    """

    neighbourhoods: Tensor
    centres: Tensor
    idx: Tensor


def group_points(points: Tensor, centres_idx: Tensor, k: int,
                 block_elements: int = KNN_BLOCK_ELEMENTS) -> Groups:
    """The ``k`` nearest neighbours of each centre, relative to it.

    Differentiable in ``points`` (the selection is not: indices carry no gradient).

    Args:
        points: ``(B, N, C)``, xyz in the first 3 channels.
        centres_idx: ``(B, G)`` indices of the centres (e.g. `farthest_point_sample`).
        k: group size.
        block_elements: see `knn`.
    """
    centres = gather_points(points[..., :3], centres_idx)
    idx = knn(centres, points, k, block_elements)
    members = gather_points(points, idx)
    xyz = members[..., :3] - centres.unsqueeze(2)
    return Groups(torch.cat([xyz, members[..., 3:]], dim=-1), centres, idx)


__all__ = ["KNN_BLOCK_ELEMENTS", "knn", "gather_points", "group_points", "Groups"]
