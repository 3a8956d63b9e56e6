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


WALL_HEADINGS = {"east": 0.0, "north": 90.0, "west": 180.0, "south": -90.0}  # x = east, y = north
WALL = re.compile(r"\bthe (north|south|east|west) wall\b")
CORNER = re.compile(r"\bthe (north|south) (east|west) corner\b")


MIDDLE = re.compile(r"\bthe middle of the room\b")
PART = re.compile(r"\bthe (north|south|east|west) part of the room\b")
UNIT = {"east": (1.0, 0.0), "north": (0.0, 1.0), "west": (-1.0, 0.0), "south": (0.0, -1.0)}


def position_from_situation(situation: str, room) -> tuple[float, float]:
    """Where the situation puts the agent: the middle, or a quarter of the way to the named wall."""
    middles, parts = MIDDLE.findall(situation), PART.findall(situation)
    assert len(middles) + len(parts) == 1, situation
    if middles:
        return 0.0, 0.0
    ux, uy = UNIT[parts[0]]
    return ux * room.width / 8, uy * room.depth / 8


def heading_from_situation(situation: str, room, position) -> float:
    """The heading (radians) the situation sentence names: square to a wall, or from the agent at a
    corner of the floor."""
    walls, corners = WALL.findall(situation), CORNER.findall(situation)
    assert len(walls) + len(corners) == 1, situation
    if walls:
        return math.radians(WALL_HEADINGS[walls[0]])
    ns, ew = corners[0]
    return math.atan2((1 if ns == "north" else -1) * room.depth / 2 - position[1],
                      (1 if ew == "east" else -1) * room.width / 2 - position[0])


def check_sample(record, room) -> tuple[str, float]:
    """Asserts the record's answer from the geometry; returns (question kind, heading)."""
    objects = room.objects
    heading = heading_from_quaternion(record.orientation)
    names = [f"{o.colour} {o.shape}" for o in objects]
    assert len(set(names)) == len(names), "every (colour, shape) names one object"
    # The situation: a spot of the room, facing a wall or a corner; it names no object.
    assert not MENTION.findall(record.situation), record.situation
    assert not any(w in record.situation.split() for w in SHAPE_WORDS + COLOUR_WORDS), record.situation
    spot = position_from_situation(record.situation, room)
    assert np.allclose(record.position, (*spot, 0.0), atol=1e-9), (record.situation, record.position)
    named = heading_from_situation(record.situation, room, spot)
    assert abs(math.remainder(heading - named, 2 * math.pi)) < 1e-6, (record.situation, heading, named)
    local = agent_frame(objects, record.position, heading)
    gaps = [math.hypot(*(np.asarray(o.centre) - record.position[:2])) - o.radius for o in objects]
    assert min(gaps) > 0.2, "the agent stands clear of every object"
    q, answer = record.question, record.answers[0]
    assert len(record.answers) == 1

    def members(place: str, only=None) -> list[int]:
        found = []
        for k, (ahead, left) in enumerate(local):
            if only is not None and not only(k):
                continue
            where, off = place_of(ahead, left)
            if off < ANGLE_SLACK:  # near a diagonal: it must not border the asked place
                borders = {"ahead" if ahead > 0 else "astern", "port" if left > 0 else "starboard"}
                assert place not in borders, f"{names[k]} is {off:.1f} deg from a border of {place}: {q}"
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
    assert "ahead of me" in q, q
    # Distance among the objects ahead (the front half-plane), none almost level with the agent.
    level = [math.degrees(math.atan2(abs(ahead), abs(left))) for ahead, left in local]
    assert min(level) >= ANGLE_SLACK, f"an object is almost level with the agent: {q}"
    dist = {k: math.hypot(ahead, left) for k, (ahead, left) in enumerate(local) if ahead > 0}
    order = sorted(dist, key=lambda k: -dist[k] if ("farthest" in q) else dist[k])
    assert len(order) >= 2 and abs(dist[order[0]] - dist[order[1]]) >= DISTANCE_SLACK
    assert answer == objects[order[0]].shape
    return "distance", heading


# -- the tests ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def split():
    rooms = RoomsQA("train", 2000, 100, RoomsConfig(num_points=512))
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
    assert set(quadrants) == {0, 1, 2, 3} and min(quadrants.values()) > 150, quadrants


def test_types_and_answers_balanced(split):
    _, samples = split
    types = Counter(rec.question_type for rec, _, _ in samples)
    assert set(types.values()) == {400}
    by_type = defaultdict(Counter)
    for rec, _, _ in samples:
        by_type[rec.question_type][rec.answers[0]] += 1
    for qtype, answers in by_type.items():
        assert max(answers.values()) - min(answers.values()) <= 1, (qtype, answers)
    assert len(by_type["attribute"]) == 6 and len(by_type["counting"]) == 3
    # The agent stands at each of the five spots about equally often: the spot is a digit of the
    # sample index, and only a cell no room can pose (the fallback draws) moves it, mostly to the
    # middle, which every room keeps clear.
    spots = Counter(pose.spot for _, _, pose in samples)
    assert set(spots) == {0, 1, 2, 3, 4} and all(abs(n - 400) < 60 for n in spots.values()), spots


