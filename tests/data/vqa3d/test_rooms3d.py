"""rooms3d-qa: deterministic, balanced, and every answer checked against the room's geometry by
a checker that shares no code with the generator (its own vocabulary lists, parsing, frame
maths and thresholds)."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from lm4vis.data.vqa3d.rooms import RoomsConfig, RoomsQA

# -- the independent checker -------------------------------------------------------------------------
COLOUR_WORDS = ("red", "green", "blue", "yellow", "purple", "orange")
SHAPE_WORDS = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")
ROUGH_RGB = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.1, 0.3, 0.9),
             "yellow": (0.9, 0.9, 0.1), "purple": (0.6, 0.2, 0.7), "orange": (1.0, 0.5, 0.0)}
MENTION = re.compile(rf"\b({'|'.join(COLOUR_WORDS)}) ({'|'.join(SHAPE_WORDS)})\b")
PLACES = {"in front of me": "ahead", "on my left": "port", "on my right": "starboard", "behind me": "astern"}
ANGLE_SLACK = 10.0  # degrees from a quadrant diagonal an object must be for a sector question
DISTANCE_SLACK = 0.25  # metres a distance winner must lead by


def heading_from_quaternion(q) -> float:
    w, x, y, z = q
    assert abs(x) < 1e-9 and abs(y) < 1e-9, "a standing agent turns about z only"
    return 2.0 * math.atan2(z, w)


def agent_frame(objects, position, heading):
    """Each object's (ahead, to the left) coordinates in the agent's frame: rotate by -heading."""
    c, s = math.cos(heading), math.sin(heading)
    rot = np.array([[c, s], [-s, c]])
    rel = np.array([o.centre for o in objects]) - np.asarray(position[:2])
    return rel @ rot.T


def place_of(ahead: float, left: float) -> tuple[str, float]:
    """Which of the four 90-degree quadrants around the axes, and the angle to its border."""
    off_diagonal = abs(math.degrees(math.atan2(abs(left), abs(ahead))) - 45.0)
    if abs(ahead) >= abs(left):
        return ("ahead" if ahead > 0 else "astern"), off_diagonal
    return ("port" if left > 0 else "starboard"), off_diagonal


def check_sample(record, room) -> tuple[str, float]:
    """Asserts the record's answer from the geometry; returns (question kind, heading)."""
    objects = room.objects
    heading = heading_from_quaternion(record.orientation)
    local = agent_frame(objects, record.position, heading)
    names = [f"{o.colour} {o.shape}" for o in objects]
    assert len(set(names)) == len(names), "every (colour, shape) names one object"
    # The situation: next to the first object named, facing the second.
    mentioned = [" ".join(m) for m in MENTION.findall(record.situation)]
    assert len(mentioned) == 2, record.situation
    anchor, facing = names.index(mentioned[0]), names.index(mentioned[1])
    gaps = [math.hypot(*(np.asarray(o.centre) - record.position[:2])) - o.radius for o in objects]
    assert all(gaps[anchor] + 0.2 < g for k, g in enumerate(gaps) if k != anchor), "the anchor is the one nearby"
    bearing = [math.degrees(math.atan2(left, ahead)) for ahead, left in local]
    assert abs(bearing[facing]) < 1e-6, "the agent faces the facing object"
    assert all(abs(b) > ANGLE_SLACK for k, b in enumerate(bearing) if k != facing)
    q, answer = record.question, record.answers[0]
    assert len(record.answers) == 1

    def members(place: str, only=None) -> list[int]:
        found = []
        for k, (ahead, left) in enumerate(local):
            if only is not None and not only(k):
                continue
            where, off = place_of(ahead, left)
            assert off >= ANGLE_SLACK, f"{names[k]} is {off:.1f} deg from a sector border: {q}"
            found.append(k) if where == place else None
        return found

    phrase = next((p for p in PLACES if q.endswith(p + " ?")), None)
    if q.startswith(("what is the colour", "what colour")):
        (k,) = members(PLACES[phrase])
        assert answer == objects[k].colour
        return "attribute", heading
    if q.startswith(("what is in", "what is on", "what is behind", "which object is in", "which object is on",
                     "which object is behind")):
        (k,) = members(PLACES[phrase])
        assert answer == objects[k].shape
        return "direction", heading
    if q.startswith("how many"):
        assert answer == str(len(members(PLACES[phrase])))
        return "counting", heading
    if q.startswith(("is there a", "can i find a")):
        words = q.split()
        shape = words[words.index("a") + 1]
        assert shape in SHAPE_WORDS
        hit = members(PLACES[phrase], only=lambda k: objects[k].shape == shape)
        assert answer == ("yes" if hit else "no")
        return "existence", heading
    dist = [math.hypot(ahead, left) for ahead, left in local]
    if "farthest" in q:
        order = sorted(range(len(objects)), key=lambda k: -dist[k])
    else:
        (excluded,) = [" ".join(m) for m in MENTION.findall(q)]
        assert excluded == mentioned[0], "the closest question sets the anchor aside"
        order = sorted((k for k in range(len(objects)) if names[k] != excluded), key=lambda k: dist[k])
    assert abs(dist[order[0]] - dist[order[1]]) >= DISTANCE_SLACK
    assert answer == objects[order[0]].shape
    return "distance", heading


