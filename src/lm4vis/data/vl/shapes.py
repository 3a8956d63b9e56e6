"""Scenes of coloured shapes (Sort-of-CLEVR style): sampling, rendering, and the geometry the
question and caption generators read off them.

A scene holds ``num_objects`` objects, each of its own colour, of one of three shapes, at
non-overlapping positions. Coordinates are fractions of the canvas (x right, y down), so one
scene renders at any image size, and masks are exact: objects never overlap and are drawn
without antialiasing, so every mask pixel has exactly its object's colour.

Relations are only stated when they are clear: a generator never asks or says which object is
closest, leftmost, in the left half or to the left of another when the deciding distance is
within ``relation_margin`` of flipping (then the picture could contradict the words).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

#: The palette: name -> RGB. Saturated and far apart, so colour is never in doubt at 64 px.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30), "green": (30, 200, 50), "blue": (40, 70, 240),
    "yellow": (240, 220, 30), "magenta": (220, 40, 220), "cyan": (30, 220, 230),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
BACKGROUND: tuple[int, int, int] = (40, 40, 40)
#: Split -> the number it contributes to every item's seed.
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
_PLACEMENT_TRIES = 200


@dataclass
class SceneConfig:
    """How scenes are drawn.

    Args:
        num_objects: objects per scene, each of a distinct colour.
        colours: palette entries used (names of `COLOURS`).
        object_size: side (square, triangle) or diameter (circle), fraction of the canvas.
        gap: least free space between two objects' boxes, fraction of the canvas.
        relation_margin: a relation is stated only when the deciding distance (a coordinate
            difference, or the gap between the nearest and the next nearest) exceeds this.
    """

    num_objects: int = 6
    colours: tuple[str, ...] = tuple(COLOURS)
    object_size: float = 0.15
    gap: float = 0.02
    relation_margin: float = 0.04

    def __post_init__(self) -> None:
        self.colours = tuple(self.colours)
        unknown = [c for c in self.colours if c not in COLOURS]
        if unknown:
            raise ValueError(f"unknown colours {unknown}; choose from {', '.join(COLOURS)}")
        if len(set(self.colours)) != len(self.colours):
            raise ValueError(f"colours repeat: {self.colours}")
        if not 2 <= self.num_objects <= len(self.colours):
            raise ValueError(f"num_objects must be 2..{len(self.colours)} (one colour each), got {self.num_objects}")
        if not 0 < self.object_size < 0.5 or self.gap < 0 or self.relation_margin < 0:
            raise ValueError("object_size must be in (0, 0.5), gap and relation_margin >= 0")
        # Random placement stalls long before the boxes tile the canvas; a third is easy.
        if self.num_objects * (self.object_size + self.gap) ** 2 > 1 / 3:
            raise ValueError(f"{self.num_objects} objects of size {self.object_size} crowd the canvas; "
                             "use fewer or smaller objects")


@dataclass(frozen=True)
class SceneObject:
    """One object: its colour, shape, centre (x, y) and size, in fractions of the canvas."""

    colour: str
    shape: str
    x: float
    y: float
    size: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1), fractions of the canvas."""
        half = self.size / 2
        return (self.x - half, self.y - half, self.x + half, self.y + half)

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...] = field(default_factory=tuple)

    def index_of(self, colour: str) -> int:
        """Index of the object of ``colour`` (colours are unique in a scene)."""
        for i, o in enumerate(self.objects):
            if o.colour == colour:
                return i
        raise KeyError(colour)


def item_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of item ``index`` of ``split``: a function of the three alone."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))


def sample_shapes(rng: np.random.Generator, num_objects: int) -> list[str]:
    """Shapes of ``num_objects`` objects, drawn so that every count of a shape is common.

    One shape, picked at random, is given to a uniform number 0..num_objects of the objects and
    the others draw among the remaining shapes: with independent draws, five circles among six
    objects would almost never happen, and "how many" questions could not be balanced.
    """
    chosen = int(rng.integers(len(SHAPES)))
    count = int(rng.integers(num_objects + 1))
    # Offsets 1..len-1 from the chosen shape reach every other shape with equal chance.
    others = (chosen + rng.integers(1, len(SHAPES), size=num_objects - count)) % len(SHAPES)
    codes = np.concatenate([np.full(count, chosen), others])[rng.permutation(num_objects)]
    return [SHAPES[c] for c in codes]


