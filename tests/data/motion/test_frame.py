"""The focal frame: its heading rule and the world <-> frame round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.data.motion import focal_frame, to_local, to_world
from lm4vis.data.motion.frame import rotation_of


def _track(step: tuple[float, float], n: int = 20, start=(100.0, -50.0)) -> np.ndarray:
    return np.asarray(start) + np.arange(n)[:, None] * np.asarray(step)


@pytest.mark.parametrize("name, track, heading", [
    ("east at speed", _track((1.0, 0.0)), 0.0),
    ("north at speed", _track((0.0, 1.5)), np.pi / 2),
    ("south-west at speed", _track((-1.0, -1.0)), -3 * np.pi / 4),
    # 0.2 m a step: the last displacement is under min_distance=1, the look-back spans 5 steps
    ("slow, looks back far enough", _track((0.0, -0.2)), -np.pi / 2),
    ("stationary keeps the world axes", _track((0.0, 0.0)), 0.0),
    # a stop after driving east: the look-back reaches the motion before the stop
    ("stopped after moving", np.concatenate([_track((1.0, 0.0), 10), np.full((10, 2), [109.0, -50.0])]), 0.0),
])
def test_heading(name, track, heading):
    frame = focal_frame(track, min_distance=1.0)
    assert frame.heading == pytest.approx(heading, abs=1e-9)
    np.testing.assert_allclose(frame.origin, track[-1])
    np.testing.assert_allclose(frame.to_local(track[-1:]), [[0.0, 0.0]], atol=1e-9)


def test_jitter_below_min_distance_keeps_world_axes():
    rng = np.random.default_rng(0)
    jitter = np.full((20, 2), [5.0, 5.0]) + rng.normal(0, 0.05, (20, 2))
    assert np.array_equal(focal_frame(jitter, min_distance=1.0).rotation, np.eye(2))


def test_history_lies_behind_the_origin():
    track = _track((0.7, 0.7))
    local = focal_frame(track, 1.0).to_local(track)
    assert np.all(local[:-1, 0] < 0) and np.allclose(local[:, 1], 0, atol=1e-9)


def test_rejects_unobserved_steps():
    track = _track((1.0, 0.0))
    track[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        focal_frame(track, 1.0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_round_trip_batched_forecasts(backend):
    rng = np.random.default_rng(1)
    origin = rng.uniform(-3000, 3000, (4, 2))
    rotation = np.stack([rotation_of(h) for h in rng.uniform(-np.pi, np.pi, 4)])
    forecasts = rng.normal(0, 30, (4, 6, 30, 2))  # (B, K, T, 2)
    if backend == "torch":
        origin, rotation, forecasts = (torch.from_numpy(a) for a in (origin, rotation, forecasts))
    world = to_world(forecasts, origin[:, None], rotation[:, None])
    back = to_local(world, origin[:, None], rotation[:, None])
    np.testing.assert_allclose(np.asarray(back), np.asarray(forecasts), atol=1e-9)
    # and the world positions really moved: not an identity in disguise
    assert np.abs(np.asarray(world) - np.asarray(forecasts)).max() > 100
    # one scene's frame applied alone gives the same world positions
    one = to_world(forecasts[2], origin[2], rotation[2])
    np.testing.assert_allclose(np.asarray(one), np.asarray(world[2]), atol=1e-9)
