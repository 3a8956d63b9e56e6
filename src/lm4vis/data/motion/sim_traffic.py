"""sim-traffic: a small traffic simulator, the motion dataset that needs no download.

Each scene draws a road (`sim_roads`: an intersection, a straight road, a curve or a merge),
spawns the focal agent on an approach and other agents around it, and drives all of them for
warm-up + observed + future steps:

- vehicles follow their routes with a kinematic bicycle model steered by pure pursuit;
- speed comes from the intelligent driver model (IDM) towards a desired speed that follows the
  agent's speed profile (one random change of mind: braking, or speeding up) and is capped so
  that curves are taken within a lateral-acceleration limit;
- agents follow the vehicle ahead on their path (IDM's gap term), and yield where their route
  crosses or merges into a route with the right of way (major road over stop-signed minor road,
  straight over turning, main road over ramp): they stop at the conflict when the other agent
  would get there within a few seconds, unless they are too close to stop;
- at an intersection the focal agent goes straight, left or right at random, and on the other
  layouts it may brake or speed up, so its future is genuinely multi-modal given its past;
- observations carry Gaussian noise; other agents are seen only within sensor range, some of
  them over part of the observed window, with random drop-outs. The focal agent is seen
  throughout and its future is the simulator's true state.

Scene ``i`` of a split depends only on ``(seed, split, i)``. Items carry the ground truth of
what decides the focal agent's future (keys in `SimTraffic`), for the analysis.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..base import SPLITS, check_split
from ..cache import cache_dir
from ..configs import SimTrafficDataConfig
from ..skips import SkipLog
from .base import MotionDataset, MotionInfo
from .sim_roads import LANE_SPACING, LAYOUTS, Road, make_road
from .vectorize import AGENT, FOCAL, LEFT, NO_TURN, RIGHT, Lane, Scene

NAME = "sim-traffic"
MANEUVERS: tuple[str, ...] = ("keep", "straight", "left", "right", "merge")
KEEP, STRAIGHT, TURN_LEFT, TURN_RIGHT, MERGE = range(len(MANEUVERS))
#: Item keys the simulator adds to the shared ones.
GROUND_TRUTH_KEYS: tuple[str, ...] = ("layout", "maneuver", "target_lane", "leader", "yield_to", "relevant")
#: Bumped whenever the simulation changes, so no cache of an older version is read.
FORMAT_VERSION = 1

# Vehicles and drivers. Lengths in metres, speeds in m/s, accelerations in m/s^2.
ROUTE_SPACING = 1.0  # route points for the dynamics; index k sits at arc length k metres
RUNOFF = 150.0  # a straight continuation past a route's last lane, so no one stops at the map edge
WHEELBASE = 2.8
CAR_LENGTH = 4.5
MAX_STEER = 0.6  # radians
LATERAL_ACCEL = 3.0  # curve speed: v = sqrt(a_lat / curvature)
COMFORT_DECEL = 2.5
# Seconds ahead at which the curve speed is read: IDM's free-road term slows down smoothly,
# not at once, and reading the limit where the car is would enter curves too fast.
ANTICIPATION = 2.0
MAX_DECEL = 8.0
MIN_GAP = 2.0  # IDM's jam distance
CROSSING = 1.8  # two intersection lanes whose points come this close cross there
LOOKAHEAD = 60.0  # metres ahead within which a vehicle on my route is my leader
YIELD_HORIZON = 3.0  # seconds: a right-of-way agent closer in time than this is waited for
YIELD_DECEL = 4.0  # an agent that would need more than this to stop at its yield point goes on
STOP_BACK = 4.0  # a yielding agent stops this far before the conflict point
WARMUP = 10  # steps simulated before the first observed one, so motion is under way


#: The options a scene depends on (besides seed and split): the cache folder is keyed by them.
SCENE_OPTIONS: tuple[str, ...] = (
    "max_agents", "lane_radius", "lane_piece_vectors", "min_heading_distance", "layouts", "obs_len",
    "pred_len", "hz", "other_agents", "noise_std", "partial_prob", "dropout_prob", "sensor_range",
)


def split_size(cfg: SimTrafficDataConfig, split: str) -> int:
    """Scenes in ``split``: ``num_train`` for train, ``num_val`` for val and test."""
    return cfg.num_train if split == "train" else cfg.num_val


@dataclass(frozen=True)
class Route:
    """An agent's path: its lanes, resampled every `ROUTE_SPACING` metres, then the run-off.

    Args:
        lanes: lane indices in driving order.
        starts: arc length at which each lane begins, and (last) where the run-off begins.
        points: (M, 2) world positions; point k is at arc length k * `ROUTE_SPACING`.
        segment: (M,) lane of each point; on the run-off ``-1 - last lane``, so that two
            routes leaving by the same lane share their run-off too.
        yaw: (M,) heading of the path at each point.
        allowed_speed: (M,) the fastest speed at each point from which every curve ahead can
            still be taken within `LATERAL_ACCEL` by braking at `COMFORT_DECEL`.
        rank: right of way at conflicts; the lower rank yields.
    """

    lanes: tuple[int, ...]
    starts: tuple[float, ...]
    points: np.ndarray
    segment: np.ndarray
    yaw: np.ndarray
    allowed_speed: np.ndarray
    rank: tuple[int, int, int]

    @property
    def segments(self) -> tuple[int, ...]:
        return (*self.lanes, -1 - self.lanes[-1])

    def at(self, s: float) -> np.ndarray:
        """World position at arc length ``s``."""
        k = float(np.clip(s / ROUTE_SPACING, 0, len(self.points) - 1))
        lo = int(k)
        hi = min(lo + 1, len(self.points) - 1)
        return self.points[lo] + (k - lo) * (self.points[hi] - self.points[lo])

    def lane_start(self, lane: int) -> float:
        """Arc length at which ``lane`` begins on this route."""
        return self.starts[self.lanes.index(lane)]


#: Right of way among the turns of a route's intersection lane: straight, then right, then left.
_TURN_RANK = {NO_TURN: 2, RIGHT: 1, LEFT: 0}


def _allowed_speed(safe: np.ndarray) -> np.ndarray:
    """At each point, the speed from which braking at `COMFORT_DECEL` meets every later limit:
    ``min over j >= k of sqrt(safe[j]^2 + 2 b (j - k) ds)``, a suffix minimum once squared."""
    rate = 2 * COMFORT_DECEL * ROUTE_SPACING
    k = np.arange(len(safe))
    suffix = np.minimum.accumulate((safe**2 + rate * k)[::-1])[::-1]
    return np.sqrt(suffix - rate * k)


def build_route(road: Road, start: int, rng: np.random.Generator) -> Route:
    """A route from lane ``start``, taking a random successor wherever there are several."""
    lanes = [start]
    while road.lanes[lanes[-1]].successors:
        successors = road.lanes[lanes[-1]].successors
        lanes.append(int(successors[rng.integers(len(successors))]))
    tail = road.lanes[lanes[-1]].points[-2:]
    heading = (tail[1] - tail[0]) / np.linalg.norm(tail[1] - tail[0])
    pieces = [road.lanes[lane].points[1 if i else 0:] for i, lane in enumerate(lanes)]  # lanes share joints
    pieces.append(tail[1] + np.linspace(LANE_SPACING, RUNOFF, 8)[:, None] * heading)
    raw = np.concatenate(pieces)
    s_raw = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(raw, axis=0), axis=1))])
    first = np.cumsum([0] + [len(p) for p in pieces[:-1]])  # raw index where each piece starts
    # A lane begins at its predecessor's last point (the shared joint), the run-off at the road's end.
    starts = tuple(float(s_raw[max(i - 1, 0)]) for i in first)
    grid = np.arange(0.0, s_raw[-1], ROUTE_SPACING)
    points = np.stack([np.interp(grid, s_raw, raw[:, 0]), np.interp(grid, s_raw, raw[:, 1])], axis=1)
    segments = np.array([*lanes, -1 - lanes[-1]])
    segment = segments[np.searchsorted(np.array(starts), grid, side="right") - 1]
    yaw = np.unwrap(np.arctan2(*np.gradient(points, axis=0).T[::-1]))
    curvature = np.convolve(np.abs(np.gradient(yaw)), np.ones(5) / 5, mode="same") / ROUTE_SPACING
    limit = np.array([road.lanes[lane].speed_limit for lane in lanes])[
        np.searchsorted(np.array(starts[1:-1]), grid, side="right")]
    safe = np.minimum(limit, np.sqrt(LATERAL_ACCEL / np.maximum(curvature, 1e-6)))
    junction = next((road.lanes[lane] for lane in lanes if road.lanes[lane].is_intersection), None)
    rank = (road.lanes[start].priority, _TURN_RANK[junction.turn] if junction else 2, -start)
    return Route(tuple(lanes), starts, points, segment, yaw, _allowed_speed(safe), rank)


@dataclass(frozen=True)
class Conflict:
    """Agent ``yielding`` stops at ``stop`` (its arc length) while agent ``priority`` has not
    passed ``point`` (the priority agent's arc length of the conflict)."""

    yielding: int
    priority: int
    stop: float
    point: float


def _conflict(road: Road, a: Route, b: Route) -> tuple[float, float] | None:
    """Where route ``a`` first meets route ``b`` (a merge into a shared lane, or a crossing inside
    an intersection), as arc lengths on each; None when they never meet or share their start."""
    if a.lanes[0] == b.lanes[0]:
        return None  # one follows the other: the leader rule covers it
    found: list[tuple[float, float]] = []
    shared = [lane for lane in a.lanes if lane in b.lanes]
    if shared:
        found.append((a.lane_start(shared[0]), b.lane_start(shared[0])))
    for la in (lane for lane in a.lanes if road.lanes[lane].is_intersection and lane not in b.lanes):
        ka = np.flatnonzero(a.segment == la)
        for lb in (lane for lane in b.lanes if road.lanes[lane].is_intersection and lane not in a.lanes):
            kb = np.flatnonzero(b.segment == lb)
            d = np.linalg.norm(a.points[ka][:, None] - b.points[kb][None], axis=-1)
            close = np.argwhere(d < CROSSING)
            if len(close):
                i, j = close[np.argmin(close[:, 0])]
                found.append((ka[i] * ROUTE_SPACING, kb[j] * ROUTE_SPACING))
    return min(found) if found else None


def conflicts_of(road: Road, routes: list[Route]) -> list[Conflict]:
    """Every pair of routes that meet, with the lower-ranked one yielding."""
    out = []
    for i in range(len(routes)):
        for j in range(i + 1, len(routes)):
            met = _conflict(road, routes[i], routes[j])
            if met is None:
                continue
            (y, p), (s_y, s_p) = ((i, j), met) if routes[i].rank < routes[j].rank else ((j, i), met[::-1])
            # Stop before the conflict, and at the latest at the junction's entry (the stop line).
            junction = [routes[y].lane_start(lane) for lane in routes[y].lanes
                        if road.lanes[lane].is_intersection]
            stop = min([s_y - STOP_BACK] + [s for s in junction if s < s_y])
            out.append(Conflict(y, p, stop, s_p))
    return out


@dataclass(frozen=True)
class Drivers:
    """Per-agent driving parameters, arrays of length N."""

    max_accel: np.ndarray
    headway: np.ndarray  # IDM's time gap, seconds
    speed: np.ndarray  # desired speed before the change of mind
    speed_after: np.ndarray  # desired speed after it
    change_time: np.ndarray  # seconds from the start; inf for no change


@dataclass(frozen=True)
class Rollout:
    """What `simulate` returns.

    Args:
        positions: (N, S, 2) world positions at every step.
        focal_progress: (S,) the focal agent's route index at every step.
        focal_leader: (S,) agent the focal agent followed at every step, -1 for none.
        focal_yield: (S,) agent the focal agent yielded to at every step, -1 for none.
    """

    positions: np.ndarray
    focal_progress: np.ndarray
    focal_leader: np.ndarray
    focal_yield: np.ndarray


def _gather(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[n, index[n, ...]]`` for every agent n."""
    return values[np.arange(len(values)).reshape((-1,) + (1,) * (index.ndim - 1)), index]


def _padded(values: list[np.ndarray]) -> np.ndarray:
    """Per-route arrays stacked to (N, M), each repeating its last value."""
    size = max(len(v) for v in values)
    return np.stack([np.pad(v, (0, size - len(v)), mode="edge") for v in values])


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def simulate(routes: list[Route], s0: np.ndarray, v0: np.ndarray, drivers: Drivers,
             conflicts: list[Conflict], steps: int, dt: float) -> Rollout:
    """Drive every agent along its route for ``steps`` steps of ``dt`` seconds (agent 0 is the
    focal one), all agents together as arrays; steps longer than 0.1 s are integrated in parts.

    An agent's progress ``s`` along its route is integrated (its speed along the path's
    tangent); its position comes from the bicycle model. Another agent is its leader when it
    drives ahead on a lane (or run-off) of its route: routes that share a lane share its
    geometry, so arc lengths convert exactly from one route to the other.

    Args:
        routes: each agent's route.
        s0, v0: (N,) starting arc lengths and speeds.
        drivers: their driving parameters.
        conflicts: who yields to whom, where (`conflicts_of`).
        steps: steps to record.
        dt: seconds per step.
    """
    n = len(routes)
    rows = np.arange(n)
    last = np.array([len(r.points) - 1 for r in routes])
    # Route arrays padded to (N, M); read with `.take(row_start + k)`, a flat gather, every tick.
    xs, ys = _padded([r.points[:, 0] for r in routes]), _padded([r.points[:, 1] for r in routes])
    path_yaw, allowed = _padded([r.yaw for r in routes]), _padded([r.allowed_speed for r in routes])
    row_start = rows * xs.shape[1]
    # Where every lane (and run-off) begins on every route; NaN where a route does not take it.
    segments = sorted({seg for r in routes for seg in r.segments})
    column = {seg: c for c, seg in enumerate(segments)}
    start_on = np.full((n, len(segments)), np.nan)
    for i, r in enumerate(routes):
        start_on[i, [column[seg] for seg in r.segments]] = r.starts
    segment_col = _padded([np.array([column[seg] for seg in r.segment]) for r in routes])
    idm_brake = 2 * np.sqrt(drivers.max_accel * COMFORT_DECEL)
    c_yield = np.array([c.yielding for c in conflicts], int)
    c_prio = np.array([c.priority for c in conflicts], int)
    c_stop = np.array([c.stop for c in conflicts])
    c_point = np.array([c.point for c in conflicts])
    c_headway, c_brake = drivers.headway[c_yield], idm_brake[c_yield]
    c_focal = c_yield == 0
    not_self = ~np.eye(n, dtype=bool)
    end_s = last * ROUTE_SPACING

    def index(arc: np.ndarray) -> np.ndarray:  # flat index of the route point nearest to arc length
        return row_start + np.minimum((arc / ROUTE_SPACING + 0.5).astype(int), last)

    s = np.asarray(s0, np.float64).copy()
    at = index(s)
    x, y, yaw = xs.take(at), ys.take(at), path_yaw.take(at)
    v = np.asarray(v0, np.float64).copy()
    substeps = max(1, int(np.ceil(dt / 0.1 - 1e-9)))
    h = dt / substeps
    out = Rollout(np.zeros((n, steps, 2)), np.zeros(steps, int), np.full(steps, -1), np.full(steps, -1))
    # Plain ufuncs below rather than np.clip / np.where / np.stack: with a dozen agents the
    # per-call overhead is the whole cost, and a scene runs this loop 60 times.
    with np.errstate(invalid="ignore"):  # NaN (a lane not on a route) compares False, as meant
        for tick in range(steps * substeps):
            # Steering: pure pursuit of a point a speed-dependent distance ahead.
            reach = np.minimum(np.maximum(3.0 + 0.5 * v, 3.0), 12.0)
            target = index(s + reach)
            alpha = _wrap(np.arctan2(ys.take(target) - y, xs.take(target) - x) - yaw)
            steer = np.minimum(np.maximum(np.arctan2(2 * WHEELBASE * np.sin(alpha), reach), -MAX_STEER), MAX_STEER)

            # Free road: the speed profile, capped by the curves ahead.
            wanted = np.where(tick * h < drivers.change_time, drivers.speed, drivers.speed_after)
            curve_speed = allowed.take(index(s + ANTICIPATION * v))
            free_speed = np.maximum(np.minimum(wanted, curve_speed), 0.1)  # > 0: IDM divides by it

            # Leaders: agent j's arc length on route i, where j's lane is on route i.
            mine = segment_col.take(at)
            ahead = start_on[:, mine] + (s - start_on[rows, mine]) - s[:, None]
            gap = ahead - CAR_LENGTH
            gap[~((ahead > 1.0) & (ahead < LOOKAHEAD) & not_self)] = np.inf
            leader = gap.argmin(axis=1)
            lead_gap = np.maximum(gap[rows, leader], 0.1)
            has_leader = lead_gap < np.inf
            desired_gap = MIN_GAP + np.maximum(0.0, v * drivers.headway + v * (v - v[leader]) / idm_brake)
            interaction = (desired_gap / lead_gap) ** 2  # 0 without a leader (infinite gap)

            # Yielding: a stopped virtual car at the stop point while the other agent is coming,
            # unless stopping there would take more than a firm brake (then it is too late: go).
            focal_yield = -1
            if conflicts:
                to_stop = np.maximum(c_stop - s[c_yield], 0.1)
                vy = v[c_yield]
                s_prio = s[c_prio]
                active = ((to_stop > 0.5) & (s_prio < c_point + CAR_LENGTH + 2.0)
                          & (c_point - s_prio < YIELD_HORIZON * np.maximum(v[c_prio], 0.5))
                          & (vy * vy < 2 * YIELD_DECEL * to_stop))
                if active.any():
                    term = active * ((MIN_GAP + vy * c_headway + vy * vy / c_brake) / to_stop) ** 2
                    np.maximum.at(interaction, c_yield, term)
                    focal = active & c_focal
                    if focal.any():
                        focal_yield = int(c_prio[focal][np.argmax(term[focal])])

            accel = np.minimum(np.maximum(drivers.max_accel * (1 - (v / free_speed) ** 4 - interaction), -MAX_DECEL),
                               drivers.max_accel)
            v = np.maximum(v + accel * h, 0.0)
            s = np.minimum(s + v * np.cos(yaw - path_yaw.take(at)) * h, end_s)
            at = index(s)
            x = x + v * h * np.cos(yaw)
            y = y + v * h * np.sin(yaw)
            yaw = yaw + v * h / WHEELBASE * np.tan(steer)

            if (tick + 1) % substeps == 0:
                step = tick // substeps
                out.positions[:, step, 0], out.positions[:, step, 1] = x, y
                out.focal_progress[step] = at[0]  # row 0's flat index is its route index
                out.focal_leader[step] = leader[0] if has_leader[0] else -1
                out.focal_yield[step] = focal_yield
    return out


@dataclass(frozen=True)
class Truth:
    """What decides the focal agent's future, in scene terms (track and lane indices).

    Args:
        layout: index into `sim_roads.LAYOUTS`.
        maneuver: index into `MANEUVERS`.
        target_lane: the lane the focal agent commits to: the branch it takes where its route
            has a choice, else the lane it is on at the end of the future; -1 on the run-off.
        leader: the agent it follows for most of the future, -1 for none.
        yield_to: the agent it yields to for most of the future, -1 for none.
        future_lanes: lanes it drives on during the future.
    """

    layout: int
    maneuver: int
    target_lane: int
    leader: int
    yield_to: int
    future_lanes: tuple[int, ...]


def _most_frequent(values: np.ndarray) -> int:
    counts = Counter(int(v) for v in values if v >= 0)
    return counts.most_common(1)[0][0] if counts else -1


def _maneuver(road: Road, route: Route) -> int:
    if road.layout == "merge" and road.lanes[route.lanes[0]].priority < road.lanes[route.lanes[-1]].priority:
        return MERGE
    junction = next((road.lanes[lane] for lane in route.lanes if road.lanes[lane].is_intersection), None)
    if junction is None:
        return KEEP
    return {NO_TURN: STRAIGHT, LEFT: TURN_LEFT, RIGHT: TURN_RIGHT}[junction.turn]


def generate_scene(cfg: SimTrafficDataConfig, split: str, index: int) -> tuple[Scene, Truth]:
    """Scene ``index`` of ``split``, from its own generator seeded by (``data_seed``, split, index).

    Args:
        cfg: the simulator's options (the ``data`` section of a ``sim-traffic`` run).
        split: ``train``, ``val`` or ``test``.
        index: the scene's position in its split.
    """
    rng = np.random.default_rng(np.random.SeedSequence([cfg.data_seed, SPLITS.index(split), index]))
    layout = cfg.layouts[int(rng.integers(len(cfg.layouts)))]
    road = make_road(layout, rng)
    dt = 1.0 / cfg.hz
    steps = WARMUP + cfg.obs_len + cfg.pred_len
    until_last_observed = (WARMUP + cfg.obs_len - 1) * dt

    def length_of(lane: int) -> float:
        return float(np.linalg.norm(np.diff(road.lanes[lane].points, axis=0), axis=1).sum())

    routes: list[Route] = []
    s0: list[float] = []
    v0: list[float] = []

    def spawn(lane: int, s: float, speed: float) -> None:
        route = build_route(road, lane, rng)
        s = float(np.clip(s, 0.0, len(route.points) * ROUTE_SPACING - RUNOFF))
        here = route.at(s)
        if all(np.linalg.norm(here - r.at(q)) > CAR_LENGTH + MIN_GAP for r, q in zip(routes, s0)):
            routes.append(route)
            s0.append(s)
            v0.append(speed)

    # At the last observed step the focal agent is up to 15 m before its entry lane's end (the
    # stop line, the merge point, the curve), so that its future is the manoeuvre.
    focal_lane = int(rng.choice(road.focal_entries))
    limit = road.lanes[focal_lane].speed_limit
    speed = rng.uniform(0.4, 1.0) * limit
    spawn(focal_lane, length_of(focal_lane) - rng.uniform(0.0, 15.0) - speed * until_last_observed, speed)
    if rng.random() < 0.5:  # a leader on the same lane
        spawn(focal_lane, s0[0] + rng.uniform(10.0, 35.0), speed * rng.uniform(0.6, 1.1))
    if rng.random() < 0.5:  # a follower
        spawn(focal_lane, s0[0] - rng.uniform(10.0, 30.0), speed * rng.uniform(0.8, 1.1))
    for _ in range(int(rng.integers(cfg.other_agents[0], cfg.other_agents[1] + 1))):
        lane = int(rng.choice(road.entries))
        speed = rng.uniform(0.4, 1.0) * road.lanes[lane].speed_limit
        spawn(lane, length_of(lane) - rng.uniform(-15.0, 60.0) - speed * until_last_observed, speed)

    n = len(routes)
    limits = np.array([road.lanes[r.lanes[0]].speed_limit for r in routes])
    changes = rng.random(n) < 0.35
    drivers = Drivers(
        max_accel=rng.uniform(1.2, 2.5, n),
        headway=rng.uniform(1.0, 1.8, n),
        speed=rng.uniform(0.75, 1.0, n) * limits,
        speed_after=rng.uniform(0.0, 1.0, n) * limits,
        change_time=np.where(changes, rng.uniform(0.0, steps * dt, n), np.inf),
    )
    rollout = simulate(routes, np.array(s0), np.array(v0), drivers, conflicts_of(road, routes), steps, dt)

    positions = rollout.positions[:, WARMUP:].copy()
    obs = cfg.obs_len
    observed = np.ones((n, cfg.obs_len + cfg.pred_len), bool)
    observed[1:, :obs] = np.linalg.norm(positions[1:, :obs] - positions[:1, :obs], axis=-1) < cfg.sensor_range
    for a in range(1, n):
        if rng.random() < cfg.partial_prob:  # seen over one stretch of the window only
            first = int(rng.integers(0, obs - 1))
            end = int(rng.integers(first + 1, obs + 1))
            observed[a, :first] = observed[a, end:obs] = False
    observed[1:, :obs] &= rng.random((n - 1, obs)) >= cfg.dropout_prob
    positions[:, :obs] += rng.normal(0.0, cfg.noise_std, (n, obs, 2))

    focal = routes[0]
    future = rollout.focal_progress[WARMUP + obs:]
    choice = next((lane for prev, lane in zip(focal.lanes, focal.lanes[1:])
                   if len(road.lanes[prev].successors) > 1), None)
    final_lane = max(int(focal.segment[future[-1]]), -1)  # -1 on the run-off
    truth = Truth(
        layout=LAYOUTS.index(layout),
        maneuver=_maneuver(road, focal),
        target_lane=choice if choice is not None else final_lane,
        leader=_most_frequent(rollout.focal_leader[WARMUP + obs:]),
        yield_to=_most_frequent(rollout.focal_yield[WARMUP + obs:]),
        future_lanes=tuple(sorted({int(lane) for lane in focal.segment[future] if lane >= 0})),
    )
    lanes = [Lane(lane.points, lane.is_intersection, lane.has_traffic_control, lane.turn) for lane in road.lanes]
    track_type = np.array([FOCAL] + [AGENT] * (n - 1))
    return Scene(index, positions, observed, track_type, obs, cfg.hz, True, lanes), truth


class SimTraffic(MotionDataset):
    """Simulated traffic scenes, generated on demand and deterministic by seed.

    Items have the shared keys (`vectorize`) and the ground truth of what decides the focal
    agent's future:

    ================  ===========  ===========================================================
    ``layout``        () long      index into `sim_roads.LAYOUTS`
    ``maneuver``      () long      index into `MANEUVERS`
    ``target_lane``   () long      polyline of the lane the focal agent commits to (the
                                   nearest piece of it), -1 if it is not in the item
    ``leader``        () long      polyline of the agent it follows most of the future, or -1
    ``yield_to``      () long      polyline of the agent it yields to most of the future, or -1
    ``relevant``      (P,) bool    polylines that decide its future: the lanes it drives in
                                   the future, its leader, and whom it yields to
    ================  ===========  ===========================================================

    Args:
        cfg: the simulator's options: the ``data`` section of a ``sim-traffic`` run
            (`lm4vis.data.configs.SimTrafficDataConfig`), e.g. ``SimTrafficDataConfig(num_val=64)``.
        split: ``train`` (``num_train`` scenes), ``val`` or ``test`` (``num_val`` each).
    """

    def __init__(self, cfg: SimTrafficDataConfig, split: str = "train") -> None:
        self.cfg, self.split = cfg, check_split(split)
        self.skips = SkipLog(NAME)  # generated scenes are valid by construction: stays empty
        self.info = MotionInfo(NAME, split, cfg.obs_len, cfg.pred_len, cfg.hz, has_map=True,
                               has_future=True, extra_keys=GROUND_TRUTH_KEYS)
        # What a scene depends on (the key of caches written before the configs were one: kept)
        self.options = {"split": split, "seed": cfg.data_seed,
                        **{k: getattr(cfg, k) for k in SCENE_OPTIONS}}
        self.cache = cache_dir(NAME, **self.options, version=FORMAT_VERSION) if cfg.cache else None

    def __len__(self) -> int:
        return split_size(self.cfg, self.split)

    def _item(self, index: int) -> dict[str, Tensor]:
        scene, truth = generate_scene(self.cfg, self.split, index)
        vec = self._vectorize(scene)

        def first(source: np.ndarray, wanted: int) -> int:  # the nearest polyline of a track or lane
            hits = np.flatnonzero(source == wanted) if wanted >= 0 else []
            return int(hits[0]) if len(hits) else -1

        deciders = [a for a in (truth.leader, truth.yield_to) if a >= 0]
        relevant = np.isin(vec.lane_of, truth.future_lanes) | np.isin(vec.track_of, deciders)
        extra = {
            "layout": truth.layout,
            "maneuver": truth.maneuver,
            "target_lane": first(vec.lane_of, truth.target_lane),
            "leader": first(vec.track_of, truth.leader),
            "yield_to": first(vec.track_of, truth.yield_to),
        }
        item = dict(vec.item)
        item.update({key: torch.tensor(value, dtype=torch.long) for key, value in extra.items()})
        item["relevant"] = torch.from_numpy(relevant)
        return item


__all__ = ["NAME", "MANEUVERS", "GROUND_TRUTH_KEYS", "SCENE_OPTIONS", "split_size", "SimTrafficDataConfig", "SimTraffic",
           "Route", "Conflict", "Drivers", "Rollout", "Truth", "build_route", "conflicts_of", "simulate",
           "generate_scene"]
