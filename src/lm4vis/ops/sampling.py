"""Farthest point sampling in plain torch: batched, on the points' own device, no extension.

Squared distances are summed coordinate by coordinate (``dx² + dy² + dz²``, in that order) by
`squared_distance`, which `knn` shares: both see bit-identical distances, so a sampled centre
is always its own nearest neighbour, and duplicate points tie exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def squared_distance(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances between broadcastable point sets, exact (no ``|a|² + |b|² -
    2ab`` expansion, whose cancellation misorders near neighbours of far-off points).

    Args:
        a, b: ``(..., 3)`` tensors that broadcast against each other (e.g. ``(B,G,1,3)`` and
            ``(B,1,N,3)``).

    Returns:
        ``(...)``: the broadcast shape without the coordinate axis.
    """
    dist = (a[..., 0] - b[..., 0]).square_()
    for c in range(1, a.shape[-1]):
        dist += (a[..., c] - b[..., c]).square_()
    return dist


@torch.no_grad()
def farthest_point_sample(xyz: Tensor, num_samples: int, start_index: int | Tensor = 0) -> Tensor:
    """Indices of ``num_samples`` points picked greedily, each the farthest from those before.

    Ties go to the lower index (``argmax`` returns the first maximum). A cloud with fewer
    distinct points than ``num_samples`` repeats the lowest-index point once every point is at
    distance 0, as the CUDA kernels of PointNet++ do. Coordinates must be finite.

    Args:
        xyz: ``(B, N, 3)`` coordinates (only the first 3 channels are read).
        num_samples: ``G``, at most ``N``.
        start_index: the first pick, one for all clouds or a ``(B,)`` tensor (Point-BERT's
            kernels start at 0).

    Returns:
        ``(B, G)`` long indices into ``N``.
    """
    if xyz.dim() != 3 or xyz.shape[-1] < 3:
        raise ValueError(f"farthest_point_sample needs points (B, N, 3), got {tuple(xyz.shape)}")
    batch, num_points = xyz.shape[:2]
    if not 0 < num_samples <= num_points:
        raise ValueError(f"cannot sample {num_samples} of {num_points} points; ask 1..{num_points}")
    xyz = xyz[..., :3]
    rows = torch.arange(batch, device=xyz.device)
    picked = torch.empty(batch, num_samples, dtype=torch.long, device=xyz.device)
    # Squared distance of every point to its nearest pick so far.
    nearest = torch.full((batch, num_points), float("inf"), dtype=xyz.dtype, device=xyz.device)
    current = torch.as_tensor(start_index, dtype=torch.long, device=xyz.device).expand(batch)
    if ((current < 0) | (current >= num_points)).any():
        raise ValueError(f"start_index must be in 0..{num_points - 1}, got {start_index}")
    for step in range(num_samples):
        picked[:, step] = current
        centre = xyz[rows, current].unsqueeze(1)  # (B, 1, 3)
        torch.minimum(nearest, squared_distance(xyz, centre), out=nearest)
        current = nearest.argmax(dim=1)
    return picked


__all__ = ["farthest_point_sample", "squared_distance"]
