"""``rooms3d-qa``: generated rooms with situated questions whose every answer is exact.

A room is a floor with low walls and several objects from the point-cloud procedural shapes
(`lm4vis.data.points.shapes3d.SHAPES`), each with a colour, a size and a place on the floor;
each (colour, shape) pair appears at most once, so "the red cube" names one object. Points
carry x, y, z (metres, z up, origin at the floor's centre) and r, g, b (0..1).

A sample puts the agent next to one object (the *anchor*: the nearest object by surface
distance, by a margin) and turns it to face another (the *facing* object, straight ahead), says
so in a situation sentence ("I am standing next to the red cube facing the blue torus") and
asks one of five types of question:

    direction  what is on my left / on my right / in front of me / behind me?      a shape
    attribute  what colour is the object on my left (...)?                           a colour
    counting   how many objects are on my left (...)?                                0 .. 3
    existence  is there a cone on my left (...)?                                     yes / no
    distance   which object is farthest from me? / apart from the red cube, which
               object is closest to me?                                              a shape

Egocentric sectors are 90 degrees wide, centred on the heading (front), 90 degrees
counter-clockwise of it (left, seen from above with z up), behind and right. A question is asked
only when its answer is clear: every object it depends on lies at least ``margin_deg`` from a
sector boundary, a direction or attribute question's sector holds exactly one object, and a
distance question's winner beats the runner-up by ``distance_margin`` metres.

Sample ``i`` asks type ``i mod 5`` (types balanced exactly) and the answer
``answers[(i // 5) mod k]`` of that type's ``k`` answers (answers balanced exactly within a
type); it then draws rooms of its split and poses in them until one asks a clear question with
that answer, all from a generator seeded by ``(data_seed, split, i)``. Rooms are few
(``train_rooms``) and samples many, so every room appears with many poses: the answers to its
egocentric questions change with the pose, and a model that ignores the situation cannot
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
MAX_COUNT = 3
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

SITUATIONS: tuple[str, ...] = (
    "i am standing next to the {a} facing the {f} .",
    "i stand beside the {a} and i am facing the {f} .",
    "i am next to the {a} , looking at the {f} .",
    "next to me is the {a} , and the {f} is straight ahead .",
)
DIRECTION_QUESTIONS = ("what is {s} ?", "which object is {s} ?")
ATTRIBUTE_QUESTIONS = ("what colour is the object {s} ?", "what is the colour of the thing {s} ?")
COUNTING_QUESTIONS = ("how many objects are {s} ?", "how many things are there {s} ?")
EXISTENCE_QUESTIONS = ("is there a {shape} {s} ?", "can i find a {shape} {s} ?")
FARTHEST_QUESTIONS = ("which object is farthest from me ?", "what is the farthest object from me ?")
CLOSEST_QUESTIONS = ("apart from the {a} , which object is closest to me ?",
                     "besides the {a} , what is the nearest object to me ?")


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
        floor_share, wall_share: shares of the points on the floor and on the walls.
        clearance: free metres between two objects' bounding circles (room for the agent).
        gap_range: metres between the agent and its anchor's bounding circle.
        margin_deg: the least angle between an object a question depends on and a sector boundary.
        distance_margin: metres by which a distance question's winner beats the runner-up.
        colour_noise: std of the per-point colour noise.
    """

    num_points: int = 1024
    data_seed: int = 0
    min_objects: int = 4
    max_objects: int = 6
    size_range: tuple[float, float] = (4.0, 5.5)
    radius_range: tuple[float, float] = (0.25, 0.45)
    wall_height: float = 0.8
    floor_share: float = 0.15
    wall_share: float = 0.1
    clearance: float = 0.6
    gap_range: tuple[float, float] = (0.25, 0.5)
    margin_deg: float = 12.0
    distance_margin: float = 0.3
    colour_noise: float = 0.03

    def __post_init__(self) -> None:
        if self.num_points < 64:
            raise ValueError(f"rooms3d-qa num_points must be at least 64, got {self.num_points}")
        if not 3 <= self.min_objects <= self.max_objects <= 8:
            raise ValueError("rooms3d-qa needs 3 <= min_objects <= max_objects <= 8")


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
    with the indices of its anchor and facing objects."""

    position: tuple[float, float]
    heading: float
    anchor: int
    facing: int


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
            if objects:
                centres = np.array([o.centre for o in objects])
                need = radius + np.array([o.radius for o in objects]) + cfg.clearance
                clear = (np.linalg.norm(places[:, None] - centres[None], axis=-1) >= need).all(axis=1)
            else:
                clear = np.ones(len(places), dtype=bool)
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


def sector_of(angle: float, margin: float) -> str | None:
    """The sector of a bearing (degrees), or None within ``margin`` of a boundary."""
    a = abs(angle)
    if min(abs(a - 45.0), abs(a - 135.0)) < margin:
        return None
    if a < 45.0:
        return "front"
    if a > 135.0:
        return "behind"
    return "left" if angle > 0 else "right"


def sample_pose(room: Room, rng: np.random.Generator, cfg: RoomsConfig) -> Pose | None:
    """The agent beside one object, facing another; None when the draw is not clear (outside
    the floor, too near another object, or another object almost in line with the facing one)."""
    n = len(room.objects)
    anchor, step, angle, gap = rng.random(4)  # one draw of four: a sample takes tens of poses
    anchor = int(anchor * n)
    facing = (anchor + 1 + int(step * (n - 1))) % n
    a = room.objects[anchor]
    angle = 2 * math.pi * angle
    gap = cfg.gap_range[0] + gap * (cfg.gap_range[1] - cfg.gap_range[0])
    x, y = a.centre[0] + (a.radius + gap) * math.cos(angle), a.centre[1] + (a.radius + gap) * math.sin(angle)
    if abs(x) > room.width / 2 - 0.2 or abs(y) > room.depth / 2 - 0.2:
        return None
    surface = [math.hypot(x - o.centre[0], y - o.centre[1]) - o.radius for o in room.objects]
    if any(k != anchor and (s < 0.2 or s < surface[anchor] + cfg.distance_margin) for k, s in enumerate(surface)):
        return None  # the anchor must be the one object the agent is next to
    f = room.objects[facing].centre
    pose = Pose((float(x), float(y)), float(math.atan2(f[1] - y, f[0] - x)), anchor, facing)
    bearings = egocentric_angles(room, pose)
    if any(k != facing and abs(b) < cfg.margin_deg for k, b in enumerate(bearings)):
        return None  # "facing the F" must name one object
    return pose


def question_candidates(room: Room, pose: Pose, qtype: str, cfg: RoomsConfig) -> list[tuple[str, str, dict]]:
    """Every clear question of type ``qtype`` this pose allows: (template family, answer, fields)."""
    bearings = egocentric_angles(room, pose)
    sectors = [sector_of(b, cfg.margin_deg) for b in bearings]
    objects = room.objects
    out: list[tuple[str, str, dict]] = []
    if qtype in ("direction", "attribute", "counting"):
        if None in sectors:
            return out
        for s in SECTORS:
            members = [k for k, sec in enumerate(sectors) if sec == s]
            if qtype == "counting" and len(members) <= MAX_COUNT:
                out.append(("counting", str(len(members)), {"s": s}))
            elif qtype != "counting" and len(members) == 1:
                o = objects[members[0]]
                out.append((qtype, o.shape if qtype == "direction" else o.colour, {"s": s}))
    elif qtype == "existence":
        for shape in SHAPE_NAMES:
            of_shape = [k for k, o in enumerate(objects) if o.shape == shape]
            if any(sectors[k] is None for k in of_shape):
                continue
            for s in SECTORS:
                answer = "yes" if any(sectors[k] == s for k in of_shape) else "no"
                out.append(("existence", answer, {"s": s, "shape": shape}))
    elif qtype == "distance":
        dist = [math.hypot(o.centre[0] - pose.position[0], o.centre[1] - pose.position[1]) for o in objects]
        far = sorted(range(len(objects)), key=lambda k: -dist[k])
        if dist[far[0]] - dist[far[1]] >= cfg.distance_margin:
            out.append(("farthest", objects[far[0]].shape, {}))
        near = sorted((k for k in range(len(objects)) if k != pose.anchor), key=lambda k: dist[k])
        if dist[near[1]] - dist[near[0]] >= cfg.distance_margin:
            out.append(("closest", objects[near[0]].shape, {}))
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
        wanted = answers[(i // len(QUESTION_TYPES)) % len(answers)]
        rng = _rng(self.cfg.data_seed, SPLIT_IDS[self.split], i)
        for _ in range(_MAX_TRIES):
            r = int(rng.integers(self.num_rooms))
            room = self.room(r)
            pose = sample_pose(room, rng, self.cfg)
            if pose is None:
                continue
            found = [c for c in question_candidates(room, pose, qtype, self.cfg) if c[1] == wanted]
            if not found:
                continue
            family, answer, fields = found[int(rng.integers(len(found)))]
            anchor, facing = room.objects[pose.anchor].name, room.objects[pose.facing].name
            situation = SITUATIONS[int(rng.integers(len(SITUATIONS)))].format(a=anchor, f=facing)
            template = _TEMPLATES[family][int(rng.integers(len(_TEMPLATES[family])))]
            question = template.format(s=SECTOR_PHRASES.get(fields.get("s"), ""), shape=fields.get("shape"), a=anchor)
            record = SceneQARecord(self.scene_key(r), situation, question, (answer,), qtype,
                                   (pose.position[0], pose.position[1], 0.0), heading_quaternion(pose.heading), i)
            return record, r, pose
        raise RuntimeError(f"rooms3d-qa: no clear {qtype} question with answer {wanted!r} in {_MAX_TRIES} draws "
                           f"(sample {i} of {self.split}); the rooms are too few or too crowded")

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
           "RoomsConfig", "RoomObject", "Room", "Pose", "RoomsQA", "sample_room", "room_points", "sample_pose",
           "egocentric_angles", "sector_of", "question_candidates", "cached_split"]
