"""``rooms3d-qa``: generated rooms with situated questions whose every answer is exact.

A room is a floor with low walls and several objects from the point-cloud procedural shapes
(`lm4vis.data.points.shapes3d.SHAPES`), each with a colour, a size and a place on the floor;
each (colour, shape) pair appears at most once, so "the red cube" names one object. Points
carry x, y, z (metres, z up, origin at the floor's centre) and r, g, b (0..1).

The agent stands at one of five *spots* (`SPOTS`, chosen by ``RoomsConfig.spots``): the middle of
the room (the origin), or a quarter of the way from the middle to the north, east, south or west
wall (the "north part of the room": ``(0, depth / 8)``, ...; farther out, the near wall would
leave some answers impossible and the sentences would give them away). It faces one of eight *targets* of the room
itself: a wall (north = +y, east = +x, south, west; the heading is square to the wall) or a
corner (north east, ...; the heading points from the agent at that corner of the floor). The
situation sentence says both ("i am standing in the middle of the room facing the north wall",
"i stand in the east part of the room , looking at the south west corner ."): it names no
object, so it gives away no answer; the answers need the scene (which objects, of which colour
and shape, lie where around the agent). Objects keep clear of the middle, and a sample is only
posed at a spot that its room's objects keep clear of. Questions of five types:

    direction  what is on my left / on my right / in front of me / behind me?      a shape
    attribute  what colour is the object on my left (...)?                           a colour
    counting   how many objects are on my left (...)?                                0 .. 2
    existence  is there a cone on my left (...)?                                     yes / no
    distance   which object ahead of me is farthest (nearest) from me?                 a shape

(ahead: the front half-plane, bearings within 90 degrees of the heading).

Egocentric sectors are 90 degrees wide, centred on the heading (front), 90 degrees
counter-clockwise of it (left, seen from above with z up), behind and right. A question is asked
only when its answer is clear: every object it depends on lies at least ``margin_deg`` from a
sector boundary, a direction or attribute question's sector holds exactly one object, and a
distance question has two objects ahead or more, none within ``margin_deg`` of level with the
agent, and its winner beats the runner-up by ``distance_margin`` metres.

Sample ``i`` asks type ``i mod 5`` (types balanced exactly) and, with ``j = i // 5``, the answer
``answers[j mod k]`` of that type's ``k`` answers, then the spot (of ``RoomsConfig.spots``), the
sector (or, for distance, farthest or closest) and the kind of target (a wall or a corner) from
the next digits of ``j``: answers are balanced exactly within every (type, spot, sector, kind of
target); which wall or corner is drawn with the room (the four of a kind are
alike in distribution). So neither the situation nor the
question's wording predicts an answer (tests/data/vqa3d/test_rooms3d.py checks this with a
text-only lookup). It then draws rooms of its split until one gives a clear question with that
answer, all from a generator seeded by ``(data_seed, split, i)``; with very few rooms a cell may
have no room, and the sample then keeps its answer and lets the cell go. Rooms are few
(``train_rooms``) and samples many, so every room appears with many headings: the answers to its
egocentric questions change with the heading, and a model that ignores the situation cannot
know them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..points.shapes3d import SHAPES
from .base import SceneQARecord, heading_quaternion

SHAPE_NAMES: tuple[str, ...] = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12), "green": (0.15, 0.65, 0.2), "blue": (0.15, 0.3, 0.9),
    "yellow": (0.92, 0.85, 0.12), "purple": (0.55, 0.2, 0.7), "orange": (0.95, 0.5, 0.05),
}
FLOOR_RGB, WALL_RGB = (0.45, 0.42, 0.4), (0.8, 0.78, 0.72)
#: Egocentric sectors, counter-clockwise from the heading, and how questions name them.
SECTORS: tuple[str, ...] = ("front", "left", "behind", "right")
SECTOR_PHRASES: dict[str, str] = {"front": "in front of me", "left": "on my left", "behind": "behind me",
                                  "right": "on my right"}
QUESTION_TYPES: tuple[str, ...] = ("direction", "attribute", "counting", "existence", "distance")
MAX_COUNT = 2  # three objects in one 90-degree sector around the middle are too rare to balance
ANSWERS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "direction": SHAPE_NAMES, "attribute": tuple(COLOURS),
    "counting": tuple(str(k) for k in range(MAX_COUNT + 1)), "existence": ("yes", "no"),
    "distance": SHAPE_NAMES,
}
#: Every answer once, in a fixed order: the classifier's outputs.
ANSWERS: tuple[str, ...] = tuple(dict.fromkeys(a for t in QUESTION_TYPES for a in ANSWERS_BY_TYPE[t]))
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
_ROOM_STREAM, _POINTS_STREAM = 7, 11
_MAX_TRIES = 2000

#: What the agent faces: a wall (the heading along an axis; x = east, y = north) or a corner (the
#: heading at that corner of the floor), as (name, sign of x, sign of y); 0 = along the other axis.
TARGETS: tuple[tuple[str, int, int], ...] = (
    ("east wall", 1, 0), ("north east corner", 1, 1), ("north wall", 0, 1), ("north west corner", -1, 1),
    ("west wall", -1, 0), ("south west corner", -1, -1), ("south wall", 0, -1), ("south east corner", 1, -1),
)
#: Where the agent stands: (name, sign of x, sign of y); the spot is at (sx, sy) * (width, depth) * SPOT_OFFSET.
SPOTS: tuple[tuple[str, int, int], ...] = (
    ("middle", 0, 0), ("north", 0, 1), ("east", 1, 0), ("south", 0, -1), ("west", -1, 0),
)
SPOT_NAMES: tuple[str, ...] = tuple(name for name, _, _ in SPOTS)
SPOT_OFFSET = 1 / 8  # of the room's width (depth): a spot off the middle is a quarter of the way to its wall
SITUATIONS: tuple[str, ...] = (
    "i am standing in the {p} facing the {t} .",
    "i stand in the {p} , looking at the {t} .",
    "from the {p} , i face the {t} .",
    "i am in the {p} and the {t} is straight ahead .",
)
DIRECTION_QUESTIONS = ("what is {s} ?", "which object is {s} ?")
ATTRIBUTE_QUESTIONS = ("what colour is the object {s} ?", "what is the colour of the thing {s} ?")
COUNTING_QUESTIONS = ("how many objects are {s} ?", "how many things are there {s} ?")
EXISTENCE_QUESTIONS = ("is there a {shape} {s} ?", "can i find a {shape} {s} ?")
FARTHEST_QUESTIONS = ("of the things ahead of me , which is farthest ?", "which object ahead of me is farthest from me ?")
CLOSEST_QUESTIONS = ("of the things ahead of me , which is closest ?", "which object ahead of me is nearest to me ?")


@dataclass(frozen=True)
class RoomsConfig:
    """How rooms and samples are made.

    Args:
        num_points: points per room (floor, walls, objects).
        data_seed: seed of the rooms and samples.
        min_objects, max_objects: objects per room.
        size_range: side lengths of the floor, metres.
        radius_range: bounding radius of an object, metres.
        wall_height: metres.
        floor_share, wall_share: shares of the points on the floor and on the walls (small, so
            that FPS centres land on objects rather than spread over the floor).
        clearance: free metres between two objects' bounding circles.
        agent_clearance: free metres between the agent (wherever it stands) and an object's
            bounding circle.
        margin_deg: the least angle between an object a question depends on and a sector boundary.
        distance_margin: metres by which a distance question's winner beats the runner-up.
        colour_noise: std of the per-point colour noise.
        spots: where the agent may stand (`SPOT_NAMES`), taken in turn by sample index.
    """

    num_points: int = 1024
    data_seed: int = 0
    min_objects: int = 3
    max_objects: int = 5
    size_range: tuple[float, float] = (4.0, 5.5)
    radius_range: tuple[float, float] = (0.25, 0.45)
    wall_height: float = 0.8
    floor_share: float = 0.05
    wall_share: float = 0.03
    clearance: float = 0.6
    agent_clearance: float = 0.5
    margin_deg: float = 12.0
    distance_margin: float = 0.3
    colour_noise: float = 0.03
    spots: tuple[str, ...] = SPOT_NAMES

    def __post_init__(self) -> None:
        if self.num_points < 64:
            raise ValueError(f"rooms3d-qa num_points must be at least 64, got {self.num_points}")
        if not 3 <= self.min_objects <= self.max_objects <= 8:
            raise ValueError("rooms3d-qa needs 3 <= min_objects <= max_objects <= 8")
        unknown = [name for name in self.spots if name not in SPOT_NAMES]
        if unknown or not self.spots or len(set(self.spots)) != len(self.spots):
            raise ValueError(f"rooms3d-qa spots={list(self.spots)}: give distinct names from {', '.join(SPOT_NAMES)}")


@dataclass(frozen=True)
class RoomObject:
    """One object: its shape and colour names, centre on the floor (x, y) and bounding radius."""

    shape: str
    colour: str
    centre: tuple[float, float]
    radius: float

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Room:
    """A floor of ``width`` x ``depth`` metres centred on the origin, and its objects."""

    width: float
    depth: float
    objects: tuple[RoomObject, ...]


@dataclass(frozen=True)
class Pose:
    """Where the agent stands (x, y) and which way it faces (radians counter-clockwise from +x),
    with the index of the target (`TARGETS`) it faces and of the spot (`SPOTS`) it stands at."""

    position: tuple[float, float]
    heading: float
    target: int
    spot: int = 0


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def sample_room(rng: np.random.Generator, cfg: RoomsConfig) -> Room:
    """A room: its size, then objects of distinct (colour, shape) pairs placed apart."""
    pairs = [(c, s) for c in COLOURS for s in SHAPE_NAMES]
    while True:  # a crowded draw restarts; with the default sizes almost every draw fits
        width, depth = rng.uniform(*cfg.size_range, size=2)
        n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        chosen = rng.choice(len(pairs), size=n, replace=False)
        objects: list[RoomObject] = []
        for k in chosen:
            radius = float(rng.uniform(*cfg.radius_range))
            # 200 candidate places at once, away from the walls by the agent's room too; the
            # first that clears every placed object is taken.
            half = np.array([width / 2, depth / 2]) - radius - 0.4
            places = rng.uniform(-half, half, size=(200, 2))
            clear = np.linalg.norm(places, axis=1) >= radius + cfg.agent_clearance  # the agent's spot
            if objects:
                centres = np.array([o.centre for o in objects])
                need = radius + np.array([o.radius for o in objects]) + cfg.clearance
                clear &= (np.linalg.norm(places[:, None] - centres[None], axis=-1) >= need).all(axis=1)
            if not clear.any():
                break
            x, y = places[int(clear.argmax())]
            objects.append(RoomObject(pairs[k][1], pairs[k][0], (float(x), float(y)), radius))
        if len(objects) == n:
            return Room(float(width), float(depth), tuple(objects))


def room_points(room: Room, rng: np.random.Generator, cfg: RoomsConfig) -> np.ndarray:
    """``(num_points, 6)`` float32 points of a room (x, y, z, r, g, b), in random order."""
    n = cfg.num_points
    n_floor, n_wall = round(cfg.floor_share * n), round(cfg.wall_share * n)
    per_object = np.full(len(room.objects), (n - n_floor - n_wall) // len(room.objects))
    per_object[: (n - n_floor - n_wall) % len(room.objects)] += 1
    w, d = room.width, room.depth
    floor = np.stack([rng.uniform(-w / 2, w / 2, n_floor), rng.uniform(-d / 2, d / 2, n_floor),
                      np.zeros(n_floor)], axis=1)
    # Walls: a point along the perimeter, then a height.
    t = rng.uniform(0, 2 * (w + d), n_wall)
    along = np.where(t < w, t, np.where(t < w + d, t - w, np.where(t < 2 * w + d, t - w - d, t - 2 * w - d)))
    wx = np.where(t < w, -w / 2 + along, np.where(t < w + d, w / 2, np.where(t < 2 * w + d, w / 2 - along, -w / 2)))
    wy = np.where(t < w, -d / 2, np.where(t < w + d, -d / 2 + along, np.where(t < 2 * w + d, d / 2, d / 2 - along)))
    walls = np.stack([wx, wy, rng.uniform(0, cfg.wall_height, n_wall)], axis=1)
    parts = [np.concatenate([floor, np.broadcast_to(FLOOR_RGB, (n_floor, 3))], axis=1),
             np.concatenate([walls, np.broadcast_to(WALL_RGB, (n_wall, 3))], axis=1)]
    for obj, count in zip(room.objects, per_object):
        surface = SHAPES[obj.shape](rng, int(count)).astype(np.float64)  # y up
        surface -= (surface.max(axis=0) + surface.min(axis=0)) / 2
        surface /= np.linalg.norm(surface, axis=1).max()
        xyz = np.stack([surface[:, 0], -surface[:, 2], surface[:, 1]], axis=1)  # z up (a proper rotation)
        turn = rng.uniform(0, 2 * np.pi)
        c, s = math.cos(turn), math.sin(turn)
        xyz = xyz @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T * obj.radius
        xyz[:, 2] -= xyz[:, 2].min()  # standing on the floor
        xyz[:, :2] += obj.centre
        parts.append(np.concatenate([xyz, np.broadcast_to(COLOURS[obj.colour], (int(count), 3))], axis=1))
    points = np.concatenate(parts)
    points[:, 3:] = np.clip(points[:, 3:] + rng.normal(0, cfg.colour_noise, (n, 3)), 0, 1)
    return points[rng.permutation(n)].astype(np.float32)


def egocentric_angles(room: Room, pose: Pose) -> list[float]:
    """Each object's bearing from the agent, degrees in (-180, 180], counter-clockwise from the
    heading (positive = to the left)."""
    fx, fy = math.cos(pose.heading), math.sin(pose.heading)
    out = []
    for o in room.objects:  # plain floats: a handful of objects, where numpy's overhead dominates
        dx, dy = o.centre[0] - pose.position[0], o.centre[1] - pose.position[1]
        out.append(math.degrees(math.atan2(-fy * dx + fx * dy, fx * dx + fy * dy)))
    return out


def sector_of(angle: float) -> str:
    """The sector of a bearing (degrees)."""
    a = abs(angle)
    if a < 45.0:
        return "front"
    if a > 135.0:
        return "behind"
    return "left" if angle > 0 else "right"


def near_boundary(angle: float, sector: str, margin: float) -> bool:
    """Whether a bearing (degrees) lies within ``margin`` of one of ``sector``'s two boundaries."""
    centre = {"front": 0.0, "left": 90.0, "behind": 180.0, "right": -90.0}[sector]
    off = abs((angle - centre + 180.0) % 360.0 - 180.0)  # degrees from the sector's centre line
    return abs(off - 45.0) < margin


