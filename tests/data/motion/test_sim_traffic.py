"""sim-traffic: determinism by seed, the driving rules, what items say about the future."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.data.motion import (FEATURES, GROUND_TRUTH_KEYS, LAYOUTS, MANEUVERS, SimTraffic, SimTrafficDataConfig,
                                collate, focal_frame, to_world)
from lm4vis.data.motion.sim_roads import MAJOR, MINOR, Road, SimLane, resample
from lm4vis.data.motion.sim_traffic import (CAR_LENGTH, LATERAL_ACCEL, Drivers, build_route, conflicts_of,
                                            generate_scene, simulate)
from lm4vis.data.motion.vectorize import AGENT, FOCAL, LANE

COL = {name: i for i, name in enumerate(FEATURES)}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _dataset(split: str = "train", num_scenes: int = 16, seed: int = 0, **kw) -> SimTraffic:
    """``num_scenes`` in the split; the options are a run's ``data`` section (no cache unless asked)."""
    cfg = SimTrafficDataConfig(**{"num_train": num_scenes, "num_val": num_scenes, "data_seed": seed,
                                  "cache": False, **kw})
    return SimTraffic(cfg, split)


def test_scene_depends_only_on_seed_split_and_index():
    ds = _dataset(split="val")
    forward = [ds[i] for i in range(4)]
    backward = [ds[i] for i in reversed(range(4))][::-1]
    assert all(_equal(a, b) for a, b in zip(forward, backward))
    assert _equal(_dataset(split="val", num_scenes=1000)[3], forward[3])  # not on the split's size
    assert not _equal(_dataset(split="val", seed=1)[3], forward[3])
    assert not _equal(_dataset(split="train")[3], forward[3])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_makes_valid_items(layout):
    ds = _dataset(layouts=(layout,), num_scenes=4)
    assert ds.info.has_map and ds.info.extra_keys == GROUND_TRUTH_KEYS
    for i in range(4):
        item = ds[i]
        assert int(item["layout"]) == LAYOUTS.index(layout)
        assert torch.isfinite(item["vectors"]).all() and torch.isfinite(item["future"]).all()
        types = item["polyline_type"]
        assert types[0] == FOCAL and (types == LANE).any() and item["has_future"]
        assert item["relevant"].shape == types.shape and item["relevant"].any()
        for key, kind in (("target_lane", LANE), ("leader", AGENT), ("yield_to", AGENT)):
            if item[key] >= 0:
                assert types[item[key]] == kind, key
        if item["leader"] >= 0:
            assert item["relevant"][item["leader"]]
        # the focal agent ends its history at the origin, heading along +x
        focal = item["vectors"][0][~item["vector_mask"][0]]
        assert focal[-1, [COL["x_end"], COL["y_end"]]].abs().max() < 0.5
    batch = collate([ds[i] for i in range(4)])
    assert batch["relevant"].shape == batch["polyline_mask"].shape
    assert not (batch["relevant"] & batch["polyline_mask"]).any()


def test_intersections_are_multi_modal():
    ds = _dataset(layouts=("intersection",), num_scenes=48)
    headings: dict[str, list[float]] = {"straight": [], "left": [], "right": []}
    for i in range(len(ds)):
        item = ds[i]
        maneuver = MANEUVERS[int(item["maneuver"])]
        headings[maneuver].append(np.nan)
        if item["relevant"][item["target_lane"]]:  # it drove onto the connector it chose
            end = item["future"][-1] - item["future"][-4]
            headings[maneuver][-1] = float(torch.atan2(end[1], end[0]))
    # every manoeuvre is common, and the choice is random, not written in the history
    assert all(len(v) >= 8 for v in headings.values()), {k: len(v) for k, v in headings.items()}
    # where the focal agent takes its connector, it ends heading left (+y), straight or right
    mean = {k: np.nanmean(v) for k, v in headings.items()}
    assert mean["left"] > 0.3 and abs(mean["straight"]) < 0.15 and mean["right"] < -0.3, mean


def test_noise_touches_observations_only():
    clean, noisy = _dataset(noise_std=0.0)[5], _dataset(noise_std=0.3)[5]

    def world(item, xy):  # the frame itself moves with the noisy last observation
        return to_world(xy.double(), item["origin"], item["rotation"])

    # the target is the true state, wherever the noisy frame puts it
    torch.testing.assert_close(world(clean, clean["future"]), world(noisy, noisy["future"]))
    history = [world(item, item["vectors"][0][~item["vector_mask"][0]][:, :2]) for item in (clean, noisy)]
    assert 0.05 < (history[0] - history[1]).abs().max() < 1.5


def test_partial_observation():
    def vector_counts(**kw):
        item = _dataset(**kw)[2]
        return (~item["vector_mask"])[item["polyline_type"] != LANE].sum(1)

    full = vector_counts(partial_prob=0.0, dropout_prob=0.0, sensor_range=1e4)
    assert (full == 19).all()
    partial = vector_counts(partial_prob=1.0, dropout_prob=0.2)
    assert partial[0] == 19 and (partial[1:] < 19).all()  # the focal agent is always seen


def test_items_are_cached_when_asked(_private_cache):
    ds = _dataset(cache=True)
    first = ds[7]
    assert [p.name for p in _private_cache.rglob("*.npz")] == ["7.npz"]
    assert _equal(first, ds[7]) and _equal(first, _dataset()[7])


