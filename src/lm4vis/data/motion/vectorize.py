"""One vectorisation for every motion dataset: tracks and lanes -> polylines of vectors.

A dataset reads a `Scene` (world coordinates, its own format's quirks resolved) and `vectorize`
turns it into an item, as VectorNet does: every track and every lane is a polyline, a sequence
of vectors ``(start_xy, end_xy, attributes)`` in the focal agent's frame (`frame.focal_frame`).

Item keys (P polylines, V vectors in the longest of them, F = ``len(FEATURES)``):

====================  ===============  ======================================================
``vectors``           (P, V, F) f32    the features named in `FEATURES`, zero at padding
``vector_mask``       (P, V) bool      True where a polyline has no vector (padding)
``polyline_mask``     (P,) bool        True for padding polylines (none in an item; the
                                       collate adds them)
``polyline_type``     (P,) long        index into `POLYLINE_TYPES`; -1 at padding
``future``            (T_f, 2) f32     the focal agent's future in its frame; zeros when
                                       ``has_future`` is False
``has_future``        () bool          the future is ground truth (False on a test split)
``origin``            (2,) f64         the frame's origin in world coordinates
``rotation``          (2, 2) f64       the frame's axes in world coordinates (`frame.to_world`)
``scene_id``          () long          the scene's id (Argoverse's sequence id)
``dropped_agents``    () long          tracks beyond ``max_agents`` that were left out
====================  ===============  ======================================================

Polyline 0 is always the focal agent, then the other tracks nearest first, then the lane
pieces nearest first. The paper's polyline id is not a feature: the (P, V) layout already
groups vectors into polylines, and an integer id would only make the model depend on the
order they are listed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..skips import Skipped, drop_skipped
from .frame import focal_frame

POLYLINE_TYPES: tuple[str, ...] = ("focal", "agent", "av", "lane")
FOCAL, AGENT, AV, LANE = range(len(POLYLINE_TYPES))
TURNS: tuple[str, ...] = ("none", "left", "right")
NO_TURN, LEFT, RIGHT = range(len(TURNS))

#: What each of the F numbers of a vector means. Positions in metres (focal frame); ``time`` in
#: seconds relative to the last observed step (<= 0; 0 for lanes); then the polyline type
#: one-hot and the lane attributes Argoverse's map provides (0 for tracks).
FEATURES: tuple[str, ...] = (
    "x_start", "y_start", "x_end", "y_end", "time",
    *(f"type_{name}" for name in POLYLINE_TYPES),
    "is_intersection", "has_traffic_control", "turn_left", "turn_right",
)
NUM_FEATURES = len(FEATURES)
_COLUMN = {name: i for i, name in enumerate(FEATURES)}
_TYPE0 = _COLUMN[f"type_{POLYLINE_TYPES[0]}"]

#: Item keys with a leading polyline axis, and the value their padding takes in a batch.
POLYLINE_PAD: dict[str, Any] = {
    "vectors": 0.0, "vector_mask": True, "polyline_mask": True, "polyline_type": -1,
    "relevant": False,
}
#: Where the collate counts scenes that lost tracks to ``max_agents``, next to skipped scenes.
DROPPED_AGENTS = "agents-beyond-max_agents"


@dataclass(frozen=True)
class Lane:
    """A lane centreline in world coordinates.

    Args:
        points: (N, 2) float64, N >= 2, in driving order.
        is_intersection, has_traffic_control: Argoverse's lane attributes.
        turn: index into `TURNS`.
    """

    points: np.ndarray
    is_intersection: bool = False
    has_traffic_control: bool = False
    turn: int = NO_TURN


@dataclass(frozen=True)
class Scene:
    """One scene in world coordinates, as a dataset reads it.

    Args:
        scene_id: the scene's id in its dataset.
        positions: (A, T, 2) float64 world positions of every track over the whole window;
            any value where a track was not observed.
        observed: (A, T) bool, True where the track was seen.
        track_type: (A,) polyline type of each track (FOCAL, AGENT or AV). Row 0 is the focal
            agent, observed at every observed step.
        obs_len: number of observed steps; the future is ``positions[0, obs_len:]``.
        hz: steps per second.
        has_future: the focal agent's future steps are ground truth.
        lanes: lane centrelines around the scene (empty without a map).
    """

    scene_id: int
    positions: np.ndarray
    observed: np.ndarray
    track_type: np.ndarray
    obs_len: int
    hz: float
    has_future: bool
    lanes: Sequence[Lane] = field(default_factory=tuple)


@dataclass(frozen=True)
class Vectorized:
    """An item and where its polylines came from (what a dataset needs to point at polylines).

    Args:
        item: the item (keys in the module docstring).
        track_of: (P,) index into the scene's tracks of each polyline, -1 for lanes.
        lane_of: (P,) index into the scene's lanes of each polyline, -1 for tracks.
    """

    item: dict[str, Tensor]
    track_of: np.ndarray
    lane_of: np.ndarray


def _track_vectors(local: np.ndarray, steps: np.ndarray, obs_len: int, hz: float) -> np.ndarray:
    """Vectors between consecutive observations of one track; a gap makes one longer vector
    (its end time says when), a single sighting a zero-length vector where it was seen."""
    if len(steps) == 1:
        starts, ends, times = local, local, steps
    else:
        starts, ends, times = local[:-1], local[1:], steps[1:]
    out = np.zeros((len(starts), NUM_FEATURES), np.float32)
    out[:, 0:2], out[:, 2:4] = starts, ends
    out[:, _COLUMN["time"]] = (times - (obs_len - 1)) / hz
    return out


def _lane_pieces(lane: Lane, local: np.ndarray, piece: int) -> list[np.ndarray]:
    """The lane's vectors in pieces of at most ``piece`` vectors (VectorNet's lane pieces)."""
    out = np.zeros((len(local) - 1, NUM_FEATURES), np.float32)
    out[:, 0:2], out[:, 2:4] = local[:-1], local[1:]
    out[:, _TYPE0 + LANE] = 1.0
    out[:, _COLUMN["is_intersection"]] = lane.is_intersection
    out[:, _COLUMN["has_traffic_control"]] = lane.has_traffic_control
    out[:, _COLUMN["turn_left"]] = lane.turn == LEFT
    out[:, _COLUMN["turn_right"]] = lane.turn == RIGHT
    return [out[i:i + piece] for i in range(0, len(out), piece)]


def vectorize(
    scene: Scene,
    pred_len: int,
    max_agents: int,
    lane_radius: float,
    lane_piece_vectors: int,
    min_heading_distance: float,
) -> Vectorized:
    """A scene as polylines in its focal frame.

    Args:
        scene: the scene in world coordinates.
        pred_len: future steps in the item (``future`` is (pred_len, 2)).
        max_agents: most track polylines, the focal agent included; the tracks nearest to it
            at their last observed step are kept and the rest counted in ``dropped_agents``.
        lane_radius: lane pieces with no point within this many metres of the focal agent are
            left out.
        lane_piece_vectors: lanes longer than this many vectors are split into pieces.
        min_heading_distance: see `frame.focal_frame`.
    """
    obs = scene.obs_len
    seen = scene.observed[:, :obs]
    frame = focal_frame(scene.positions[0, :obs], min_heading_distance)

    # Tracks seen in the observed window, nearest first (by their last sighting in it).
    others = np.flatnonzero(seen[1:].any(axis=1)) + 1
    last_step = obs - 1 - np.argmax(seen[others, ::-1], axis=1)
    distance = np.linalg.norm(scene.positions[others, last_step] - frame.origin, axis=1)
    order = others[np.argsort(distance, kind="stable")]
    kept = np.concatenate([[0], order[: max_agents - 1]])
    dropped = len(order) - (len(kept) - 1)

    polylines: list[np.ndarray] = []
    types: list[int] = []
    track_of: list[int] = []
    lane_of: list[int] = []
    for a in kept:
        steps = np.flatnonzero(seen[a])
        local = frame.to_local(scene.positions[a, steps])
        vectors = _track_vectors(local, steps, obs, scene.hz)
        kind = FOCAL if a == 0 else int(scene.track_type[a])
        vectors[:, _TYPE0 + kind] = 1.0
        polylines.append(vectors)
        types.append(kind)
        track_of.append(int(a))

    pieces: list[tuple[float, int, np.ndarray]] = []
    for index, lane in enumerate(scene.lanes):
        local = frame.to_local(lane.points)
        for vectors in _lane_pieces(lane, local, lane_piece_vectors):
            ends = vectors[:, 0:4].reshape(-1, 2)
            nearest = float(np.linalg.norm(ends, axis=1).min())
            if nearest <= lane_radius:
                pieces.append((nearest, index, vectors))
    pieces.sort(key=lambda p: p[0])  # stable: pieces at equal distance keep the map's order
    for _, index, vectors in pieces:
        polylines.append(vectors)
        types.append(LANE)
        track_of.append(-1)
        lane_of.append(index)
    lane_of = [-1] * len(kept) + lane_of

    num_vectors = max(len(p) for p in polylines)
    vectors = np.zeros((len(polylines), num_vectors, NUM_FEATURES), np.float32)
    vector_mask = np.ones((len(polylines), num_vectors), bool)
    for i, p in enumerate(polylines):
        vectors[i, : len(p)] = p
        vector_mask[i, : len(p)] = False

    future = np.zeros((pred_len, 2), np.float32)
    if scene.has_future:
        future[:] = frame.to_local(scene.positions[0, obs: obs + pred_len])
    item = {
        "vectors": torch.from_numpy(vectors),
        "vector_mask": torch.from_numpy(vector_mask),
        "polyline_mask": torch.zeros(len(polylines), dtype=torch.bool),
        "polyline_type": torch.tensor(types, dtype=torch.long),
        "future": torch.from_numpy(future),
        "has_future": torch.tensor(scene.has_future),
        "origin": torch.from_numpy(frame.origin.copy()),
        "rotation": torch.from_numpy(frame.rotation.copy()),
        "scene_id": torch.tensor(scene.scene_id, dtype=torch.long),
        "dropped_agents": torch.tensor(dropped, dtype=torch.long),
    }
    return Vectorized(item, np.asarray(track_of), np.asarray(lane_of))


def collate(items: list[dict[str, Tensor] | Skipped]) -> dict[str, Any]:
    """A batch of motion items, padded to the most polylines and vectors in it.

    Polyline-axis keys (`POLYLINE_PAD`) are padded with their padding value; every other key is
    stacked. ``batch["skipped"]`` counts the scenes skipped in this batch by reason, and the
    scenes that lost tracks to ``max_agents`` (`Counted` items, as the datasets return them)
    under `DROPPED_AGENTS`; a batch whose scenes were all skipped holds only ``skipped``.

    Args:
        items: dataset items, or `Skipped` markers in place of unusable scenes.
    """
    kept, skipped = drop_skipped(items)  # counts skipped scenes and those that lost tracks
    if not kept:
        return {"skipped": skipped}
    num_polylines = max(len(item["polyline_type"]) for item in kept)
    num_vectors = max(item["vectors"].shape[1] for item in kept)
    batch: dict[str, Any] = {}
    for key, first in kept[0].items():
        if key not in POLYLINE_PAD:
            batch[key] = torch.stack([item[key] for item in kept])
            continue
        shape = (num_polylines, num_vectors, *first.shape[2:])[: first.dim()]
        out = first.new_full((len(kept), *shape), POLYLINE_PAD[key])
        for i, item in enumerate(kept):
            value = item[key]
            out[(i, *(slice(0, n) for n in value.shape))] = value
        batch[key] = out
    batch["skipped"] = skipped
    return batch


__all__ = ["POLYLINE_TYPES", "FOCAL", "AGENT", "AV", "LANE", "TURNS", "NO_TURN", "LEFT", "RIGHT",
           "FEATURES", "NUM_FEATURES", "POLYLINE_PAD", "DROPPED_AGENTS", "Lane", "Scene",
           "Vectorized", "vectorize", "collate"]
