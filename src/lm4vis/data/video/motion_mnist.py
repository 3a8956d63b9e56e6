"""motion-mnist: short grayscale clips whose class is a motion that no single frame shows.

Each clip shows one Fashion-MNIST (else Animal-MNIST) object moving over a cluttered background
among moving fragments of other objects. The 14 classes are motions: right, left, down, up,
clockwise, counter-clockwise (turning in place), zoom-in, zoom-out, appear, vanish (fading in or
out), orbit-clockwise, orbit-counter-clockwise (circling a point), bounce (out and back) and
still.

Why no single frame tells the class, by construction:

* A clip is a *scene* drawn without looking at the class (object, background, distractors and
  their motions, noise, and every motion parameter), and a class only decides which of the
  object's coordinates follows its path in time. The scene's coordinates are drawn so that
  any one frame has the same distribution whichever coordinate moves:
  the position lives on a torus (the canvas wraps around), uniform, so a shifted or orbiting
  position is still uniform in every frame; the angle is uniform on the circle, likewise.
  Size and visibility live on intervals, where a monotone path cannot keep a fixed frame's
  distribution: zoom-in frames are small early and large late. There, a class that does not
  zoom takes its size from a random frame of the zoom path it would have had (and the same for
  visibility), so a frame at a random position of a clip has the same distribution in every class.
* Every class but bounce and still comes with its opposite, and the opposite *is* the time
  reverse: a left clip is a right clip played backwards (distractors, noise and all). A class
  and its reverse therefore share even the unordered set of their frames; only the order of
  frames tells them apart, and `reverse_class` maps a class to the class of its reversed clips
  (bounce and still are palindromes: their own reverse).

The tests check both halves: a linear probe on single frames stays at chance while the same
probe on the first and last frames, in order, does not; and reversing a clip gives, byte for
byte, the clip of the opposite class.

Only a class and its reverse share the unordered set of frames: a shuffled left clip still shows
a horizontal path, so shuffled frames still tell a pair of opposite motions from another pair.
``motion_set="laps"`` is the set in which *every* class shares it, so that the order is all there
is. The object runs one full lap of a circle in the clip, stopping at T evenly spaced points,
each point once: ``lap-clockwise`` steps one point on per frame, ``lap-clockwise-x3`` three points,
and their reverses ``lap-counter-clockwise`` and ``lap-counter-clockwise-x3`` (T must not be a
multiple of 3, so that three points on also visits every point once). Whatever the class, a clip's
unordered frames are the same T pictures of the object at the T points of its circle (the
circle's phase, centre and radius drawn with the scene), so with ``distractors=0`` a shuffled clip
has the same distribution in every class and nothing can beat chance on it.

Clip ``i`` of a split depends only on ``(seed, split, i)``; its label is ``i % 14``, so every
class has the same number of clips and ``limit`` keeps a mix. Items also carry the object's
exact mask in every frame (``with_masks=True``), for the analysis of what a model attends to.

With ``cache=True`` the clips of a split are rendered once, at the first item asked for, into
``.npy`` files of the cache folder (`lm4vis.data.cache`: ``$LM4VIS_CACHE``, never beside the
source images), keyed by every option they depend on, and read back memory-mapped: later
epochs, runs and processes read a clip instead of drawing it again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..base import DatasetNotFoundError, check_split
from ..cache import atomic_save_npy, cache_dir
from ..cluttered import _background, _fragment, _to_float_image
from ..registry import build_dataset
from ..skips import SkipLog
from .base import VideoDataset, VideoDatasetInfo
from .transforms import GRAY_MEAN, GRAY_STD, normalize

log = logging.getLogger(__name__)

NAME = "motion-mnist"
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
ITEMS_PER_CLASS = {"train": 700, "val": 100, "test": 100}  # the default split sizes
#: Object sources tried in this order by ``source="auto"``; ``shapes`` needs nothing installed.
SOURCES = ("fashion-mnist", "animal-mnist", "shapes")
#: Version of the rendering, part of the cache key: bump it when a change alters the pixels.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Motion:
    """One class: its name and the class its time-reversed clips belong to."""

    name: str
    reverse: str


MOTIONS: tuple[Motion, ...] = (
    Motion("right", "left"), Motion("left", "right"),
    Motion("down", "up"), Motion("up", "down"),
    Motion("clockwise", "counter-clockwise"), Motion("counter-clockwise", "clockwise"),
    Motion("zoom-in", "zoom-out"), Motion("zoom-out", "zoom-in"),
    Motion("appear", "vanish"), Motion("vanish", "appear"),
    Motion("orbit-clockwise", "orbit-counter-clockwise"), Motion("orbit-counter-clockwise", "orbit-clockwise"),
    Motion("bounce", "bounce"), Motion("still", "still"),
)
CLASS_NAMES = tuple(m.name for m in MOTIONS)
#: The order-only set (see the module docstring): every class visits the same points of a lap.
LAPS: tuple[Motion, ...] = (
    Motion("lap-clockwise", "lap-counter-clockwise"), Motion("lap-counter-clockwise", "lap-clockwise"),
    Motion("lap-clockwise-x3", "lap-counter-clockwise-x3"), Motion("lap-counter-clockwise-x3", "lap-clockwise-x3"),
)
#: The class sets ``motion_set`` chooses from.
MOTION_SETS: dict[str, tuple[Motion, ...]] = {"all": MOTIONS, "laps": LAPS}
#: The classes drawn forwards; each other class is drawn as its reverse played backwards.
FORWARD = ("right", "down", "clockwise", "zoom-in", "appear", "orbit-clockwise", "bounce", "still",
           "lap-clockwise", "lap-clockwise-x3")
#: Points a lap class moves on per frame.
LAP_STEPS = {"lap-clockwise": 1, "lap-clockwise-x3": 3}


def reverse_class(label: int, motion_set: str = "all") -> int:
    """The class of the clips of class ``label`` played backwards.

    Args:
        label: a motion-mnist class id.
        motion_set: the class set the id belongs to (``all`` or ``laps``).
    """
    motions = MOTION_SETS[motion_set]
    return [m.name for m in motions].index(motions[label].reverse)


@dataclass
class MotionMNISTConfig:
    """The clips: their size, their scenes, and how far each motion goes.

    Distances are shares of the canvas side, angles in degrees; every range is the spread of a
    uniform draw per clip. Motions span the whole clip, whatever ``num_frames``.

    Args:
        num_frames: T, frames per clip.
        image_size: side of the square canvas.
        num_items: clips in the split; None: 700 per class in train, 100 in val and test.
        source: objects from ``fashion-mnist``, ``animal-mnist``, ``shapes`` (drawn here, no
            install), or ``auto``: the first of those that is installed.
        distractors: moving fragments of other objects per clip.
        motion_set: the classes: ``all`` (the 14 motions) or ``laps`` (4 laps of a circle that
            differ only in the order of the points they visit; see the module docstring).
        seed: the generator's seed; clip i depends only on (seed, split, i).
        side_range: the object's side (its 28 px frame, before turning).
        zoom_range: factor by which zoom-in grows the object over the clip.
        shift_range: distance of right/left/down/up, and the turning point of bounce.
        turn_range: degrees turned by clockwise/counter-clockwise.
        orbit_radius: radius of the orbits and of the laps.
        orbit_range: degrees swept by an orbit.
        fade_from: visibility at which appear starts (and vanish ends); 0 is invisible.
        distractor_speed: largest distance a distractor travels over the clip.
        mean, std: normalisation of the one channel.
    """

    num_frames: int = 16
    image_size: int = 32
    num_items: int | None = None
    source: str = "auto"
    distractors: int = 3
    motion_set: str = "all"
    seed: int = 0
    side_range: tuple[float, float] = (0.3, 0.7)
    zoom_range: tuple[float, float] = (1.5, 2.0)
    shift_range: tuple[float, float] = (0.3, 0.6)
    turn_range: tuple[float, float] = (90.0, 180.0)
    orbit_radius: tuple[float, float] = (0.1, 0.2)
    orbit_range: tuple[float, float] = (180.0, 270.0)
    fade_from: float = 0.1
    distractor_speed: float = 0.5
    mean: tuple[float, ...] = GRAY_MEAN
    std: tuple[float, ...] = GRAY_STD

    def __post_init__(self) -> None:
        if self.num_frames < 2:
            raise ValueError(f"motion-mnist needs at least 2 frames per clip to show a motion, got {self.num_frames}")
        if self.image_size < 8:
            raise ValueError(f"motion-mnist needs image_size >= 8, got {self.image_size}")
        if self.num_items is not None and self.num_items < 1:
            raise ValueError(f"num_items must be positive, got {self.num_items}")
        if self.source not in ("auto", *SOURCES):
            raise ValueError(f"source={self.source!r} is unknown; choose auto, {', '.join(SOURCES)}")
        if self.distractors < 0:
            raise ValueError(f"distractors must be >= 0, got {self.distractors}")
        if self.motion_set not in MOTION_SETS:
            raise ValueError(f"motion_set={self.motion_set!r} is unknown; choose {' or '.join(MOTION_SETS)}")
        if self.motion_set == "laps" and (self.num_frames < 5 or self.num_frames % 3 == 0):
            raise ValueError(
                f"motion_set='laps' needs num_frames >= 5 and not a multiple of 3 (so that stepping three "
                f"points of {self.num_frames} on visits each point once), got {self.num_frames}; try 8 or 16"
            )
        for name in ("side_range", "zoom_range", "shift_range", "turn_range", "orbit_radius", "orbit_range"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"MotionMNISTConfig.{name} must satisfy 0 <= low <= high, got {(low, high)}")
            setattr(self, name, (float(low), float(high)))
        if self.zoom_range[0] < 1:
            raise ValueError(f"zoom_range is a growth factor >= 1, got {self.zoom_range}")
        low_side, high_side = self.side_range
        if low_side <= 0 or high_side > 0.7 or high_side / low_side < self.zoom_range[1]:
            raise ValueError(
                f"side_range {self.side_range} must lie in (0, 0.7] (a larger object would wrap onto itself) "
                f"and span the largest zoom {self.zoom_range[1]}"
            )
        if not 0 <= self.fade_from < 1:
            raise ValueError(f"fade_from must lie in [0, 1), got {self.fade_from}")
        if len(self.mean) != 1 or len(self.std) != 1:
            raise ValueError(f"motion-mnist is grayscale: give one mean and one std, got {self.mean}, {self.std}")


@dataclass(frozen=True)
class Clip:
    """One rendered clip.

    Args:
        frames: uint8 [T,H,W].
        masks: bool [T,H,W], where the object is drawn in each frame.
        visibility: float32 [T], the object's opacity in each frame.
    """

    frames: np.ndarray
    masks: np.ndarray
    visibility: np.ndarray


class MotionMNIST(VideoDataset):
    """The motion-mnist clips of one split (see the module docstring).

    Items: ``video`` float32 [1,T,H,W] (normalised), ``label`` int64 [], ``index`` int64 [], and
    with ``with_masks`` ``masks`` bool [T,H,W] and ``visibility`` float32 [T].

    Args:
        split: ``train``, ``val`` or ``test``; objects and distractors come from the same split
            of the source, so no val or test clip shows a training object.
        config: the clips; None for the defaults.
        with_masks: add the object's masks and visibility to every item.
        root: folder of the source dataset's files, passed on to it.
        cache: render the clips once into the cache folder and read them from there (see the
            module docstring).
    """

    def __init__(
        self, split: str = "train", config: MotionMNISTConfig | None = None, *, with_masks: bool = False,
        root: str | None = None, cache: bool = False,
    ) -> None:
        check_split(split)
        self.config = config = config or MotionMNISTConfig()
        self.split = split
        self.with_masks = with_masks
        self.root, self.cache = root, cache
        self._store: tuple[np.ndarray, ...] | None = None  # (clip ids, frames, masks, visibility), once rendered
        self.source, self.objects = _object_pool(config.source, split, root)
        self.motions = MOTION_SETS[config.motion_set]
        count = config.num_items or ITEMS_PER_CLASS[split] * len(self.motions)
        self.clips = np.arange(count, dtype=np.int64)
        self.targets = self.clips % len(self.motions)
        self.info = VideoDatasetInfo(
            name=NAME, num_classes=len(self.motions), class_names=tuple(m.name for m in self.motions),
            num_frames=config.num_frames,
            image_size=config.image_size, in_chans=1, has_masks=True,
        )
        self.skips = SkipLog(NAME)  # generated clips are never bad; the log is there for the engine

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = self._check_index(index)
        clip = self._clip(int(self.clips[index]))
        video = normalize(torch.from_numpy(clip.frames)[None], self.config.mean, self.config.std)  # [1,T,H,W]
        item = {"video": video, "label": torch.tensor(self.targets[index]), "index": torch.tensor(index)}
        if self.with_masks:
            item["masks"] = torch.from_numpy(clip.masks)
            item["visibility"] = torch.from_numpy(clip.visibility)
        return item

    def _clip(self, clip: int) -> Clip:
        """Clip ``clip`` in its own class: from the cache when there is one."""
        if not self.cache:
            return self.render(clip)
        if self._store is None:
            self._store = self._cached_clips()
        ids, frames, masks, visibility = self._store
        row = int(np.searchsorted(ids, clip))
        if row == len(ids) or ids[row] != clip:  # not among the clips cached (a later subset's own)
            return self.render(clip)
        return Clip(np.array(frames[row]), np.array(masks[row]), np.array(visibility[row]))

    def _cached_clips(self) -> tuple[np.ndarray, ...]:
        """Every clip of this dataset, rendered once into the cache folder, memory-mapped."""
        ids = np.unique(self.clips)
        folder = cache_dir(NAME, config=repr(self.config), split=self.split, source=self.source, root=self.root,
                           clips=[int(ids[0]), int(ids[-1]), len(ids), int(ids.sum())], version=FORMAT_VERSION)
        names = ("ids", "frames", "masks", "visibility")
        paths = [folder / f"{name}.npy" for name in names]
        if not all(path.is_file() for path in paths):
            log.info("motion-mnist: rendering %d %s clips into the cache %s", len(ids), self.split, folder)
            clips = [self.render(int(i)) for i in ids]
            arrays = (ids, np.stack([c.frames for c in clips]), np.stack([c.masks for c in clips]),
                      np.stack([c.visibility for c in clips]))
            for path, array in zip(paths[::-1], arrays[::-1]):  # ids last: its presence marks a complete set
                atomic_save_npy(path, array)
        stored = tuple(np.load(path, mmap_mode="r", allow_pickle=False) for path in paths)
        if not np.array_equal(stored[0], ids):
            raise RuntimeError(f"the motion-mnist cache {folder} holds other clips than asked; delete that folder")
        return stored

    def render(self, clip: int, label: int | None = None) -> Clip:
        """Clip number ``clip`` of this split, drawn as class ``label`` (default: its own class).

        The scene is the same whatever the class, so ``render(i, reverse_class(c))`` is
        ``render(i, c)`` played backwards.

        Args:
            clip: clip number (not a position in a subset).
            label: the class to draw; None: ``clip % num_classes``.
        """
        label = clip % len(self.motions) if label is None else label
        motion = self.motions[label]
        forward = motion.name if motion.name in FORWARD else motion.reverse
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, SPLIT_CODES[self.split], clip]))
        scene = _draw_scene(rng, self.objects, self.config)
        frames, masks, visibility = _render(scene, forward, self.config, rng)
        if forward != motion.name:
            frames, masks, visibility = frames[::-1], masks[::-1], visibility[::-1]
        return Clip(np.ascontiguousarray(frames), np.ascontiguousarray(masks), np.ascontiguousarray(visibility))

    def subset(self, positions: Sequence[int] | np.ndarray) -> MotionMNIST:
        """The same dataset restricted to the items at ``positions`` (in that order).

        Args:
            positions: item positions in this dataset.
        """
        positions = np.asarray(positions, dtype=np.int64)
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.clips, out.targets = self.clips[positions], self.targets[positions]
        return out


def build_motion_mnist(
    split: str = "train", root: str | None = None, *, with_masks: bool = False, cache: bool = False, **config: Any
) -> MotionMNIST:
    """motion-mnist (see `MotionMNIST`).

    Args:
        split: ``train``, ``val`` or ``test``.
        root: folder of the source dataset's files; None finds the installed one.
        with_masks: add the object's per-frame masks to every item.
        cache: render the clips once into the cache folder (``$LM4VIS_CACHE``) and read them back.
        **config: `MotionMNISTConfig` fields.
    """
    return MotionMNIST(split, MotionMNISTConfig(**config), with_masks=with_masks, root=root, cache=cache)


# -- objects ---------------------------------------------------------------------------------

class _Shapes:
    """Random lopsided blobs, 28x28 uint8, for when no MNIST-style dataset is installed.

    Lopsided on purpose: a turn of a round or symmetric shape would not show.
    """

    count = 2000

    def __init__(self, split: str) -> None:
        self.split = split

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        rng = np.random.default_rng(np.random.SeedSequence([SPLIT_CODES[self.split], index]))
        yy, xx = np.mgrid[0:28, 0:28].astype(np.float32) - 13.5
        angle, radius = np.arctan2(yy, xx), np.hypot(yy, xx)
        # A radius that varies with the angle: a few random harmonics, plus a first harmonic
        # that pushes the shape off-centre so that no turn maps it onto itself.
        outline = np.full_like(angle, rng.uniform(6.0, 9.0))
        for k in range(1, 5):
            outline += rng.uniform(0.5, 2.5) / k * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
        inside = radius <= outline
        shade = 0.55 + 0.45 * np.cos(angle - rng.uniform(0, 2 * np.pi)) * np.clip(radius / 10.0, 0, 1)
        image = np.where(inside, np.clip(255 * shade, 40, 255), 0).astype(np.uint8)
        return torch.from_numpy(image)[None], 0


def _object_pool(source: str, split: str, root: str | None) -> tuple[str, Any]:
    """(source name, dataset of (uint8 [1,28,28], label) items)."""
    if source == "shapes":
        return source, _Shapes(split)
    if source != "auto":
        return source, build_dataset(source, split=split, root=root)
    missing = []
    for name in SOURCES[:-1]:
        try:
            return name, build_dataset(name, split=split, root=root)
        except DatasetNotFoundError as e:
            missing.append(f"{name}: {e}")
    log.warning("motion-mnist: no Fashion-MNIST or Animal-MNIST is installed (%s); the clips show random "
                "shapes instead. Install one of them for the default objects, or pass source='shapes' to "
                "choose the shapes and silence this warning", "; ".join(missing))
    return "shapes", _Shapes(split)


# -- scenes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Sprite:
    """Something drawn on every frame: its image and where it is at each frame."""

    image: np.ndarray  # float [h,w] in 0..1, its own intensity and (above the threshold) its shape
    centre: np.ndarray  # [T,2] (x, y), shares of the canvas, on the torus
    angle: np.ndarray  # [T] radians, clockwise on screen
    side: np.ndarray  # [T] side of the image's square, share of the canvas
    bright: float


@dataclass(frozen=True)
class _Scene:
    """Everything a clip shows, drawn without knowing its class."""

    image: np.ndarray
    centre: np.ndarray  # (x, y) at the clip's start, or the orbit's centre
    angle: float
    log_side: float  # the middle of the zoom path
    zoom: float  # log of the zoom factor
    size_frame: int  # the frame of the zoom path whose size non-zooming classes take
    fade_frame: int  # the same for visibility
    shift: float
    bounce_direction: float
    turn: float
    orbit_radius: float
    orbit_phase: float
    orbit_sweep: float
    background: np.ndarray
    dark: float
    bright: float
    distractors: tuple[_Sprite, ...]
    noise: float


MASK_THRESHOLD = 0.1  # object intensity (0..1) above which a pixel is part of its shape


def _draw_scene(rng: np.random.Generator, objects: Any, config: MotionMNISTConfig) -> _Scene:
    # The order of the draws is fixed and no draw depends on the class: that is what makes a
    # clip and its class-swapped twin the same scene.
    frames = config.num_frames
    image = _to_float_image(objects[int(rng.integers(len(objects)))][0])
    zoom = rng.uniform(*np.log(config.zoom_range))
    low, high = np.log(config.side_range)
    log_side = rng.uniform(low + zoom / 2, high - zoom / 2)
    centre, angle = rng.uniform(0, 1, 2), rng.uniform(0, 2 * np.pi)
    size_frame, fade_frame = (int(f) for f in rng.integers(0, frames, 2))
    shift, bounce_direction = rng.uniform(*config.shift_range), rng.uniform(0, 2 * np.pi)
    turn = np.deg2rad(rng.uniform(*config.turn_range))
    orbit_radius, orbit_phase = rng.uniform(*config.orbit_radius), rng.uniform(0, 2 * np.pi)
    orbit_sweep = np.deg2rad(rng.uniform(*config.orbit_range))
    background, level = _background(rng, config.image_size)
    # As in cluttered-*: objects and fragments share one intensity range, brighter than the
    # background's mean, so that brightness does not tell the object from the clutter.
    bright = rng.uniform(max(level + 0.3, 0.65), 1.0)
    dark = level + rng.uniform(0.0, 0.15)
    times = _times(frames)
    side = np.exp(log_side + zoom * times[size_frame])
    distractors = []
    for _ in range(config.distractors):
        source = _to_float_image(objects[int(rng.integers(len(objects)))][0])
        fragment = _fragment(source, rng, round(source.shape[0] * rng.uniform(0.3, 0.5)), MASK_THRESHOLD)
        start, heading = rng.uniform(0, 1, 2), rng.uniform(0, 2 * np.pi)
        travel = rng.uniform(0, config.distractor_speed)
        spin, tilt = rng.uniform(-np.pi / 2, np.pi / 2), rng.uniform(0, 2 * np.pi)
        scale = side * fragment.shape[0] / source.shape[0] * rng.uniform(0.8, 1.25)
        distractors.append(_Sprite(
            image=fragment,
            centre=start + travel * times[:, None] * np.array([np.cos(heading), np.sin(heading)]),
            angle=tilt + spin * times,
            side=np.full(frames, scale),
            bright=bright * rng.uniform(0.85, 1.1),
        ))
    return _Scene(
        image=image, centre=centre, angle=angle, log_side=log_side, zoom=zoom, size_frame=size_frame,
        fade_frame=fade_frame, shift=shift, bounce_direction=bounce_direction, turn=turn,
        orbit_radius=orbit_radius, orbit_phase=orbit_phase, orbit_sweep=orbit_sweep, background=background,
        dark=dark, bright=bright, distractors=tuple(distractors), noise=rng.uniform(0.01, 0.05),
    )


def _times(frames: int) -> np.ndarray:
    """Frame times in [-1/2, 1/2], symmetric: frame T-1-k is at minus the time of frame k."""
    return np.linspace(-0.5, 0.5, frames)


def _object_path(scene: _Scene, motion: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre [T,2], angle [T], side [T] and visibility [T] of the object under ``motion``."""
    times = _times(frames)
    centre = np.broadcast_to(scene.centre, (frames, 2)).copy()
    angle = np.full(frames, scene.angle)
    log_side = np.full(frames, scene.log_side + scene.zoom * times[scene.size_frame])
    fade = np.full(frames, times[scene.fade_frame])
    if motion == "right":
        centre[:, 0] += scene.shift * (times + 0.5)
    elif motion == "down":
        centre[:, 1] += scene.shift * (times + 0.5)
    elif motion == "clockwise":
        angle = scene.angle + scene.turn * times
    elif motion == "zoom-in":
        log_side = scene.log_side + scene.zoom * times
    elif motion == "appear":
        fade = times
    elif motion == "orbit-clockwise":
        phase = scene.orbit_phase + scene.orbit_sweep * times  # y points down: a growing angle turns clockwise
        centre += scene.orbit_radius * np.stack([np.cos(phase), np.sin(phase)], axis=1)
    elif motion == "bounce":
        out = scene.shift * (1 - 2 * np.abs(times))  # 0 at both ends, the turning point mid-clip
        centre += out[:, None] * np.array([np.cos(scene.bounce_direction), np.sin(scene.bounce_direction)])
    elif motion in LAP_STEPS:
        # Frame t at point (step * t) mod T of T evenly spaced on the circle: every point once.
        points = (LAP_STEPS[motion] * np.arange(frames)) % frames
        phase = scene.orbit_phase + 2 * np.pi * points / frames
        centre += scene.orbit_radius * np.stack([np.cos(phase), np.sin(phase)], axis=1)
    elif motion != "still":
        raise ValueError(f"no path for motion {motion!r}")
    return centre, angle, np.exp(log_side), fade + 0.5