def sample_scene(rng: np.random.Generator, cfg: SceneConfig) -> Scene:
    """A random scene: distinct colours, balanced shapes, non-overlapping positions.

    Args:
        rng: the item's generator.
        cfg: how scenes are drawn.
    """
    half, reach = cfg.object_size / 2, cfg.object_size + cfg.gap
    while True:  # a placement that runs out of room starts over; rare at the allowed densities
        colours = [cfg.colours[k] for k in rng.permutation(len(cfg.colours))[: cfg.num_objects]]
        shapes = sample_shapes(rng, cfg.num_objects)
        centres: list[tuple[float, float]] = []
        # Candidate centres drawn at once, accepted in order when clear of those kept.
        for x, y in rng.uniform(half, 1 - half, size=(_PLACEMENT_TRIES, 2)).tolist():
            # Boxes at least `gap` apart: centres differ by `size + gap` along some axis.
            if all(abs(x - cx) >= reach or abs(y - cy) >= reach for cx, cy in centres):
                centres.append((x, y))
                if len(centres) == cfg.num_objects:
                    return Scene(tuple(SceneObject(c, s, x, y, cfg.object_size)
                                       for c, s, (x, y) in zip(colours, shapes, centres)))


def render(scene: Scene, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene as an image and one exact mask per object.

    Args:
        scene: what to draw.
        image_size: side of the square canvas in pixels.

    Returns:
        ``(image uint8 [S, S, 3], masks bool [num_objects, S, S])``.
    """
    image = np.empty((image_size, image_size, 3), np.uint8)
    image[:] = BACKGROUND
    masks = np.zeros((len(scene.objects), image_size, image_size), bool)
    for k, obj in enumerate(scene.objects):
        canvas = Image.new("1", (image_size, image_size), 0)
        draw = ImageDraw.Draw(canvas)
        # Pixel (c, r) covers [c, c+1) x [r, r+1): a box from x0 to x1 fills columns x0 .. x1-1.
        x0, y0, x1, y1 = (v * image_size for v in obj.box)
        right, bottom = x1 - 1, y1 - 1
        if obj.shape == "circle":
            draw.ellipse((x0, y0, right, bottom), fill=1)
        elif obj.shape == "square":
            draw.rectangle((x0, y0, right, bottom), fill=1)
        else:  # triangle, apex up
            draw.polygon([(x0, bottom), (right, bottom), ((x0 + right) / 2, y0)], fill=1)
        masks[k] = np.array(canvas, dtype=bool)
        image[masks[k]] = COLOURS[obj.colour]
    return image, masks


# -- geometry the generators read (a test recomputes all of it on its own) ------------------
def clear_extreme(values: Sequence[float], margin: float, largest: bool = False) -> int | None:
    """Index of the smallest (``largest``: largest) value when it beats the runner-up by more
    than ``margin``, else None. (Plain Python: for six values it is ten times numpy's speed.)

    Args:
        values: one value per candidate.
        margin: the least lead that counts as clear.
        largest: look for the largest value instead.
    """
    order = sorted(range(len(values)), key=values.__getitem__, reverse=largest)
    if len(order) == 1:
        return order[0]
    return order[0] if abs(values[order[1]] - values[order[0]]) > margin else None


def clear_closest(scene: Scene, index: int, margin: float, farthest: bool = False) -> int | None:
    """The object clearly closest to (``farthest``: farthest from) object ``index``, or None.

    Distances are between centres, in fractions of the canvas side.

    Args:
        scene: the scene.
        index: the reference object.
        margin: the least lead over the runner-up that counts as clear.
        farthest: look for the farthest object instead.
    """
    ref = scene.objects[index]
    others = [k for k in range(len(scene.objects)) if k != index]
    gaps = [math.dist((ref.x, ref.y), (scene.objects[k].x, scene.objects[k].y)) for k in others]
    pick = clear_extreme(gaps, margin, largest=farthest)
    return None if pick is None else others[pick]


def side(value: float, margin: float, low: str, high: str) -> str | None:
    """``low`` below 0.5 - margin, ``high`` above 0.5 + margin, None in between."""
    if value < 0.5 - margin:
        return low
    if value > 0.5 + margin:
        return high
    return None


__all__ = ["COLOURS", "SHAPES", "BACKGROUND", "SPLIT_CODES", "SceneConfig", "SceneObject", "Scene",
           "item_rng", "sample_shapes", "sample_scene", "render", "clear_extreme",
           "clear_closest", "side"]
