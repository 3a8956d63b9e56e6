"""Normalisation and the training augmentations: each does what it says and no more."""

from __future__ import annotations

import numpy as np
import pytest

from lm4vis.data.points import PointAugment, normalize_unit_sphere
from lm4vis.data.points.transforms import rotation_about_axis

OFF = dict(shuffle=False, rotate=False, scale=None, translate=0.0)  # every augmentation off


def cloud_with_normals(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return np.concatenate([rng.uniform(-1, 1, (n, 3)), normals], axis=1).astype(np.float32)


def test_normalize_unit_sphere_centres_and_scales_xyz_only():
    points = cloud_with_normals() * [3, 3, 3, 1, 1, 1] + [5, -2, 1, 0, 0, 0]
    out = normalize_unit_sphere(points)
    np.testing.assert_allclose(out[:, :3].mean(axis=0), 0, atol=1e-5)
    assert np.linalg.norm(out[:, :3], axis=1).max() == pytest.approx(1, abs=1e-6)
    np.testing.assert_array_equal(out[:, 3:], points[:, 3:].astype(np.float32))
    assert np.array_equal(normalize_unit_sphere(np.ones((4, 3))), np.zeros((4, 3)))  # one repeated point


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rotation_about_axis_keeps_that_coordinate(axis):
    r = rotation_about_axis(0.7, axis)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1)
    p = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_allclose((p @ r)[:, axis], p[:, axis])


@pytest.mark.parametrize("up_axis", [0, 1, 2])
def test_rotate_turns_about_the_up_axis_and_turns_normals_too(up_axis):
    points = cloud_with_normals()
    out, _ = PointAugment(**{**OFF, "rotate": True})(points, None, np.random.default_rng(1), up_axis, normals_at=3)
    np.testing.assert_allclose(out[:, up_axis], points[:, up_axis], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[:, :3], axis=1), np.linalg.norm(points[:, :3], axis=1), atol=1e-5)
    assert not np.allclose(out[:, :3], points[:, :3])
    # The angle between each point and its normal is unchanged.
    np.testing.assert_allclose((out[:, :3] * out[:, 3:]).sum(1), (points[:, :3] * points[:, 3:]).sum(1), atol=1e-5)


def test_scale_and_translate_stay_in_their_ranges_and_normals_stay_unit():
    points = cloud_with_normals()
    aug = PointAugment(**{**OFF, "scale": (0.5, 2.0), "translate": 0.2})
    for seed in range(5):
        out, _ = aug(points, None, np.random.default_rng(seed), normals_at=3)
        # out = points * s + t per axis: recover s and t from two points.
        s = (out[1, :3] - out[0, :3]) / (points[1, :3] - points[0, :3])
        t = out[0, :3] - points[0, :3] * s
        assert ((s >= 0.5) & (s <= 2.0)).all() and (np.abs(t) <= 0.2).all()
        np.testing.assert_allclose(out[:, :3], points[:, :3] * s + t, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(out[:, 3:], axis=1), 1, atol=1e-5)


def test_jitter_is_clipped():
    points = np.zeros((1000, 3), np.float32)
    out, _ = PointAugment(**{**OFF, "jitter_std": 1.0, "jitter_clip": 0.05})(points, None, np.random.default_rng(0))
    assert np.abs(out).max() == pytest.approx(0.05) and out.std() > 0.02


def test_shuffle_permutes_points_and_mask_together():
    points = np.arange(30, dtype=np.float32).reshape(10, 3)
    mask = np.arange(10) % 2 == 0
    out, out_mask = PointAugment(**{**OFF, "shuffle": True})(points, mask, np.random.default_rng(0))
    assert sorted(map(tuple, out)) == sorted(map(tuple, points)) and not np.array_equal(out, points)
    np.testing.assert_array_equal(out_mask, (out[:, 0] / 3) % 2 == 0)  # each mask bit still on its point


def test_dropout_keeps_size_and_copies_the_first_point():
    points = np.arange(3000, dtype=np.float32).reshape(1000, 3)
    mask = np.zeros(1000, bool)
    out, out_mask = PointAugment(**{**OFF, "dropout_max": 0.875})(points, mask, np.random.default_rng(2))
    dropped = (out == points[0]).all(axis=1)
    assert out.shape == points.shape and 0 < dropped.sum() < 875
    np.testing.assert_array_equal(out[~dropped], points[~dropped])
    assert not out_mask.any()


def test_augment_reads_no_global_generator():
    points = cloud_with_normals()
    aug = PointAugment(rotate=True, jitter_std=0.01, dropout_max=0.5)
    np.random.seed(0)
    a, _ = aug(points, None, np.random.default_rng(7))
    np.random.seed(1)
    b, _ = aug(points, None, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    (dict(scale=(2.0, 1.0)), "scale"), (dict(scale=(0.0, 1.0)), "scale"), (dict(translate=-1), ">= 0"),
    (dict(dropout_max=1.0), "dropout_max"),
])
def test_bad_augment_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PointAugment(**kwargs)