def _coverage(
    sprite_image: np.ndarray, centre: np.ndarray, angle: np.ndarray, side: np.ndarray, size: int
) -> np.ndarray:
    """The sprite's image resampled onto the canvas at every frame: float [T,size,size].

    The canvas is a torus: each pixel looks at the sprite through the shortest wrapped offset
    from the sprite's centre, so a sprite leaving one edge enters at the other.
    """
    pixels = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    centre, angle, side = (torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in (centre, angle, side))
    offset_x = torch.remainder(pixels[None, None, :] - centre[:, 0, None, None] + 0.5, 1.0) - 0.5
    offset_y = torch.remainder(pixels[None, :, None] - centre[:, 1, None, None] + 0.5, 1.0) - 0.5
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    scale = 2 / side[:, None, None]
    # Undo the turn, then the scale: sprite coordinates in [-1, 1] (grid_sample's convention).
    grid = torch.stack([(cos * offset_x + sin * offset_y) * scale, (cos * offset_y - sin * offset_x) * scale], dim=-1)
    source = torch.from_numpy(np.ascontiguousarray(sprite_image, dtype=np.float32))[None, None]
    return F.grid_sample(source.expand(len(angle), 1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0].numpy()


def _render(
    scene: _Scene, motion: str, config: MotionMNISTConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frames, size = config.num_frames, config.image_size
    canvas = np.broadcast_to(scene.background, (frames, size, size)).astype(np.float32)
    for sprite in scene.distractors:
        cover = _coverage(sprite.image, sprite.centre, sprite.angle, sprite.side, size)
        drawn = np.float32(scene.dark) + np.float32(sprite.bright - scene.dark) * cover
        canvas = np.where(cover > MASK_THRESHOLD, drawn, canvas)
    centre, angle, side, visibility = _object_path(scene, motion, frames)
    visibility = (config.fade_from + (1 - config.fade_from) * visibility).astype(np.float32)
    cover = _coverage(scene.image, centre, angle, side, size)
    masks = cover > MASK_THRESHOLD
    drawn = np.float32(scene.dark) + np.float32(scene.bright - scene.dark) * cover
    alpha = visibility[:, None, None]
    # The object is drawn last, over the fragments: its mask is exact.
    canvas = np.where(masks, (1 - alpha) * canvas + alpha * drawn, canvas)
    canvas = canvas + np.float32(scene.noise) * rng.standard_normal(canvas.shape, dtype=np.float32)
    return np.clip(np.round(canvas * 255.0), 0, 255).astype(np.uint8), masks, visibility


__all__ = ["MotionMNIST", "MotionMNISTConfig", "Motion", "MOTIONS", "LAPS", "MOTION_SETS", "CLASS_NAMES", "Clip",
           "reverse_class",
           "build_motion_mnist"]