# -- the tests ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def split():
    rooms = RoomsQA("train", 2000, 60, RoomsConfig(num_points=512))
    return rooms, [rooms.sample(i) for i in range(rooms.num_samples)]


def test_answers_match_the_geometry(split):
    rooms, samples = split
    kinds, quadrants = Counter(), Counter()
    for record, r, _ in samples:
        kind, heading = check_sample(record, rooms.room(r))
        assert kind == record.question_type
        kinds[kind] += 1
        if kind in ("direction", "attribute", "counting", "existence"):
            quadrants[int((heading % (2 * math.pi)) // (math.pi / 2))] += 1
    assert sum(kinds.values()) == 2000
    # Egocentric questions were checked with the agent facing every quadrant of the compass.
    assert set(quadrants) == {0, 1, 2, 3} and min(quadrants.values()) > 200, quadrants


def test_types_and_answers_balanced(split):
    _, samples = split
    types = Counter(rec.question_type for rec, _, _ in samples)
    assert set(types.values()) == {400}
    by_type = defaultdict(Counter)
    for rec, _, _ in samples:
        by_type[rec.question_type][rec.answers[0]] += 1
    for qtype, answers in by_type.items():
        assert max(answers.values()) - min(answers.values()) <= 1, (qtype, answers)
    assert len(by_type["attribute"]) == 6 and len(by_type["counting"]) == 4


def test_rooms_come_back_with_other_poses_and_other_answers(split):
    _, samples = split
    per_room = defaultdict(list)
    for rec, r, pose in samples:
        if rec.question_type == "direction":
            per_room[(r, rec.question.split()[-2])].append((pose.position, rec.answers[0]))
    # One room asked "what is on my left?" from different places gets different answers: the
    # scene alone does not give the answer.
    varied = [k for k, v in per_room.items() if len({p for p, _ in v}) > 1 and len({a for _, a in v}) > 1]
    assert len(varied) >= 20


def test_points_show_each_object_in_its_colour(split):
    rooms, _ = split
    for r in range(10):
        room, points = rooms.room(r), rooms.points(r)
        assert points.shape == (512, 6) and points.dtype == np.float32
        assert np.all((points[:, 3:] >= 0) & (points[:, 3:] <= 1))
        assert abs(points[:, 0]).max() <= room.width / 2 + 1e-4 and abs(points[:, 1]).max() <= room.depth / 2 + 1e-4
        for o in room.objects:
            near = np.hypot(points[:, 0] - o.centre[0], points[:, 1] - o.centre[1]) <= o.radius + 1e-4
            raised = near & (points[:, 2] > 0.02)
            assert raised.sum() >= 20, (r, o)
            mean = points[raised, 3:].mean(axis=0)
            nearest = min(ROUGH_RGB, key=lambda c: np.linalg.norm(mean - np.array(ROUGH_RGB[c])))
            assert nearest == o.colour, (r, o, mean)


def test_deterministic_by_seed():
    a, b = (RoomsQA("val", 40, 20, RoomsConfig(num_points=256, data_seed=3)) for _ in range(2))
    assert a.records() == b.records()
    assert all(np.array_equal(a.points(r), b.points(r)) for r in range(5))
    other = RoomsQA("val", 40, 20, RoomsConfig(num_points=256, data_seed=4))
    assert other.records() != a.records()
    train = RoomsQA("train", 40, 20, RoomsConfig(num_points=256, data_seed=3))
    assert train.room(0) != a.room(0), "train and val rooms differ"


def test_light_config_lists_match_the_loaders():
    from lm4vis.data import vqa3d_config
    from lm4vis.data.vqa3d import base

    assert vqa3d_config.BLIND == base.BLIND
