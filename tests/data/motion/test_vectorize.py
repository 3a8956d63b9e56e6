"""The shared vectorisation and collate, on a scene written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.data.cache import atomic_save_npz
from lm4vis.data.motion import FEATURES, Lane, Scene, collate, vectorize
from lm4vis.data.motion.vectorize import AGENT, AV, DROPPED_AGENTS, FOCAL, LANE, LEFT
from lm4vis.data.skips import Counted, Skipped

COL = {name: i for i, name in enumerate(FEATURES)}
OBS, PRED, HZ = 5, 3, 10.0


def _scene(extra_agents: int = 0) -> Scene:
    """Focal driving +x at 1 m/step to the origin; an AV 3 m left of it seen throughout; an
    agent seen at steps 0, 1 and 3 (a gap at 2); one seen once; one seen only in the future;
    a lane alongside of 12 vectors; a lane 200 m away."""
    t = np.arange(OBS + PRED)[:, None]
    focal = np.concatenate([t - (OBS - 1), np.zeros_like(t)], axis=1).astype(float)
    av = focal + [0.0, 3.0]
    gapped = focal + [0.0, -6.0]
    once = focal + [5.0, 0.0]
    future_only = focal + [1.0, 1.0]
    extras = [focal + [0.0, 10.0 + 5 * i] for i in range(extra_agents)]
    positions = np.stack([focal, av, gapped, once, future_only, *extras]) + [500.0, 200.0]
    observed = np.ones(positions.shape[:2], bool)
    observed[2, [2, 4]] = False
    observed[3, :] = False
    observed[3, 1] = True
    observed[4, :OBS] = False
    alongside = np.stack([np.arange(-6.0, 7.0), np.full(13, 1.5)], 1) + [500.0, 200.0]
    lanes = [Lane(alongside, is_intersection=True, turn=LEFT),
             Lane(np.array([[700.0, 200.0], [710.0, 200.0]]))]
    types = np.array([FOCAL, AV, AGENT, AGENT, AGENT] + [AGENT] * extra_agents)
    return Scene(42, positions, observed, types, OBS, HZ, True, lanes)


def _vectorize(scene: Scene, max_agents: int = 64):
    return vectorize(scene, PRED, max_agents=max_agents, lane_radius=50.0, lane_piece_vectors=8,
                     min_heading_distance=1.0)


def test_polylines_of_a_hand_written_scene():
    vec = _vectorize(_scene())
    item = vec.item
    # focal, then the others nearest first by their last sighting (once: 2 m, AV: 3 m, gapped:
    # 6.1 m; the future-only track is left out), then the lane pieces nearest first
    assert vec.track_of.tolist() == [0, 3, 1, 2, -1, -1]
    assert vec.lane_of.tolist() == [-1, -1, -1, -1, 0, 0]
    assert item["polyline_type"].tolist() == [FOCAL, AGENT, AV, AGENT, LANE, LANE]
    by_track = {int(t): p for p, t in enumerate(vec.track_of) if t >= 0}
    mask = item["vector_mask"]
    assert (~mask[by_track[0]]).sum() == OBS - 1  # 5 sightings, 4 vectors
    assert (~mask[by_track[1]]).sum() == OBS - 1
    gapped = item["vectors"][by_track[2], : (~mask[by_track[2]]).sum()]
    # sightings at 0, 1, 3: vectors 0->1 and 1->3; the second spans the gap, ending at step 3
    assert len(gapped) == 2
    np.testing.assert_allclose(gapped[1, COL["x_start"]:COL["y_end"] + 1], [-3.0, -6.0, -1.0, -6.0])
    np.testing.assert_allclose(gapped[:, COL["time"]], [(1 - 4) / HZ, (3 - 4) / HZ])
    once = item["vectors"][by_track[3], :1]
    assert (~mask[by_track[3]]).sum() == 1  # one sighting: a zero-length vector where it was seen
    np.testing.assert_allclose(once[0, :4], [2.0, 0.0, 2.0, 0.0])
    for track, kind in ((0, FOCAL), (1, AV), (2, AGENT)):
        row = item["vectors"][by_track[track], 0]
        assert row[COL[f"type_{['focal', 'agent', 'av', 'lane'][kind]}"]] == 1
        assert row[COL["type_lane"]] == 0 and row[COL["is_intersection"]] == 0
    # the 12-vector lane in pieces of at most 8; the far lane left out
    lanes = [p for p, lane in enumerate(vec.lane_of) if lane >= 0]
    assert [(~mask[p]).sum().item() for p in lanes] == [8, 4]  # the piece through (0, 1.5) first
    lane_rows = item["vectors"][lanes[0]][~mask[lanes[0]]]
    assert (lane_rows[:, COL["type_lane"]] == 1).all() and (lane_rows[:, COL["turn_left"]] == 1).all()
    assert (lane_rows[:, COL["is_intersection"]] == 1).all() and (lane_rows[:, COL["time"]] == 0).all()
    # the future in the frame, and the frame's inverse back to the world
    np.testing.assert_allclose(item["future"], [[1, 0], [2, 0], [3, 0]], atol=1e-6)
    assert item["origin"].tolist() == [500.0, 200.0] and item["scene_id"] == 42
    assert item["has_future"].item() is True and item["dropped_agents"] == 0
    assert not item["polyline_mask"].any()


def test_padded_vectors_are_zero():
    item = _vectorize(_scene()).item
    assert (item["vectors"][item["vector_mask"]] == 0).all()


def test_max_agents_keeps_the_nearest_and_counts_the_rest():
    vec = _vectorize(_scene(extra_agents=3), max_agents=3)
    kept = [t for t in vec.track_of if t >= 0]
    # seen in the window: AV (3 m), gapped (6 m), once (2 m at its sighting), 3 extras (10+ m)
    assert kept == [0, 3, 1] and vec.item["dropped_agents"] == 4


def test_collate_pads_and_counts():
    a = _vectorize(_scene()).item
    b = _vectorize(_scene(extra_agents=2), max_agents=4).item
    assert int(b["dropped_agents"]) == 2
    # The datasets return a scene that lost tracks as a Counted item: the scene is counted once.
    batch = collate([a, Skipped("nan-coordinates", "x.csv"), Counted(b, DROPPED_AGENTS),
                     Skipped("nan-coordinates", "y.csv")])
    p = max(len(a["polyline_type"]), len(b["polyline_type"]))
    assert batch["vectors"].shape == (2, p, 8, len(FEATURES))
    assert batch["skipped"] == {"nan-coordinates": 2, DROPPED_AGENTS: 1}
    short = 0 if len(a["polyline_type"]) < p else 1
    n = len((a, b)[short]["polyline_type"])
    assert batch["polyline_mask"][short, n:].all() and not batch["polyline_mask"][short, :n].any()
    assert (batch["polyline_type"][short, n:] == -1).all()
    assert batch["vector_mask"][short, n:].all() and (batch["vectors"][short, n:] == 0).all()
    assert batch["future"].shape == (2, PRED, 2) and batch["origin"].dtype == torch.float64
    assert collate([Skipped("no-agent", "z.csv")]) == {"skipped": {"no-agent": 1}}


def test_npz_cache_round_trip_and_refuses_pickles(tmp_path):
    item = _vectorize(_scene()).item
    atomic_save_npz(tmp_path / "x.npz", **{k: v.numpy() for k, v in item.items()})
    with np.load(tmp_path / "x.npz", allow_pickle=False) as f:
        assert all(np.array_equal(f[k], v.numpy()) and f[k].dtype == v.numpy().dtype for k, v in item.items())
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # no temporary file left behind
    with pytest.raises(TypeError, match="pickle"):
        atomic_save_npz(tmp_path / "y.npz", bad=np.array([{"a": 1}], dtype=object))