def spot_phrase(spot: int) -> str:
    """How a situation names ``SPOTS[spot]``."""
    name = SPOTS[spot][0]
    return "middle of the room" if name == "middle" else f"{name} part of the room"


def target_pose(room: Room, target: int, spot: int = 0) -> Pose:
    """The agent at ``SPOTS[spot]`` facing ``TARGETS[target]``: square to a wall, or at a corner."""
    _, sx, sy = TARGETS[target]
    _, px, py = SPOTS[spot]
    x, y = px * room.width * SPOT_OFFSET, py * room.depth * SPOT_OFFSET
    heading = math.atan2(sy, sx) if sx == 0 or sy == 0 else math.atan2(sy * room.depth / 2 - y, sx * room.width / 2 - x)
    return Pose((x, y), float(heading), target, spot)


def agent_is_clear(room: Room, pose: Pose, cfg: RoomsConfig) -> bool:
    """Whether every object keeps ``cfg.agent_clearance`` metres from the agent."""
    x, y = pose.position
    return all(math.hypot(o.centre[0] - x, o.centre[1] - y) - o.radius >= cfg.agent_clearance for o in room.objects)


def question_candidates(room: Room, pose: Pose, qtype: str, cfg: RoomsConfig) -> list[tuple[str, str, dict]]:
    """Every clear question of type ``qtype`` this pose allows: (template family, answer, fields)."""
    bearings = egocentric_angles(room, pose)
    sectors = [sector_of(b) for b in bearings]
    objects = room.objects
    out: list[tuple[str, str, dict]] = []
    if qtype in ("direction", "attribute", "counting"):
        for s in SECTORS:
            if any(near_boundary(b, s, cfg.margin_deg) for b in bearings):
                continue  # an object on the sector's edge: in or out is not clear
            members = [k for k, sec in enumerate(sectors) if sec == s]
            if qtype == "counting" and len(members) <= MAX_COUNT:
                out.append(("counting", str(len(members)), {"s": s}))
            elif qtype != "counting" and len(members) == 1:
                o = objects[members[0]]
                out.append((qtype, o.shape if qtype == "direction" else o.colour, {"s": s}))
    elif qtype == "existence":
        for shape in SHAPE_NAMES:
            of_shape = [k for k, o in enumerate(objects) if o.shape == shape]
            for s in SECTORS:
                if any(near_boundary(bearings[k], s, cfg.margin_deg) for k in of_shape):
                    continue
                answer = "yes" if any(sectors[k] == s for k in of_shape) else "no"
                out.append(("existence", answer, {"s": s, "shape": shape}))
    elif qtype == "distance":  # among the objects ahead (the front half-plane), so that the heading matters
        if any(abs(abs(b) - 90.0) < cfg.margin_deg for b in bearings):
            return out  # an object almost level with the agent: ahead or not is not clear
        ahead = [k for k, b in enumerate(bearings) if abs(b) < 90.0]
        dist = {k: math.hypot(objects[k].centre[0] - pose.position[0], objects[k].centre[1] - pose.position[1])
                for k in ahead}
        if len(ahead) >= 2:
            far = sorted(ahead, key=lambda k: -dist[k])
            if dist[far[0]] - dist[far[1]] >= cfg.distance_margin:
                out.append(("farthest", objects[far[0]].shape, {}))
            if dist[far[-2]] - dist[far[-1]] >= cfg.distance_margin:
                out.append(("closest", objects[far[-1]].shape, {}))
    else:
        raise ValueError(f"unknown question type {qtype!r}; choose one of {', '.join(QUESTION_TYPES)}")
    return out


