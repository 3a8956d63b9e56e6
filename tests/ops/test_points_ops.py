"""FPS, kNN and grouping against the numpy definitions in `lm4vis.ops.reference`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.ops import farthest_point_sample, gather_points, group_points, knn
from lm4vis.ops.reference import farthest_point_sample_reference, knn_reference


def make_cloud(kind: str, batch: int, num_points: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Random clouds; ``duplicates``: every point appears 2-3 times; ``grid``: integer
    coordinates, so many neighbours sit at exactly equal distances."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return torch.rand(batch, num_points, 3, generator=gen, dtype=dtype) * 2 - 1
    if kind == "far":  # far from the origin: where |a|^2+|b|^2-2ab would lose the digits
        return torch.rand(batch, num_points, 3, generator=gen, dtype=dtype) * 1e-2 + 100
    if kind == "duplicates":
        base = torch.rand(batch, (num_points + 2) // 3, 3, generator=gen, dtype=dtype)
        pick = torch.randint(0, base.shape[1], (batch, num_points), generator=gen)
        return gather_points(base, pick)
    if kind == "grid":
        return torch.randint(0, 4, (batch, num_points, 3), generator=gen).to(dtype)
    raise ValueError(kind)


CASES = [  # kind, batch, num_points, num_samples, k
    ("uniform", 2, 97, 13, 7),
    ("uniform", 1, 1, 1, 1),
    ("uniform", 3, 50, 50, 50),  # every point sampled, every point a neighbour
    ("far", 2, 64, 9, 5),
    ("duplicates", 2, 61, 20, 6),
    ("grid", 2, 80, 30, 11),  # 64 distinct points for 30 centres: ties everywhere
    ("grid", 1, 40, 40, 3),  # more samples than distinct points: the zero-distance repeats
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind, batch, num_points, num_samples, k", CASES)
def test_fps_matches_reference(kind, batch, num_points, num_samples, k, dtype):
    xyz = make_cloud(kind, batch, num_points, dtype)
    start = num_points // 2
    got = farthest_point_sample(xyz, num_samples, start_index=start)
    want = farthest_point_sample_reference(xyz.numpy(), num_samples, start_index=start)
    assert got.dtype == torch.long and got.shape == (batch, num_samples)
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind, batch, num_points, num_samples, k", CASES)
@pytest.mark.parametrize("block_elements", [1, 1 << 24])  # one query at a time, or all at once
def test_knn_matches_reference(kind, batch, num_points, num_samples, k, dtype, block_elements):
    points = make_cloud(kind, batch, num_points, dtype)
    query = make_cloud(kind, batch, num_samples, dtype, seed=1)
    got = knn(query, points, k, block_elements=block_elements)
    want = knn_reference(query.numpy(), points.numpy(), k)
    assert got.dtype == torch.long and got.shape == (batch, num_samples, k)
    np.testing.assert_array_equal(got.numpy(), want)


def test_fps_per_cloud_start_and_first_pick():
    xyz = make_cloud("uniform", 3, 20, torch.float64)
    start = torch.tensor([0, 5, 19])
    got = farthest_point_sample(xyz, 4, start_index=start)
    assert got[:, 0].tolist() == [0, 5, 19]
    for b in range(3):
        want = farthest_point_sample_reference(xyz[b : b + 1].numpy(), 4, int(start[b]))
        np.testing.assert_array_equal(got[b : b + 1].numpy(), want)


def test_group_points_is_relative_and_keeps_extra_channels():
    points = torch.cat([make_cloud("uniform", 2, 40, torch.float64), torch.randn(2, 40, 3, dtype=torch.float64)], -1)
    centres_idx = farthest_point_sample(points, 6)
    groups = group_points(points, centres_idx, k=5)
    assert groups.neighbourhoods.shape == (2, 6, 5, 6)
    assert groups.centres.shape == (2, 6, 3) and groups.idx.shape == (2, 6, 5)
    np.testing.assert_array_equal(groups.idx.numpy(), knn_reference(groups.centres.numpy(), points.numpy(), 5))
    members = gather_points(points, groups.idx)
    torch.testing.assert_close(groups.neighbourhoods[..., :3] + groups.centres.unsqueeze(2), members[..., :3])
    torch.testing.assert_close(groups.neighbourhoods[..., 3:], members[..., 3:])  # normals untouched
    # Distinct points: every centre is its own nearest neighbour, at offset 0.
    assert torch.equal(groups.idx[..., 0], centres_idx)
    assert groups.neighbourhoods[:, :, 0, :3].abs().max() == 0


def test_group_points_passes_gradients_to_points():
    points = make_cloud("uniform", 1, 30, torch.float64).requires_grad_()
    groups = group_points(points, farthest_point_sample(points, 4), k=3)
    groups.neighbourhoods.square().sum().backward()
    assert points.grad is not None and points.grad.abs().sum() > 0


@pytest.mark.parametrize("call, match", [
    (lambda x: farthest_point_sample(x, 11), "cannot sample 11 of 10"),
    (lambda x: farthest_point_sample(x, 0), "cannot sample 0"),
    (lambda x: farthest_point_sample(x, 2, start_index=10), "start_index"),
    (lambda x: farthest_point_sample(x[0], 2), r"\(B, N, 3\)"),
    (lambda x: knn(x, x, 11), "cannot take 11 neighbours among 10"),
    (lambda x: knn(x, x[:1], 2), "same batch"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.rand(2, 10, 3))
