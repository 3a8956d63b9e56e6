"""Procedural lane graphs for the traffic simulator: intersections, straight roads, curves, merges.

A road is a set of lanes (centrelines in driving order, with successors), built in a canonical
frame and then placed at a random pose, so that nothing about a scene's world coordinates is
fixed. Traffic drives on the right. Each lane carries what the simulator's rules need: a speed
limit and a right-of-way ``priority``; and what Argoverse's map provides, so items look alike:
``is_intersection``, ``has_traffic_control`` and ``turn``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .vectorize import LEFT, NO_TURN, RIGHT

LAYOUTS: tuple[str, ...] = ("intersection", "straight", "curve", "merge")
LANE_WIDTH = 3.6
#: Metres between the points of a lane centreline: the map's vectors.
LANE_SPACING = 2.0
#: Right of way: a route on a lower-priority lane yields to one on a higher.
MINOR, MAJOR = 1, 2


@dataclass
class SimLane:
    """One lane of a generated road.

    Args:
        points: (N, 2) float64 centreline in driving order, ``LANE_SPACING`` apart.
        successors: indices of the lanes it leads into.
        speed_limit: m/s.
        priority: `MAJOR` or `MINOR`.
        is_intersection, has_traffic_control, turn: Argoverse's lane attributes.
    """

    points: np.ndarray
    successors: list[int] = field(default_factory=list)
    speed_limit: float = 12.0
    priority: int = MAJOR
    is_intersection: bool = False
    has_traffic_control: bool = False
    turn: int = NO_TURN


@dataclass
class Road:
    """A generated road.

    Args:
        layout: one of `LAYOUTS`.
        lanes: its lanes.
        entries: lanes where traffic enters the scene.
        focal_entries: entries the focal agent may start on (those that lead to a choice or a
            manoeuvre: the approaches of an intersection, the ramp and the main road of a merge).
    """

    layout: str
    lanes: list[SimLane]
    entries: list[int]
    focal_entries: list[int]

    def place(self, rotation: float, translation: np.ndarray) -> Road:
        """The same road rotated by ``rotation`` (radians) and then shifted."""
        c, s = np.cos(rotation), np.sin(rotation)
        turn = np.array([[c, s], [-s, c]])  # row vectors: p @ turn rotates p counter-clockwise
        for lane in self.lanes:
            lane.points = lane.points @ turn + translation
        return self


def resample(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points along the polyline ``points``, evenly spaced (at most ``spacing`` apart), ends kept."""
    points = np.asarray(points, np.float64)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    count = max(2, int(np.ceil(s[-1] / spacing)) + 1)
    grid = np.linspace(0.0, s[-1], count)
    return np.stack([np.interp(grid, s, points[:, 0]), np.interp(grid, s, points[:, 1])], axis=1)


def _segment(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return resample(np.stack([start, end]), LANE_SPACING)


def _bezier(start: np.ndarray, control: np.ndarray, end: np.ndarray) -> np.ndarray:
    t = np.linspace(0.0, 1.0, 64)[:, None]
    curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
    return resample(curve, LANE_SPACING)


def _arc(center: np.ndarray, radius: float, start_angle: float, sweep: float) -> np.ndarray:
    angles = start_angle + np.linspace(0.0, sweep, max(8, int(abs(sweep) * radius / 0.5)))
    return resample(center + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), LANE_SPACING)


def _right_of(direction: np.ndarray) -> np.ndarray:
    return np.array([direction[1], -direction[0]])


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _connector(start: np.ndarray, d_in: np.ndarray, end: np.ndarray, d_out: np.ndarray) -> np.ndarray:
    """A smooth lane from ``start`` (heading ``d_in``) to ``end`` (heading ``d_out``): a quadratic
    Bezier whose control point is where the two headings' lines meet."""
    system = np.stack([d_in, -d_out], axis=1)
    if abs(np.linalg.det(system)) < 1e-3:  # (nearly) parallel: a straight connection
        return _segment(start, end)
    t, _ = np.linalg.solve(system, end - start)
    return _bezier(start, start + t * d_in, end)


def _turn_of(d_in: np.ndarray, d_out: np.ndarray) -> int:
    turn = _cross(d_in, d_out)
    return LEFT if turn > 0.3 else RIGHT if turn < -0.3 else NO_TURN


def intersection(rng: np.random.Generator) -> Road:
    """A 4-way (or T) junction: a major road through arms 0 and 2, a minor road whose approaches
    have a stop sign; from every approach a connector to every other arm's exit."""
    arms = [0, 1, 2, 3]
    if rng.random() < 0.3:
        arms.remove(int(rng.choice([1, 3])))  # a T: the minor road ends here
    angles = {k: k * np.pi / 2 + rng.uniform(-0.15, 0.15) for k in arms}
    half = rng.uniform(7.0, 11.0)
    length = rng.uniform(70.0, 100.0)
    limit = rng.uniform(9.0, 14.0)
    lanes: list[SimLane] = []
    incoming, outgoing, direction = {}, {}, {}
    for k in arms:
        u = np.array([np.cos(angles[k]), np.sin(angles[k])])
        direction[k] = u
        priority = MAJOR if k in (0, 2) else MINOR
        offset = LANE_WIDTH / 2 * _right_of(u)
        incoming[k] = len(lanes)
        lanes.append(SimLane(_segment(u * (half + length) - offset, u * half - offset), speed_limit=limit,
                             priority=priority, has_traffic_control=priority == MINOR))
        outgoing[k] = len(lanes)
        lanes.append(SimLane(_segment(u * half + offset, u * (half + length) + offset), speed_limit=limit))
    for k in arms:
        for m in arms:
            if m == k:
                continue
            d_in, d_out = -direction[k], direction[m]
            start, end = lanes[incoming[k]].points[-1], lanes[outgoing[m]].points[0]
            lanes[incoming[k]].successors.append(len(lanes))
            lanes.append(SimLane(_connector(start, d_in, end, d_out), [outgoing[m]], limit,
                                 lanes[incoming[k]].priority, is_intersection=True,
                                 has_traffic_control=lanes[incoming[k]].has_traffic_control,
                                 turn=_turn_of(d_in, d_out)))
    entries = [incoming[k] for k in arms]
    return Road("intersection", lanes, entries, entries)