@pytest.mark.parametrize("kwargs, message", [
    (dict(layouts=("roundabout",)), "choose from"),
    (dict(layouts=()), "choose from"),
    (dict(other_agents=(5, 2)), "min <= max"),
    (dict(partial_prob=1.5), "probability"),
    (dict(noise_std=-1.0), "noise_std"),
    (dict(obs_len=1), "obs_len"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimTrafficDataConfig(**kwargs)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="unknown split"):
        _dataset(split="dev")


# -- the driving rules, on roads built by hand ---------------------------------------------------

def _drivers(n: int, speed: list[float], after: list[float] | None = None, change: float = np.inf) -> Drivers:
    return Drivers(np.full(n, 2.0), np.full(n, 1.5), np.array(speed, float),
                   np.array(after if after is not None else speed, float), np.full(n, change))


def _lane(points, **kw) -> SimLane:
    return SimLane(resample(np.asarray(points, float), 2.0), **kw)


def test_follower_stops_behind_a_stopped_leader():
    road = Road("straight", [_lane([(0, 0), (400, 0)])], [0], [0])
    routes = [build_route(road, 0, np.random.default_rng(0)) for _ in range(2)]
    # the leader brakes to a standstill from the start; the follower comes at 14 m/s
    rollout = simulate(routes, np.array([0.0, 60.0]), np.array([14.0, 6.0]),
                       _drivers(2, [14.0, 6.0], after=[14.0, 0.0], change=0.0), [], steps=200, dt=0.1)
    gap = rollout.positions[1, :, 0] - rollout.positions[0, :, 0] - CAR_LENGTH
    assert gap.min() > 0.5 and np.abs(np.diff(rollout.positions[0, -20:, 0])).max() < 0.05  # stopped
    assert (rollout.focal_leader[5:] == 1).all()


def test_curves_are_taken_within_the_lateral_limit():
    radius = 25.0
    angles = np.linspace(-np.pi / 2, np.pi, 200)
    arc = np.stack([radius * np.cos(angles), radius + radius * np.sin(angles)], 1)
    road = Road("curve", [_lane(np.concatenate([[(-80.0, 0.0)], arc]), speed_limit=20.0)], [0], [0])
    route = build_route(road, 0, np.random.default_rng(0))
    rollout = simulate([route], np.array([0.0]), np.array([15.0]), _drivers(1, [20.0]), [], steps=120, dt=0.1)
    path = rollout.positions[0]
    on_arc = np.abs(np.linalg.norm(path - [0.0, radius], axis=1) - radius) < 1.0
    speed = np.linalg.norm(np.diff(path, axis=0), axis=1) / 0.1
    inside = on_arc[1:] & (path[1:, 0] > 5)  # well into the curve
    assert inside.sum() > 10 and speed[inside].max() < np.sqrt(LATERAL_ACCEL * radius) * 1.1
    # and the car stays on its lane: within 0.5 m of the centreline everywhere
    centreline = resample(route.points, 0.05)
    assert max(np.linalg.norm(centreline - p, axis=1).min() for p in path) < 0.5


def test_minor_road_yields_to_the_major_road():
    major_in = _lane([(-60, -1.8), (-8, -1.8)], priority=MAJOR)
    major_out = _lane([(8, -1.8), (60, -1.8)])
    minor_in = _lane([(1.8, -60), (1.8, -8)], priority=MINOR, has_traffic_control=True)
    minor_out = _lane([(1.8, 8), (1.8, 60)])
    across = _lane([(-8, -1.8), (8, -1.8)], successors=[1], priority=MAJOR, is_intersection=True)
    up = _lane([(1.8, -8), (1.8, 8)], successors=[3], priority=MINOR, is_intersection=True)
    major_in.successors, minor_in.successors = [4], [5]
    road = Road("intersection", [major_in, major_out, minor_in, minor_out, across, up], [0, 2], [0, 2])
    rng = np.random.default_rng(0)
    routes = [build_route(road, 2, rng), build_route(road, 0, rng)]  # agent 0 on the minor road
    conflicts = conflicts_of(road, routes)
    assert [(c.yielding, c.priority) for c in conflicts] == [(0, 1)]
    # both would reach the crossing at about the same time
    rollout = simulate(routes, np.array([20.0, 15.0]), np.array([10.0, 10.0]), _drivers(2, [10.0, 10.0]),
                       conflicts, steps=100, dt=0.1)
    minor_enters = np.argmax(rollout.positions[0, :, 1] > -1.8)
    major_passes = np.argmax(rollout.positions[1, :, 0] > 1.8 + CAR_LENGTH)
    assert major_passes < minor_enters and (rollout.focal_yield == 1).any()


def test_generated_scenes_leave_the_history_and_future_where_the_road_is():
    scene, truth = generate_scene(SimTrafficDataConfig(layouts=["curve"], noise_std=0.0), "train", 3)
    frame = focal_frame(scene.positions[0, : scene.obs_len], 1.0)
    lanes = np.concatenate([frame.to_local(lane.points) for lane in scene.lanes])
    track = frame.to_local(scene.positions[0])
    # every position of the focal agent is within a lane width of some lane point
    assert max(np.linalg.norm(lanes - p, axis=1).min() for p in track) < 2.5
    assert truth.maneuver == MANEUVERS.index("keep")
