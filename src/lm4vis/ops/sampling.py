"""Farthest point sampling in plain torch: batched, on the points' own device, no extension.

Squared distances are exact differences summed coordinate by coordinate (``dx² + dy² + dz²``,
in that order, as `squared_distance` and the numpy reference do), so duplicate points tie
exactly and ties go to the lower index, as in the reference.
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
    # One contiguous (B, N) plane per coordinate: a step is then a handful of whole-plane
    # kernels (a sum over a (3, B, N) axis is several times slower than two adds).
    planes = xyz[..., :3].permute(2, 0, 1).contiguous()
    flat = planes.view(3, batch * num_points)
    offsets = torch.arange(batch, device=xyz.device) * num_points
    current = torch.as_tensor(start_index, dtype=torch.long, device=xyz.device).expand(batch)
    if ((current < 0) | (current >= num_points)).any():
        raise ValueError(f"start_index must be in 0..{num_points - 1}, got {start_index}")
    # Squared distance of every point to its nearest pick so far.
    nearest = torch.full((batch, num_points), float("inf"), dtype=xyz.dtype, device=xyz.device)
    picked = []
    for _ in range(num_samples):
        picked.append(current)
        centre = flat.index_select(1, current + offsets).unsqueeze(-1)  # (3, B, 1)
        # x, then y, then z: the summation order of squared_distance and of the reference.
        dist = (planes[0] - centre[0]).square_()
        dist += (planes[1] - centre[1]).square_()
        dist += (planes[2] - centre[2]).square_()
        torch.minimum(nearest, dist, out=nearest)
        current = nearest.argmax(dim=1)
    return torch.stack(picked, dim=1)


__all__ = ["farthest_point_sample", "squared_distance"]