def straight(rng: np.random.Generator) -> Road:
    """A straight two-way road with one or two lanes each way, in segments as a map has them."""
    per_side = int(rng.integers(1, 3))
    length = rng.uniform(160.0, 220.0)
    limit = rng.uniform(10.0, 15.0)
    cuts = np.sort(rng.uniform(0.2, 0.8, 2)) * length
    lanes: list[SimLane] = []
    entries = []
    for sign in (1.0, -1.0):  # eastbound on the south side, westbound on the north side
        for j in range(per_side):
            y = -sign * LANE_WIDTH * (j + 0.5)
            xs = sign * (np.concatenate([[0.0], cuts, [length]]) - length / 2)
            first = len(lanes)
            for a, b in zip(xs[:-1], xs[1:]):
                if len(lanes) > first:
                    lanes[-1].successors.append(len(lanes))
                lanes.append(SimLane(_segment(np.array([a, y]), np.array([b, y])), speed_limit=limit))
            entries.append(first)
    return Road("straight", lanes, entries, entries)


def curve(rng: np.random.Generator) -> Road:
    """A two-way road: a straight, an arc of random radius and sweep (either way), a straight."""
    radius = rng.uniform(20.0, 80.0)
    sweep = rng.uniform(np.radians(40), np.radians(110)) * rng.choice([-1.0, 1.0])
    entry, exit_ = rng.uniform(50.0, 80.0), rng.uniform(40.0, 60.0)
    limit = rng.uniform(9.0, 14.0)
    # The axis: along +x to the origin, the arc, then straight on along the final heading.
    side = np.sign(sweep)
    center = np.array([0.0, side * radius])
    arc = _arc(center, radius, -side * np.pi / 2, sweep)
    heading = np.array([np.cos(sweep), np.sin(sweep)])
    pieces = [_segment(np.array([-entry, 0.0]), np.zeros(2)), arc,
              _segment(arc[-1], arc[-1] + exit_ * heading)]
    lanes: list[SimLane] = []
    entries = []
    for forward in (True, False):
        first = len(lanes)
        sequence = pieces if forward else [p[::-1] for p in pieces[::-1]]
        for piece in sequence:
            tangent = np.gradient(piece, axis=0)
            tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
            shifted = piece + LANE_WIDTH / 2 * np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
            if len(lanes) > first:
                lanes[-1].successors.append(len(lanes))
            lanes.append(SimLane(resample(shifted, LANE_SPACING), speed_limit=limit))
        entries.append(first)
    return Road("curve", lanes, entries, entries)


def merge(rng: np.random.Generator) -> Road:
    """A main road with an on-ramp joining from the right; ramp traffic yields."""
    before, after = rng.uniform(80.0, 110.0), rng.uniform(80.0, 110.0)
    ramp_length = rng.uniform(50.0, 80.0)
    angle = rng.uniform(np.radians(15), np.radians(35))
    limit = rng.uniform(11.0, 15.0)
    y = -LANE_WIDTH / 2
    merge_point = np.array([0.0, y])
    main_before = SimLane(_segment(np.array([-before, y]), merge_point), [1], limit)
    main_after = SimLane(_segment(merge_point, np.array([after, y])), [], limit)
    ramp_start = merge_point + ramp_length * np.array([-np.cos(angle), -np.sin(angle)])
    # The ramp joins tangentially: its control point lies on the main lane behind the merge.
    control = merge_point - np.array([0.45 * ramp_length, 0.0])
    ramp = SimLane(_bezier(ramp_start, control, merge_point), [1], limit * 0.8, priority=MINOR)
    opposite = SimLane(_segment(np.array([after, -y]), np.array([-before, -y])), [], limit)
    return Road("merge", [main_before, main_after, ramp, opposite], entries=[0, 2, 3], focal_entries=[0, 2])


BUILDERS = {"intersection": intersection, "straight": straight, "curve": curve, "merge": merge}


def make_road(layout: str, rng: np.random.Generator) -> Road:
    """A road of ``layout`` at a random pose (rotation, and a shift of up to a kilometre).

    Args:
        layout: one of `LAYOUTS`.
        rng: the scene's generator.
    """
    road = BUILDERS[layout](rng)
    return road.place(rng.uniform(0.0, 2 * np.pi), rng.uniform(-1000.0, 1000.0, 2))


__all__ = ["LAYOUTS", "LANE_WIDTH", "LANE_SPACING", "MAJOR", "MINOR", "SimLane", "Road", "resample",
           "make_road"]
