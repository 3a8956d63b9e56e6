"""``shapes3d``: procedural surfaces sampled on the fly, the embedded default point dataset.

Fourteen classes, balanced exactly (item ``i`` has class ``i % 14``). Classes come in pairs
that differ only in geometry a model must see: cylinder / capsule (flat or round ends, same
radius and length ranges), cone / pyramid (round or square base), torus / ring (round or
square tube section, same radii), sphere / octahedron, cube / prism (square or triangular
section), L-shape / T-shape (where the bars meet), and helix / hourglass. Each item is a
random instance (proportions drawn per class), turned about the up axis and tilted (or, by
option, in any 3D orientation), scaled, with Gaussian noise, often a partial view (a random
half-space cut, like a single scan from one side) and outliers scattered in the unit ball. The per-point ``mask`` is True on the object
and False on outliers, for the analysis of what the model attends to.

Item ``i`` of a split depends only on ``(data_seed, split, i)`` (a
``numpy.random.SeedSequence``), not on worker count or access order. ``data_seed`` is fixed
by default so every run, whatever its seed, sees the same shapes; the run ``seed`` drives the
training augmentation only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import XYZ, PointCloudDataset, PointCloudInfo, check_split
from .io import sample_surface
from .transforms import PointAugment, rotation_about_axis

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
#: Segments around the axis of a surface of revolution, and per quarter circle of a profile.
SEGMENTS, ARC_STEPS = 32, 6

Mesh = tuple[np.ndarray, np.ndarray]


# -- meshes -------------------------------------------------------------------------------------
def revolve(profile: np.ndarray, closed: bool = False) -> Mesh:
    """Triangles of the surface swept by a (radius, height) polyline turning about the y axis.

    Args:
        profile: ``(P, 2)`` points (radius >= 0, height).
        closed: join the last profile point back to the first (a torus's circle).
    """
    angles = np.linspace(0.0, 2 * np.pi, SEGMENTS, endpoint=False)
    r, h = profile[:, 0:1], profile[:, 1:2]
    vertices = np.stack([r * np.cos(angles), np.broadcast_to(h, r.shape[:1] + angles.shape),
                         r * np.sin(angles)], axis=-1).reshape(-1, 3)
    p = len(profile)
    rings = np.arange(p if closed else p - 1)
    seg = np.arange(SEGMENTS)
    a = rings[:, None] * SEGMENTS + seg  # (rings, segments) vertex ids
    b = ((rings[:, None] + 1) % p) * SEGMENTS + seg
    a2, b2 = rings[:, None] * SEGMENTS + (seg + 1) % SEGMENTS, ((rings[:, None] + 1) % p) * SEGMENTS + (seg + 1) % SEGMENTS
    faces = np.concatenate([np.stack([a, b, b2], -1).reshape(-1, 3), np.stack([a, b2, a2], -1).reshape(-1, 3)])
    return vertices, faces  # triangles at the poles (radius 0) have no area and are never drawn


def arc(centre: tuple[float, float], radius: float, start: float, stop: float, steps: int) -> np.ndarray:
    """Points of a circular arc in the (radius, height) plane, angles in radians."""
    t = np.linspace(start, stop, steps)
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def box(half: np.ndarray, centre: np.ndarray | None = None) -> Mesh:
    """The 12 triangles of an axis-aligned box."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    vertices = corners * half + (0 if centre is None else centre)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for q in quads for t in ((q[0], q[1], q[2]), (q[0], q[2], q[3]))])
    return vertices, faces


def union_of_boxes(boxes: list[tuple[np.ndarray, np.ndarray]], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform on the outer surface of overlapping boxes (centre, half extents):
    points drawn on every box, less those inside another box (the union's hidden faces)."""
    meshes = [box(half, centre) for centre, half in boxes]
    offsets = np.cumsum([0] + [len(v) for v, _ in meshes])
    vertices = np.concatenate([v for v, _ in meshes])
    faces = np.concatenate([f + o for (_, f), o in zip(meshes, offsets)])
    kept = np.zeros((0, 3))
    while len(kept) < n:
        points = sample_surface(vertices, faces, 2 * n, rng).astype(np.float64)
        inside = np.zeros(len(points), dtype=bool)
        for centre, half in boxes:
            inside |= (np.abs(points - centre) < half - 1e-6).all(axis=1)
        kept = np.concatenate([kept, points[~inside]])
    return kept[:n]


def polyhedron(vertices: np.ndarray, faces: list[tuple[int, int, int]]) -> Mesh:
    """A mesh from vertex coordinates and triangles listed by hand."""
    return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


# -- the classes: rng, n -> (n, 3) points on the surface, any scale (normalised afterwards) ------
def _sphere(rng: np.random.Generator, n: int) -> np.ndarray:
    return sample_surface(*revolve(arc((0, 0), 1.0, -np.pi / 2, np.pi / 2, 4 * ARC_STEPS)), n, rng)


def _octahedron(rng: np.random.Generator, n: int) -> np.ndarray:
    s = rng.uniform(0.85, 1.15, 3)
    v = np.array([[s[0], 0, 0], [-s[0], 0, 0], [0, s[1], 0], [0, -s[1], 0], [0, 0, s[2]], [0, 0, -s[2]]])
    faces = [(a, b, c) for a in (0, 1) for b in (2, 3) for c in (4, 5)]
    return sample_surface(*polyhedron(v, faces), n, rng)


def _cube(rng: np.random.Generator, n: int) -> np.ndarray:
    return sample_surface(*box(rng.uniform(0.85, 1.15, 3)), n, rng)


def _prism(rng: np.random.Generator, n: int) -> np.ndarray:
    radius, half = rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)
    t = np.pi / 2 + np.array([0, 2, 4]) * np.pi / 3  # an equilateral triangle in x-z
    tri = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    v = np.array([[x, y, z] for y in (-half, half) for x, z in tri])
    faces = [(0, 2, 1), (3, 4, 5)] + [t for i in range(3) for t in
                                      ((i, (i + 1) % 3, 3 + (i + 1) % 3), (i, 3 + (i + 1) % 3, 3 + i))]
    return sample_surface(*polyhedron(v, faces), n, rng)


def _radius_length(rng: np.random.Generator) -> tuple[float, float]:
    # Shared by cylinder and capsule, so that only the shape of the ends tells them apart.
    return rng.uniform(0.35, 0.6), rng.uniform(0.7, 1.1)


def _cylinder(rng: np.random.Generator, n: int) -> np.ndarray:
    r, half = _radius_length(rng)
    return sample_surface(*revolve(np.array([[0, -half], [r, -half], [r, half], [0, half]])), n, rng)


def _capsule(rng: np.random.Generator, n: int) -> np.ndarray:
    r, half = _radius_length(rng)
    body = max(half - r, 0.15)  # half length of the straight part
    profile = np.concatenate([arc((0, -body), r, -np.pi / 2, 0, ARC_STEPS), arc((0, body), r, 0, np.pi / 2, ARC_STEPS)])
    return sample_surface(*revolve(profile), n, rng)


def _base_height(rng: np.random.Generator) -> tuple[float, float]:
    # Shared by cone and pyramid: only a round or a square base tells them apart.
    return rng.uniform(0.5, 0.9), rng.uniform(0.6, 1.0)


def _cone(rng: np.random.Generator, n: int) -> np.ndarray:
    r, half = _base_height(rng)
    return sample_surface(*revolve(np.array([[0, -half], [r, -half], [0, half]])), n, rng)


def _pyramid(rng: np.random.Generator, n: int) -> np.ndarray:
    a, half = _base_height(rng)
    a *= 0.85  # a square of half side 0.85 r has about the area of the disk of radius r
    v = np.array([[-a, -half, -a], [a, -half, -a], [a, -half, a], [-a, -half, a], [0, half, 0]])
    faces = [(0, 1, 2), (0, 2, 3), (0, 4, 1), (1, 4, 2), (2, 4, 3), (3, 4, 0)]
    return sample_surface(*polyhedron(v, faces), n, rng)


def _hourglass(rng: np.random.Generator, n: int) -> np.ndarray:
    r, half = _radius_length(rng)
    waist = r * rng.uniform(0.15, 0.4)
    return sample_surface(*revolve(np.array([[0, -half], [r, -half], [waist, 0], [r, half], [0, half]])), n, rng)


def _tube_radii(rng: np.random.Generator) -> tuple[float, float]:
    # Shared by torus and ring: only the section (round or square) tells them apart.
    return rng.uniform(0.6, 0.85), rng.uniform(0.12, 0.3)


def _torus(rng: np.random.Generator, n: int) -> np.ndarray:
    big, small = _tube_radii(rng)
    return sample_surface(*revolve(arc((big, 0), small, 0, 2 * np.pi, 4 * ARC_STEPS)[:-1], closed=True), n, rng)


def _ring(rng: np.random.Generator, n: int) -> np.ndarray:
    big, small = _tube_radii(rng)
    section = np.array([[big - small, -small], [big + small, -small], [big + small, small], [big - small, small]])
    return sample_surface(*revolve(section, closed=True), n, rng)


def _helix(rng: np.random.Generator, n: int) -> np.ndarray:
    coil, turns, half, tube = rng.uniform(0.5, 0.7), rng.uniform(2.0, 4.0), rng.uniform(0.6, 1.0), rng.uniform(0.06, 0.12)
    # A thin tube around the curve; (u, v) drawn uniformly is uniform on it up to O(tube/coil).
    u, v = rng.random(n), rng.uniform(0, 2 * np.pi, n)
    t = 2 * np.pi * turns * u
    rise = 2 * half / (2 * np.pi * turns)  # height gained per radian
    centre = np.stack([coil * np.cos(t), -half + rise * t, coil * np.sin(t)], axis=1)
    tangent = np.stack([-coil * np.sin(t), np.full_like(t, rise), coil * np.cos(t)], axis=1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-np.cos(t), np.zeros_like(t), -np.sin(t)], axis=1)  # towards the axis
    binormal = np.cross(tangent, normal)
    return centre + tube * (np.cos(v)[:, None] * normal + np.sin(v)[:, None] * binormal)


def _bars(rng: np.random.Generator) -> tuple[float, float, float, float]:
    # Shared by L and T: bar thickness, depth, and the two bar lengths.
    return rng.uniform(0.25, 0.4), rng.uniform(0.25, 0.5), rng.uniform(1.6, 2.0), rng.uniform(1.2, 1.8)


def _l_shape(rng: np.random.Generator, n: int) -> np.ndarray:
    t, d, tall, wide = _bars(rng)
    stem = (np.array([t / 2, tall / 2, 0]), np.array([t / 2, tall / 2, d / 2]))
    foot = (np.array([wide / 2, t / 2, 0]), np.array([wide / 2, t / 2, d / 2]))
    return union_of_boxes([stem, foot], n, rng)


def _t_shape(rng: np.random.Generator, n: int) -> np.ndarray:
    t, d, tall, wide = _bars(rng)
    stem = (np.array([0, tall / 2, 0]), np.array([t / 2, tall / 2, d / 2]))
    top = (np.array([0, tall - t / 2, 0]), np.array([wide / 2, t / 2, d / 2]))
    return union_of_boxes([stem, top], n, rng)


SHAPES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "sphere": _sphere, "octahedron": _octahedron,
    "cube": _cube, "prism": _prism,
    "cylinder": _cylinder, "capsule": _capsule,
    "cone": _cone, "pyramid": _pyramid,
    "torus": _torus, "ring": _ring,
    "l_shape": _l_shape, "t_shape": _t_shape,
    "helix": _helix, "hourglass": _hourglass,
}
CLASS_NAMES: tuple[str, ...] = tuple(SHAPES)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix uniform on SO(3) (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def upright_rotation(rng: np.random.Generator, max_tilt: float) -> np.ndarray:
    """A uniform turn about the up (y) axis, then a tilt of at most ``max_tilt`` degrees about
    a random horizontal axis: an object standing on a floor, as scans and ModelNet have them.

    Args:
        rng: the generator.
        max_tilt: largest tilt off vertical, in degrees.
    """
    turn = rotation_about_axis(rng.uniform(0, 2 * np.pi), 1)
    axis = rotation_about_axis(rng.uniform(0, 2 * np.pi), 1) @ np.array([1.0, 0.0, 0.0])
    angle = np.deg2rad(rng.uniform(0, max_tilt))
    # Rodrigues' formula for the tilt about the horizontal unit vector `axis`.
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    tilt = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
    return tilt @ turn.T


ROTATIONS: tuple[str, ...] = ("upright", "so3")


@dataclass(frozen=True)
class Shapes3DConfig:
    """How shapes3d items are made.

    Args:
        num_points: points per item (object and outliers).
        data_seed: the seed of the shapes (not of the training augmentation).
        rotation: ``upright`` (any turn about the up axis, tilted by at most ``max_tilt``
            degrees) or ``so3`` (any orientation: much harder; a small model needs many epochs).
        max_tilt: the largest tilt of an upright shape, in degrees.
        train_per_class, val_per_class, test_per_class: items of each class per split.
        scale_range: object radius after scaling (the outliers fill the unit ball).
        noise_max: the std of the Gaussian noise on object points is drawn from [0, noise_max].
        partial_prob: chance of a partial view.
        keep_range: share of the surface a partial view keeps.
        outlier_max: the share of outliers is drawn from [0, outlier_max].
    """

    num_points: int = 1024
    data_seed: int = 0
    rotation: str = "upright"
    max_tilt: float = 30.0
    train_per_class: int = 200
    val_per_class: int = 50
    test_per_class: int = 50
    scale_range: tuple[float, float] = (0.6, 0.9)
    noise_max: float = 0.02
    partial_prob: float = 0.5
    keep_range: tuple[float, float] = (0.5, 0.9)
    outlier_max: float = 0.1

    def __post_init__(self) -> None:
        if self.num_points < 2:
            raise ValueError(f"shapes3d num_points must be at least 2, got {self.num_points}")
        if self.rotation not in ROTATIONS:
            raise ValueError(f"shapes3d rotation={self.rotation!r} is unknown; choose one of {', '.join(ROTATIONS)}")
        if min(self.train_per_class, self.val_per_class, self.test_per_class) <= 0:
            raise ValueError("shapes3d needs at least one item per class in every split")
        if not 0 < self.scale_range[0] <= self.scale_range[1] <= 1:
            raise ValueError(f"shapes3d scale_range must be 0 < low <= high <= 1, got {self.scale_range}")
        if not 0 < self.keep_range[0] <= self.keep_range[1] <= 1:
            raise ValueError(f"shapes3d keep_range must be 0 < low <= high <= 1, got {self.keep_range}")
        if not 0 <= self.partial_prob <= 1 or not 0 <= self.outlier_max < 1 or self.noise_max < 0:
            raise ValueError("shapes3d partial_prob must be in [0, 1], outlier_max in [0, 1), noise_max >= 0")

    def per_class(self, split: str) -> int:
        return {"train": self.train_per_class, "val": self.val_per_class, "test": self.test_per_class}[split]


def make_shape(label: int, rng: np.random.Generator, cfg: Shapes3DConfig) -> tuple[np.ndarray, np.ndarray]:
    """One item of class ``label``: points ``(num_points, 3)`` float32, mask ``(num_points,)``
    bool (True on the object).

    Args:
        label: index into `CLASS_NAMES`.
        rng: the item's generator (all randomness comes from it).
        cfg: the generation settings.
    """
    n = cfg.num_points
    num_outliers = int(round(rng.uniform(0, cfg.outlier_max) * n))
    num_object = n - num_outliers
    # Twice the points needed: a partial view keeps at least half of them.
    surface = SHAPES[CLASS_NAMES[label]](rng, 2 * num_object).astype(np.float64)
    surface -= (surface.max(axis=0) + surface.min(axis=0)) / 2
    surface /= np.linalg.norm(surface, axis=1).max()
    rotation = random_rotation(rng) if cfg.rotation == "so3" else upright_rotation(rng, cfg.max_tilt)
    surface = surface @ rotation.T
    if rng.random() < cfg.partial_prob:
        # A scan from one side: keep the points on one side of a random plane.
        keep = max(num_object, int(round(rng.uniform(*cfg.keep_range) * len(surface))))
        surface = surface[np.argsort(surface @ rng.normal(size=3))[-keep:]]
    obj = surface[rng.permutation(len(surface))[:num_object]] * rng.uniform(*cfg.scale_range)
    obj += rng.normal(0.0, rng.uniform(0, cfg.noise_max), size=obj.shape)
    # Outliers uniform in the unit ball: direction, then radius with density ~ r^2.
    direction = rng.normal(size=(num_outliers, 3))
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    outliers = direction * np.cbrt(rng.random((num_outliers, 1)))
    points = np.concatenate([obj, outliers]).astype(np.float32)
    mask = np.arange(n) < num_object
    order = rng.permutation(n)  # no position tells an outlier from an object point
    return points[order], mask[order]


class Shapes3D(PointCloudDataset):
    """Procedural shapes generated per item (see the module docstring).

    Args:
        split: ``train``, ``val`` or ``test``.
        cfg: how items are made.
        augment, seed, normalize: see `PointCloudDataset`.
    """

    def __init__(self, split: str, cfg: Shapes3DConfig, *, augment: PointAugment | None = None,
                 seed: int = 0, normalize: bool = False) -> None:
        check_split(split, SPLITS, "shapes3d")
        self.split, self.cfg = split, cfg
        size = cfg.per_class(split) * len(CLASS_NAMES)
        info = PointCloudInfo("shapes3d", len(CLASS_NAMES), CLASS_NAMES, cfg.num_points, XYZ, has_masks=True)
        super().__init__(info, np.arange(size), np.arange(size) % len(CLASS_NAMES), augment=augment,
                         seed=seed, normalize=normalize)
        # A shape depends only on (data_seed, split, index): made once, kept for later epochs (it
        # costs about as much as a small model's training step on it; 256 points are 3 kB).
        # Per process: each DataLoader worker fills its own.
        self._made: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _cloud(self, source_index: int) -> tuple[np.ndarray, np.ndarray]:
        made = self._made.get(source_index)
        if made is None:
            rng = np.random.default_rng(np.random.SeedSequence([self.cfg.data_seed, SPLIT_IDS[self.split], source_index]))
            made = self._made[source_index] = make_shape(int(self.source_targets[source_index]), rng, self.cfg)
        return made


def build_shapes3d(
    split: str = "train",
    root: str | None = None,
    *,
    augment: PointAugment | None = None,
    seed: int = 0,
    normalize: bool = False,
    **options: Any,
) -> Shapes3D:
    """The generated shapes dataset; needs no files.

    Args:
        split: ``train``, ``val`` or ``test``.
        root: unused (nothing to read); accepted so every point dataset builds alike.
        augment: training augmentation, or None.
        seed: the run seed of the augmentation (the shapes come from ``data_seed``).
        normalize: centre and scale each cloud into the unit sphere (items already fit in it).
        **options: fields of `Shapes3DConfig` (``num_points``, ``data_seed``, ...).
    """
    return Shapes3D(split, Shapes3DConfig(**options), augment=augment, seed=seed, normalize=normalize)


__all__ = ["Shapes3D", "Shapes3DConfig", "build_shapes3d", "make_shape", "CLASS_NAMES", "SHAPES",
           "revolve", "union_of_boxes", "random_rotation", "upright_rotation", "ROTATIONS"]