_TEMPLATES = {"direction": DIRECTION_QUESTIONS, "attribute": ATTRIBUTE_QUESTIONS, "counting": COUNTING_QUESTIONS,
              "existence": EXISTENCE_QUESTIONS, "farthest": FARTHEST_QUESTIONS, "closest": CLOSEST_QUESTIONS}


class RoomsQA:
    """The rooms and samples of one split (see the module docstring). Rooms are made on first
    use and kept; their points too.

    Args:
        split: ``train``, ``val`` or ``test``.
        num_samples: samples in the split.
        num_rooms: distinct rooms in the split.
        cfg: how rooms and samples are made.
    """

    def __init__(self, split: str, num_samples: int, num_rooms: int, cfg: RoomsConfig) -> None:
        if split not in SPLIT_IDS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_IDS)}")
        self.split, self.num_samples, self.num_rooms, self.cfg = split, num_samples, num_rooms, cfg
        self._rooms: dict[int, Room] = {}
        self._points: dict[int, np.ndarray] = {}
        self._spots = [SPOT_NAMES.index(name) for name in cfg.spots]  # indices into `SPOTS`

    def scene_key(self, room: int) -> str:
        return f"{self.split}-{room}"

    def room(self, index: int) -> Room:
        """Room ``index`` of the split (its geometry)."""
        if index not in self._rooms:
            self._rooms[index] = sample_room(_rng(self.cfg.data_seed, SPLIT_IDS[self.split], _ROOM_STREAM, index),
                                             self.cfg)
        return self._rooms[index]

    def points(self, index: int) -> np.ndarray:
        """Room ``index``'s points, ``(num_points, 6)`` float32."""
        if index not in self._points:
            rng = _rng(self.cfg.data_seed, SPLIT_IDS[self.split], _POINTS_STREAM, index)
            self._points[index] = room_points(self.room(index), rng, self.cfg)
        return self._points[index]

    def sample(self, i: int) -> tuple[SceneQARecord, int, Pose]:
        """Sample ``i``: its record, the room it is in and the agent's pose."""
        qtype = QUESTION_TYPES[i % len(QUESTION_TYPES)]
        answers = ANSWERS_BY_TYPE[qtype]
        j = i // len(QUESTION_TYPES)
        wanted, j = answers[j % len(answers)], j // len(answers)
        spot, j = self._spots[j % len(self._spots)], j // len(self._spots)
        # Every (type, spot, sector or distance family, kind of target) gets every answer equally
        # often. From the middle the four walls (and the four corners) are alike in distribution
        # (rooms are drawn symmetric under quarter turns), so which one a sample faces is drawn
        # per room; away from the middle it is a digit too (below).
        if qtype == "distance":
            where, j = ("farthest", "closest")[j % 2], j // 2
        else:
            where, j = SECTORS[j % len(SECTORS)], j // len(SECTORS)
        kind, j = j % 2, j // 2  # 0: a wall, 1: a corner (`TARGETS` alternates them)
        # Away from the middle the four walls (corners) are not alike: which one is faced is a
        # digit, so that answers are balanced for each way of facing from each spot.
        which = j % 4 if SPOTS[spot][0] != "middle" else None
        rng = _rng(self.cfg.data_seed, SPLIT_IDS[self.split], i)
        for attempt in range(_MAX_TRIES):
            # A split of very few rooms may have no room for a cell: the second half of the
            # draws keeps the answer but lets the sector (family), the spot and the target go.
            strict = attempt < _MAX_TRIES // 2
            r, target = int(rng.integers(self.num_rooms)), (kind if strict else int(rng.integers(2))) + 2 * int(rng.integers(4))
            if strict and which is not None:
                target = kind + 2 * which
            at = spot if strict else self._spots[int(rng.integers(len(self._spots)))]
            room = self.room(r)
            pose = target_pose(room, target, at)
            if not agent_is_clear(room, pose, self.cfg):
                continue
            found = [c for c in question_candidates(room, pose, qtype, self.cfg)
                     if c[1] == wanted and (not strict or where in (c[0], c[2].get("s")))]
            if not found:
                continue
            family, answer, fields = found[int(rng.integers(len(found)))]
            situation = SITUATIONS[int(rng.integers(len(SITUATIONS)))].format(p=spot_phrase(at), t=TARGETS[target][0])
            template = _TEMPLATES[family][int(rng.integers(len(_TEMPLATES[family])))]
            question = template.format(s=SECTOR_PHRASES.get(fields.get("s"), ""), shape=fields.get("shape"))
            record = SceneQARecord(self.scene_key(r), situation, question, (answer,), qtype,
                                   (pose.position[0], pose.position[1], 0.0), heading_quaternion(pose.heading), i)
            return record, r, pose
        raise RuntimeError(f"rooms3d-qa: no clear {qtype} question ({where}) with answer {wanted!r} from the "
                           f"{spot_phrase(spot)} facing {('a wall', 'a corner')[kind]} in {_MAX_TRIES} draws (sample {i} of {self.split}); the rooms "
                           "are too few or too crowded")

    def records(self) -> list[SceneQARecord]:
        return [self.sample(i)[0] for i in range(self.num_samples)]

    def scenes(self, records: Sequence[SceneQARecord] | None = None) -> dict[str, np.ndarray]:
        """Points of the rooms ``records`` ask about (every room of the split when None), by scene key."""
        rooms = range(self.num_rooms) if records is None else sorted({int(r.scene.rsplit("-", 1)[1]) for r in records})
        return {self.scene_key(r): self.points(r) for r in rooms}


@lru_cache(maxsize=8)
def cached_split(split: str, num_samples: int, num_rooms: int, cfg: RoomsConfig) -> tuple[RoomsQA, tuple[SceneQARecord, ...]]:
    """A split and its records, made once per process: the runs of a ``compare`` share them."""
    rooms = RoomsQA(split, num_samples, num_rooms, cfg)
    return rooms, tuple(rooms.records())


__all__ = ["SHAPE_NAMES", "COLOURS", "SECTORS", "SECTOR_PHRASES", "QUESTION_TYPES", "ANSWERS_BY_TYPE", "ANSWERS",
           "TARGETS", "SPOTS", "SPOT_NAMES", "RoomsConfig", "RoomObject", "Room", "Pose", "RoomsQA", "sample_room", "room_points", "target_pose", "spot_phrase", "agent_is_clear",
           "egocentric_angles", "sector_of", "near_boundary", "question_candidates", "cached_split"]
