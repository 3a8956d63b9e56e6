"""shapes3d: deterministic by (data_seed, split, index), balanced, masks true to the outliers,
and shapes that are what their names say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lm4vis.data.points import POINTBERT_AUGMENT, Shapes3DConfig, build_shapes3d, collate_points
from lm4vis.data.points.shapes3d import (CLASS_NAMES, SHAPES, make_shape, random_rotation, union_of_boxes,
                                         upright_rotation)

SMALL = dict(num_points=64, train_per_class=3, val_per_class=2, test_per_class=2)


def test_at_least_twelve_classes_balanced_in_every_split():
    assert len(CLASS_NAMES) >= 12
    for split, per_class in (("train", 3), ("val", 2), ("test", 2)):
        ds = build_shapes3d(split, **SMALL)
        assert len(ds) == per_class * len(CLASS_NAMES)
        assert np.bincount(ds.targets).tolist() == [per_class] * len(CLASS_NAMES)
        assert [int(ds[i]["label"]) for i in range(len(ds))] == ds.targets.tolist()


def test_items_depend_only_on_seed_split_and_index():
    a = build_shapes3d("train", **SMALL)
    b = build_shapes3d("train", **SMALL)
    order = list(range(len(b)))[::-1]  # read in another order: the same bytes
    items = {i: b[i] for i in order}
    for i in range(len(a)):
        torch.testing.assert_close(a[i]["points"], items[i]["points"], rtol=0, atol=0)
        assert torch.equal(a[i]["mask"], items[i]["mask"])
    other_split = build_shapes3d("val", **SMALL)
    other_seed = build_shapes3d("train", **{**SMALL, "data_seed": 1})
    assert not torch.equal(a[0]["points"], other_split[0]["points"])
    assert not torch.equal(a[0]["points"], other_seed[0]["points"])


def test_worker_count_does_not_change_the_batches():
    ds = build_shapes3d("train", augment=POINTBERT_AUGMENT, seed=5, **SMALL)
    keys = [(i, 3) for i in range(16)]  # what EpochSampler(with_epoch=True) yields in epoch 3

    def batches(workers):
        loader = DataLoader(ds, batch_size=4, sampler=keys, num_workers=workers, collate_fn=collate_points,
                            multiprocessing_context="fork" if workers else None)
        return [b["points"] for b in loader]

    for x, y in zip(batches(0), batches(2)):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_items_and_masks():
    ds = build_shapes3d("train", **{**SMALL, "num_points": 512, "outlier_max": 0.2})
    saw_outliers = False
    for i in range(len(ds)):
        item = ds[i]
        points, mask = item["points"].numpy(), item["mask"].numpy()
        assert points.shape == (512, 3) and points.dtype == np.float32 and mask.dtype == bool
        assert np.linalg.norm(points, axis=1).max() <= 1 + 0.1  # unit ball (plus noise)
        assert mask.sum() >= 512 * 0.8
        saw_outliers |= not mask.all()
        # Outliers are not at fixed positions (the FPS start point would find them).
        if (~mask).sum() > 5:
            assert np.flatnonzero(~mask).min() < 512 - (~mask).sum()
    assert saw_outliers


def test_object_points_lie_on_the_surface_not_the_outliers():
    cfg = Shapes3DConfig(num_points=400, noise_max=0.0, partial_prob=0.0, outlier_max=0.2, scale_range=(0.8, 0.8))
    points, mask = make_shape(CLASS_NAMES.index("sphere"), np.random.default_rng(0), cfg)
    radius = np.linalg.norm(points, axis=1)
    # On the sphere's radius (less 2% where a flat facet cuts under the true sphere); the
    # outliers are spread through the ball.
    assert ((radius[mask] <= 0.8 + 1e-6) & (radius[mask] > 0.8 * 0.98)).all()
    assert ((radius[~mask] > 0.8 + 1e-6) | (radius[~mask] < 0.8 * 0.98)).mean() > 0.9


@pytest.mark.parametrize("name, check", [
    # canonical pose, before rotation and scaling: the geometry that tells similar classes apart
    ("cylinder", lambda p: np.isclose(np.abs(p[:, 1]), np.abs(p[:, 1]).max()).mean() > 0.1),  # flat ends
    ("capsule", lambda p: np.isclose(np.abs(p[:, 1]), np.abs(p[:, 1]).max(), atol=1e-3).mean() < 0.02),
    ("torus", lambda p: np.ptp(p[:, 1]) < 0.7),
    ("ring", lambda p: np.isclose(np.abs(p[:, 1]), np.abs(p[:, 1]).max()).mean() > 0.1),  # flat faces
    ("cube", lambda p: np.isclose(np.abs(p).max(axis=1), np.abs(p).max(axis=1)).all()),
    ("l_shape", lambda p: p[:, 0].min() > -1e-9 and p[:, 1].min() > -1e-9),  # both bars from the corner
    ("t_shape", lambda p: abs(p[:, 0].mean()) < 0.1),  # symmetric about the stem
])
def test_shapes_have_their_geometry(name, check):
    points = SHAPES[name](np.random.default_rng(0), 2000)
    assert points.shape == (2000, 3) and check(points)


def test_union_of_boxes_has_no_inner_faces():
    # Boxes x in [-1, 1] and x in [0, 2]: the faces at x = 1 and x = 0 are inside the union.
    boxes = [(np.zeros(3), np.ones(3)), (np.array([1.0, 0, 0]), np.ones(3))]
    p = union_of_boxes(boxes, 3000, np.random.default_rng(0))
    off_edges = (np.abs(p[:, 1]) < 0.99) & (np.abs(p[:, 2]) < 0.99)
    assert not (off_edges & (np.isclose(p[:, 0], 1) | np.isclose(p[:, 0], 0))).any()
    assert (np.isclose(p[:, 0], -1) & off_edges).any() and (np.isclose(p[:, 0], 2) & off_edges).any()
    assert ((p[:, 0] > -1 - 1e-9) & (p[:, 0] < 2 + 1e-9)).all()


@pytest.mark.parametrize("make, max_tilt", [(random_rotation, 180.0), (lambda rng: upright_rotation(rng, 30.0), 30.0),
                                            (lambda rng: upright_rotation(rng, 0.0), 0.0)])
def test_rotations(make, max_tilt):
    tilts = []
    for seed in range(50):
        r = make(np.random.default_rng(seed))
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1)
        tilts.append(np.degrees(np.arccos(np.clip((r @ [0, 1, 0])[1], -1, 1))))  # how far "up" moved
    assert max(tilts) <= max_tilt + 1e-6 and (max_tilt == 0 or max(tilts) > max_tilt / 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_points=1), "num_points"), (dict(train_per_class=0), "at least one item"),
    (dict(scale_range=(0.5, 1.5)), "scale_range"), (dict(keep_range=(0.0, 0.5)), "keep_range"),
    (dict(outlier_max=1.0), "outlier_max"), (dict(rotation="any"), "upright, so3"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Shapes3DConfig(**kwargs)


def test_unknown_option_and_split():
    with pytest.raises(TypeError, match="num_pointz"):
        build_shapes3d("train", num_pointz=3)
    with pytest.raises(ValueError, match="has no split 'all'"):
        build_shapes3d("all")
