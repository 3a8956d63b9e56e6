"""Cluttered scenes with exact foreground masks, for testing the "information filtering" idea.

A 28x28 object is pasted at a random scale and position onto a larger canvas whose background is
textured (smooth noise, gratings at a random angle, pixel noise, or a sum of two), among
fragments cut from *other* images of the same dataset. The fragments are drawn with the same
intensities as the object, so a global intensity threshold cannot separate object from clutter:
telling them apart needs shape, which is what a feature-activation pseudo-mask is meant to show.

Everything random comes from a numpy Generator seeded by ``(seed, index)``, so item ``i`` is the
same bytes whenever and in whatever order it is read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .base import DatasetInfo, ImageDataset

BACKGROUNDS = ("smooth", "grating", "noise")


def _to_float_image(image: Tensor | np.ndarray) -> np.ndarray:
    """uint8 [H,W] or [1,H,W] -> float32 [H,W] in 0..1, contrast-stretched.

    The 90th percentile of the non-black pixels maps to 1: a dark item (a black shirt is mostly
    20..70 in Fashion-MNIST, with a few bright buttons) stays visible once its intensities are
    remapped onto the canvas, and a few outlier pixels do not decide the stretch.
    """
    array = image.numpy() if isinstance(image, Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(
            f"make_cluttered needs a grayscale image [H,W] or [1,H,W], got shape {array.shape}; "
            "convert RGB images to grayscale first"
        )
    if array.dtype != np.uint8:
        raise ValueError(f"make_cluttered needs a uint8 image, got {array.dtype}")
    lit = array[array >= 8]
    if lit.size:
        k = int(0.9 * (lit.size - 1))
        peak = float(np.partition(lit, k)[k])  # the 90th percentile, without np.percentile's overhead
    else:
        peak = float(array.max())
    peak = max(peak, 1.0)
    return np.minimum(array.astype(np.float32) / peak, 1.0)


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    """Bilinear, antialiased resize of a float [h,w] array to [size,size]."""
    if array.shape == (size, size):
        return array
    t = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].clamp_(0.0, 1.0).numpy()


@lru_cache(maxsize=8)
def _grid(size: int) -> np.ndarray:
    grid = np.mgrid[0:size, 0:size].astype(np.float32) / size
    grid.flags.writeable = False
    return grid


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
    """A textured background in 0..1 and its mean level."""
    level = rng.uniform(0.12, 0.5)
    amplitude = rng.uniform(0.12, 0.3)
    kinds = rng.choice(BACKGROUNDS, size=rng.integers(1, 3), replace=False)
    texture = np.zeros((size, size), np.float32)
    yy, xx = _grid(size)
    for kind in kinds:
        if kind == "smooth":
            grid = int(rng.integers(2, 8))
            coarse = torch.from_numpy(rng.uniform(-1, 1, (1, 1, grid, grid)).astype(np.float32))
            part = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)[0, 0].numpy()
        elif kind == "grating":
            angle = rng.uniform(0, np.pi)
            cycles = rng.uniform(2.0, 9.0)  # wavelengths of 7..32 px on a 64 px canvas
            phase = 2 * np.pi * (cycles * (xx * np.cos(angle) + yy * np.sin(angle))) + rng.uniform(0, 2 * np.pi)
            sharpness = rng.choice([1.0, 4.0])  # soft sine or near-square stripes
            part = np.tanh(sharpness * np.sin(phase)) / np.tanh(sharpness)
        else:
            part = np.clip(rng.normal(0.0, 0.6, (size, size)), -1, 1)
        texture += part.astype(np.float32)
    texture /= len(kinds)
    return level + amplitude * texture, level


def _fragment(
    source: np.ndarray, rng: np.random.Generator, side: int, threshold: float, tries: int = 8
) -> np.ndarray:
    """A ``side``-pixel crop of ``source``, rotated by a random multiple of 90 degrees.

    Of a few random crops the one closest to half foreground wins: a crop across the other
    object's outline has a shape of its own, while a crop of its filled interior is a plain
    square that no one would mistake for the object.
    """
    h, w = source.shape
    side = min(side, h, w)
    best, best_gap = source[:side, :side], 2.0
    for _ in range(tries):
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = source[y : y + side, x : x + side]
        gap = abs(float((crop > threshold).mean()) - 0.5)
        if gap < best_gap:
            best, best_gap = crop, gap
        if gap < 0.1:
            break
    return np.rot90(best, k=int(rng.integers(0, 4))).copy()


def _free_position(
    rng: np.random.Generator, occupied: np.ndarray, shape: tuple[int, int], footprint: np.ndarray,
    tries: int = 24,
) -> tuple[int, int]:
    """Top-left corner for ``footprint`` that overlaps ``occupied`` least (first of ``tries``
    random corners that overlaps nothing)."""
    size = occupied.shape[0]
    h, w = shape
    best, best_overlap = (0, 0), None
    for _ in range(tries):
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        overlap = int((occupied[y : y + h, x : x + w] & footprint).sum())
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = (y, x), overlap
        if overlap == 0:
            break
    return best


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation, separable: rows, then columns."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            lead = [slice(None)] * 2
            lag = [slice(None)] * 2
            lead[axis], lag[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(lead)] |= out[tuple(lag)]
            grown[tuple(lag)] |= out[tuple(lead)]
        out = grown
    return out


def make_cluttered(
    image: Tensor | np.ndarray,
    rng: np.random.Generator,
    canvas_size: int = 64,
    distractors: Sequence[Tensor | np.ndarray] = (),
    *,
    scale_range: tuple[float, float] = (0.6, 1.6),
    fragment_range: tuple[float, float] = (0.3, 0.5),
    mask_threshold: float = 0.1,
) -> tuple[Tensor, Tensor]:
    """Paste ``image`` into a cluttered canvas; return the canvas and the object's exact mask.

    The object keeps its own intensity pattern, remapped to a range brighter than the
    background's mean; each distractor contributes one fragment drawn with the same remapping,
    placed away from the object when there is room (the object is pasted last, so nothing
    covers it and the mask stays exact).

    Args:
        image: the object, uint8 [H,W] or [1,H,W], bright on dark (MNIST style).
        rng: source of all randomness (``np.random.default_rng((seed, index))`` for
            reproducible random access).
        canvas_size: side of the square output.
        distractors: other images (same format) to cut one fragment from each.
        scale_range: object side as a multiple of its original side.
        fragment_range: fragment side as a fraction of a distractor's side (before scaling).
        mask_threshold: object intensity (0..1, after the contrast stretch and the resize) above
            which a pixel is foreground.

    Returns:
        ``(image uint8 [1,canvas,canvas], mask bool [canvas,canvas])``.
    """
    obj = _to_float_image(image)
    max_scale = canvas_size / max(obj.shape)
    lo_scale, hi_scale = scale_range
    if lo_scale <= 0 or lo_scale > hi_scale:
        raise ValueError(f"scale_range must be 0 < low <= high, got {scale_range}")
    # Log-uniform scale, capped so that the object always fits on the canvas.
    scale = min(float(np.exp(rng.uniform(np.log(lo_scale), np.log(hi_scale)))), max_scale)
    side = max(2, round(max(obj.shape) * scale))
    obj = _resize(obj, side)
    obj_mask = obj > mask_threshold

    canvas, level = _background(rng, canvas_size)
    # Object intensities map 0..1 -> [dark, bright] with dark just above the background level:
    # dim object parts (a sneaker's sole) stay faint against the texture, so the object's extent
    # is not simply "everything brighter than the background".
    bright = rng.uniform(max(level + 0.3, 0.65), 1.0)
    dark = level + rng.uniform(0.0, 0.15)

    # Place the object's bounding box (not its 28x28 frame) anywhere inside the canvas.
    ys, xs = np.nonzero(obj_mask) if obj_mask.any() else (np.array([0, side - 1]), np.array([0, side - 1]))
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    obj, obj_mask = obj[y0:y1, x0:x1], obj_mask[y0:y1, x0:x1]
    top = int(rng.integers(0, canvas_size - obj.shape[0] + 1))
    left = int(rng.integers(0, canvas_size - obj.shape[1] + 1))
    mask = np.zeros((canvas_size, canvas_size), bool)
    mask[top : top + obj.shape[0], left : left + obj.shape[1]] = obj_mask
    occupied = _dilate(mask, radius=2)

    for other in distractors:
        source = _to_float_image(other)
        frag_side = round(max(source.shape) * rng.uniform(*fragment_range))
        frag = _fragment(source, rng, frag_side, mask_threshold)
        frag = _resize(frag, max(2, min(canvas_size, round(frag.shape[0] * scale * rng.uniform(0.8, 1.25)))))
        frag_mask = frag > mask_threshold
        if not frag_mask.any():
            continue
        y, x = _free_position(rng, occupied, frag.shape, frag_mask)
        region = canvas[y : y + frag.shape[0], x : x + frag.shape[1]]
        frag_bright = bright * rng.uniform(0.85, 1.1)
        region[frag_mask] = (dark + (frag_bright - dark) * frag)[frag_mask]
        occupied[y : y + frag.shape[0], x : x + frag.shape[1]] |= frag_mask

    region = canvas[top : top + obj.shape[0], left : left + obj.shape[1]]
    region[obj_mask] = (dark + (bright - dark) * obj)[obj_mask]

    canvas = canvas + rng.normal(0.0, rng.uniform(0.01, 0.05), canvas.shape)
    pixels = np.clip(np.round(canvas * 255.0), 0, 255).astype(np.uint8)
    return torch.from_numpy(pixels)[None], torch.from_numpy(mask)


# The keyword-only options of make_cluttered, which ClutteredDataset passes through.
CLUTTER_OPTIONS = frozenset(
    p.name for p in inspect.signature(make_cluttered).parameters.values() if p.kind is p.KEYWORD_ONLY
)


def best_threshold_iou(image: Tensor | np.ndarray, mask: Tensor | np.ndarray) -> float:
    """IoU with ``mask`` of the best single intensity threshold (either polarity) on ``image``.

    The intensity-only baseline a pseudo-mask has to beat; an oracle, since the threshold is
    chosen per image with the mask in hand.

    Args:
        image: uint8 [H,W] or [1,H,W].
        mask: bool [H,W].
    """
    pixels = np.asarray(image).reshape(-1).astype(np.int64)
    truth = np.asarray(mask).reshape(-1).astype(bool)
    if pixels.size != truth.size:
        raise ValueError(f"image has {pixels.size} pixels, mask {truth.size}")
    fg = np.bincount(pixels[truth], minlength=256)
    bg = np.bincount(pixels[~truth], minlength=256)
    # Prediction "pixel >= t" for t = 0..255, then "pixel < t".
    fg_above, bg_above = fg[::-1].cumsum()[::-1], bg[::-1].cumsum()[::-1]
    total_fg = fg.sum()
    iou_above = fg_above / np.maximum(total_fg + bg_above, 1)
    fg_below, bg_below = total_fg - fg_above, bg.sum() - bg_above
    iou_below = fg_below / np.maximum(total_fg + bg_below, 1)
    return float(max(iou_above.max(), iou_below.max()))


class ClutteredDataset(ImageDataset):
    """Cluttered scenes built on the fly from any dataset of 28x28-style grayscale objects.

    Item ``i`` pastes item ``i`` of ``base`` (its label is the item's label) with fragments of
    ``distractors`` other items of ``base``; it depends only on ``(seed, i)``.

    Args:
        base: a dataset whose items start with ``(image uint8 [1,H,W] or [H,W], label)``.
        canvas_size: side of the generated canvas.
        distractors: fragments per image, each from a different other item of ``base``.
        seed: seed of the generator; the same seed gives the same bytes.
        image_size: side of the returned images (resized from the canvas); None keeps it.
        with_masks: return the object's mask as a third element.
        transform: applied to the image tensor only.
        name: dataset name for ``info`` (default ``cluttered-<base name>``).
        **clutter: keyword arguments of `make_cluttered` (``scale_range``, ...).
    """

    def __init__(
        self,
        base: Dataset,
        *,
        canvas_size: int = 64,
        distractors: int = 4,
        seed: int = 0,
        image_size: int | None = None,
        with_masks: bool = False,
        transform: Callable[[Tensor], Any] | None = None,
        name: str | None = None,
        **clutter: Any,
    ) -> None:
        n = len(base)  # type: ignore[arg-type]
        if n == 0:
            raise ValueError("ClutteredDataset needs a non-empty base dataset")
        if distractors < 0 or (distractors > 0 and n < 2):
            raise ValueError(f"{distractors} distractors need a base of at least 2 items (it has {n})")
        base_info = getattr(base, "info", None)
        if base_info is not None and base_info.in_chans != 1:
            raise ValueError(f"ClutteredDataset needs grayscale objects; {base_info.name} has {base_info.in_chans} channels")
        targets = getattr(base, "targets", None)
        targets = np.asarray([int(base[i][1]) for i in range(n)] if targets is None else targets)
        if base_info is not None:
            names, base_name = base_info.class_names, base_info.name
        else:
            names, base_name = tuple(f"class_{i}" for i in range(int(targets.max()) + 1)), "custom"
        info = DatasetInfo(
            name=name or f"cluttered-{base_name}",
            num_classes=len(names),
            in_chans=1,
            image_size=image_size or canvas_size,
            class_names=tuple(names),
            has_masks=True,
        )
        super().__init__(info, np.arange(n), targets, with_masks=with_masks, transform=transform)
        self.base = base
        self.canvas_size = canvas_size
        self.distractors = distractors
        self.seed = seed
        self.clutter = clutter
        unknown = set(clutter) - CLUTTER_OPTIONS
        if unknown:
            raise TypeError(f"unknown clutter options {sorted(unknown)}; known: {sorted(CLUTTER_OPTIONS)}")

    def _load(self, source_index: int) -> tuple[Tensor, Tensor | None]:
        rng = np.random.default_rng((self.seed, source_index))
        n = len(self.base)  # type: ignore[arg-type]
        # Draw from the other n-1 items: shift indices at or past the object's own.
        others = rng.choice(n - 1, size=min(self.distractors, n - 1), replace=False) if self.distractors else []
        others = [int(j) + (j >= source_index) for j in others]
        image = self.base[source_index][0]
        fragments = [self.base[j][0] for j in others]
        return make_cluttered(image, rng, self.canvas_size, fragments, **self.clutter)
