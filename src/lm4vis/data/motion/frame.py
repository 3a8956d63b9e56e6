"""The focal agent's frame: origin at its last observed position, x along its heading.

Every motion item is expressed in this frame (VectorNet's normalisation), so a model never sees
where in a city a scene is or which way its map's x axis points. `to_local` and `to_world` are
each other's inverse and work on numpy arrays and torch tensors alike, batched: forecasts go
back to city coordinates for a leaderboard submission with the ``origin`` and ``rotation``
every item carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from torch import Tensor

Array = TypeVar("Array", np.ndarray, Tensor)


def to_local(xy: Array, origin: Array, rotation: Array) -> Array:
    """World -> focal frame: ``(xy - origin) @ rotation``.

    Args:
        xy: (..., N, 2) world positions.
        origin: (..., 2) frame origins; leading dims broadcast against ``xy``'s.
        rotation: (..., 2, 2) whose columns are the frame's x (heading) and y (left) axes in
            world coordinates. For forecasts (B, K, T, 2) pass ``origin[:, None]`` and
            ``rotation[:, None]``.
    """
    return (xy - origin[..., None, :]) @ rotation


def to_world(xy: Array, origin: Array, rotation: Array) -> Array:
    """Focal frame -> world, the inverse of `to_local` (a rotation's inverse is its transpose).

    Args:
        xy: (..., N, 2) positions in the focal frame.
        origin, rotation: as for `to_local`.
    """
    return xy @ rotation.swapaxes(-1, -2) + origin[..., None, :]


def rotation_of(heading: float) -> np.ndarray:
    """(2, 2) float64 whose columns are the unit heading vector and its left normal."""
    c, s = np.cos(heading), np.sin(heading)
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class FocalFrame:
    """A focal frame in world coordinates.

    Args:
        origin: (2,) float64, the focal agent's last observed world position.
        rotation: (2, 2) float64, see `to_local`.
    """

    origin: np.ndarray
    rotation: np.ndarray

    @property
    def heading(self) -> float:
        return float(np.arctan2(self.rotation[1, 0], self.rotation[0, 0]))

    def to_local(self, xy: np.ndarray) -> np.ndarray:
        return to_local(np.asarray(xy, np.float64), self.origin, self.rotation)

    def to_world(self, xy: np.ndarray) -> np.ndarray:
        return to_world(np.asarray(xy, np.float64), self.origin, self.rotation)


def focal_frame(track: np.ndarray, min_distance: float) -> FocalFrame:
    """The frame of an observed track: origin at its last point, x along its heading.

    The heading is the direction from the most recent earlier point at least ``min_distance``
    away to the last point. At speed that is the last observed displacement; a slow agent's
    single-step displacement is mostly sensor jitter, so the look-back spans enough motion to
    point somewhere real. An agent that moved less than ``min_distance`` over the whole window
    has no observable heading: its frame keeps the world axes (deterministic, rather than a
    direction fitted to noise).

    Args:
        track: (T, 2) world positions at the observed steps, oldest first, all finite.
        min_distance: metres of travel that make a direction trustworthy.
    """
    track = np.asarray(track, np.float64)
    if track.ndim != 2 or track.shape[1] != 2 or len(track) == 0:
        raise ValueError(f"focal_frame needs a (T, 2) track, got shape {track.shape}")
    if not np.isfinite(track).all():
        raise ValueError("focal_frame needs finite positions; drop unobserved steps first")
    origin = track[-1]
    far = np.flatnonzero(np.linalg.norm(track[:-1] - origin, axis=1) >= min_distance)
    if far.size == 0:
        return FocalFrame(origin, np.eye(2))
    dx, dy = origin - track[far[-1]]
    return FocalFrame(origin, rotation_of(np.arctan2(dy, dx)))


__all__ = ["FocalFrame", "focal_frame", "rotation_of", "to_local", "to_world"]