def test_agent_spots_can_be_pinned():
    middle = RoomsQA("train", 50, 40, RoomsConfig(num_points=128, spots=("middle",)))
    assert all(rec.position == (0.0, 0.0, 0.0) and "middle of the room" in rec.situation for rec in middle.records())
    east = RoomsQA("train", 50, 40, RoomsConfig(num_points=128, spots=("east",)))
    assert all(rec.position[0] > 0.45 and rec.position[1] == 0.0 for rec in east.records())
    with pytest.raises(ValueError, match="distinct names from middle, north"):
        RoomsConfig(spots=("middle", "roof"))


def test_rooms_come_back_with_other_poses_and_other_answers(split):
    _, samples = split
    per_room = defaultdict(list)
    for rec, r, pose in samples:
        if rec.question_type == "direction":
            per_room[(r, rec.question.split()[-2])].append((round(pose.heading, 6), rec.answers[0]))
    # One room asked "what is on my left?" facing different ways gets different answers: the
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
    a, b = (RoomsQA("val", 40, 30, RoomsConfig(num_points=256, data_seed=3)) for _ in range(2))
    assert a.records() == b.records()
    assert all(np.array_equal(a.points(r), b.points(r)) for r in range(5))
    other = RoomsQA("val", 40, 30, RoomsConfig(num_points=256, data_seed=4))
    assert other.records() != a.records()
    train = RoomsQA("train", 40, 30, RoomsConfig(num_points=256, data_seed=3))
    assert train.room(0) != a.room(0), "train and val rooms differ"


def test_light_config_lists_match_the_loaders():
    from lm4vis.data import vqa3d_config
    from lm4vis.data.vqa3d import base

    assert vqa3d_config.BLIND == base.BLIND
    from lm4vis.data.vqa3d import rooms

    assert vqa3d_config.AGENT_SPOTS == rooms.SPOT_NAMES


# -- the text alone must not give the answer ------------------------------------------------------------
ANSWER_WORDS = set(COLOUR_WORDS) | set(SHAPE_WORDS) | {"0", "1", "2", "3", "yes", "no"}


def text_key(record) -> tuple[tuple, list[str]]:
    """A text-only view of a sample: its type and both sentences with every answer word (colour,
    shape, count, yes/no) replaced by its place among the answer words mentioned, plus those
    words. A lookup keyed on it learns rules such as "the answer is the 4th word mentioned" (the
    object the situation says the agent faces), not only fixed answers."""
    mentioned: list[str] = []
    masked = []
    for sentence in (record.situation, record.question):
        out = []
        for w in sentence.split():
            if w in ANSWER_WORDS:
                mentioned.append(w)
                out.append(f"#{len(mentioned) - 1}")
            else:
                out.append(w)
        masked.append(" ".join(out))
    return (record.question_type, *masked), mentioned


def text_only_lookup(train, test) -> dict[str, tuple[float, float]]:
    """Per question type: (accuracy of the best text-only lookup on ``test``, the answer prior).
    Train: per key, the most frequent answer, written as a mention (``#k``) when it is one."""
    table: dict[tuple, Counter] = defaultdict(Counter)
    prior: dict[str, Counter] = defaultdict(Counter)
    for rec in train:
        key, mentioned = text_key(rec)
        a = rec.answers[0]
        table[key][f"#{mentioned.index(a)}" if a in mentioned else a] += 1
        prior[rec.question_type][a] += 1
    right, total = Counter(), Counter()
    for rec in test:
        key, mentioned = text_key(rec)
        if key in table:
            guess = table[key].most_common(1)[0][0]
            guess = mentioned[int(guess[1:])] if guess.startswith("#") and int(guess[1:]) < len(mentioned) else guess
        else:
            guess = prior[rec.question_type].most_common(1)[0][0]
        right[rec.question_type] += guess == rec.answers[0]
        total[rec.question_type] += 1
    return {t: (right[t] / total[t], max(prior[t].values()) / sum(prior[t].values())) for t in total}


@pytest.mark.slow
def test_the_text_alone_does_not_give_the_answer():
    # On the generator whose situation named objects ("next to the red cube facing the blue
    # torus"), this lookup scored direction 58.8% (prior 16.7%), attribute 63.0% (16.7%),
    # counting 41.7% (25.0%), existence 63.8% (50.0%), distance 33.7% (16.7%): "in front of me"
    # was the faced object. With the agent always in the middle: 15.8, 14.8, 33.7, 50.2, 12.8%
    # against the priors. With the five spots (the default): 20.3, 17.8, 39.0, 49.3, 16.0%
    # against 16.7, 16.7, 33.4, 50.0, 16.7: off the middle, a few cells no room can pose fall
    # back to other sentences, and the sentence then says a little (counting +5.6 points, within
    # the 3 SDs of 5.8 this test allows).
    cfg = RoomsConfig(num_points=64)
    train = RoomsQA("train", 10000, 200, cfg).records()
    test = RoomsQA("val", 3000, 100, cfg).records()
    scores = text_only_lookup(train, test)
    assert set(scores) == {"direction", "attribute", "counting", "existence", "distance"}
    for qtype, (acc, prior) in scores.items():
        sd = math.sqrt(prior * (1 - prior) / 600)  # 600 test questions per type
        assert acc <= prior + 3 * sd, (qtype, acc, prior, scores)
