"""Normalisation and training augmentations of point clouds, as Point-BERT and PointNet++ use them.

Augmentations draw from the generator they are given (the dataset makes one per item and
epoch from ``(seed, epoch, index)``), never from a global one, so an item's augmentation does
not depend on worker count, access order or what the model drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def normalize_unit_sphere(points: np.ndarray) -> np.ndarray:
    """Centre x, y, z on their mean and scale them so the farthest point is at distance 1
    (Point-BERT's ``pc_normalize``); further channels (normals) are left as they are.

    Args:
        points: ``(n, C)`` float array, xyz first.
    """
    out = np.array(points, dtype=np.float32, copy=True)
    xyz = out[:, :3]
    xyz -= xyz.mean(axis=0)
    radius = float(np.sqrt((xyz * xyz).sum(axis=1)).max(initial=0.0))
    if radius > 0:  # a cloud of one repeated point stays at the origin
        xyz /= radius
    return out


def rotation_about_axis(angle: float, axis: int) -> np.ndarray:
    """The 3x3 matrix of a rotation by ``angle`` (radians) about coordinate ``axis``, for row
    vectors (``points @ R``).

    Args:
        angle: radians.
        axis: 0, 1 or 2.
    """
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@dataclass(frozen=True)
class PointAugment:
    """Training augmentations, applied in this order: shuffle the rows, rotate about the up
    axis, scale each axis, translate, jitter, drop points out.

    The defaults are Point-BERT's fine-tuning recipe (``PointcloudScaleAndTranslate``) plus
    the shuffle of the point order its loaders do in training (which moves FPS's start point).
    PointNet++'s adds ``rotate=True``, ``jitter_std=0.01`` and ``dropout_max=0.875``.

    Args:
        shuffle: permute the rows.
        rotate: rotate by a uniform angle about the up axis.
        scale: per-axis scale factors drawn from this range, or None.
        translate: per-axis shift drawn from ``[-translate, translate]``.
        jitter_std: std of Gaussian noise added to x, y, z (0 = none), clipped at ``jitter_clip``.
        jitter_clip: bound of each jitter offset.
        dropout_max: drop a uniform fraction in ``[0, dropout_max)`` of the points; dropped
            points become copies of the first point, so the cloud keeps its size.
    """

    shuffle: bool = True
    rotate: bool = False
    scale: tuple[float, float] | None = (2.0 / 3.0, 3.0 / 2.0)
    translate: float = 0.2
    jitter_std: float = 0.0
    jitter_clip: float = 0.05
    dropout_max: float = 0.0

    def __post_init__(self) -> None:
        if self.scale is not None and not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"augment scale must be 0 < low <= high, got {self.scale}")
        if self.translate < 0 or self.jitter_std < 0 or self.jitter_clip < 0:
            raise ValueError("augment translate, jitter_std and jitter_clip must be >= 0")
        if not 0 <= self.dropout_max < 1:
            raise ValueError(f"augment dropout_max must be in [0, 1), got {self.dropout_max}")

    def __call__(
        self,
        points: np.ndarray,
        mask: np.ndarray | None,
        rng: np.random.Generator,
        up_axis: int = 1,
        normals_at: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Augmented copies of ``points`` ``(n, C)`` and ``mask`` ``(n,)``.

        Args:
            points: float32, xyz first.
            mask: per-point bool mask (follows its rows), or None.
            rng: the item's generator.
            up_axis: the axis ``rotate`` turns about.
            normals_at: column of nx when the cloud has normals (they are rotated and scaled
                as normals are: by the inverse scale, then renormalised).
        """
        out = np.array(points, dtype=np.float32, copy=True)
        n = len(out)
        rows = rng.permutation(n) if self.shuffle else np.arange(n)
        out = out[rows]
        mask = None if mask is None else mask[rows]
        xyz = out[:, :3]
        normals = out[:, normals_at : normals_at + 3] if normals_at is not None else None
        if self.rotate:
            r = rotation_about_axis(rng.uniform(0, 2 * np.pi), up_axis).astype(np.float32)
            xyz[:] = xyz @ r
            if normals is not None:
                normals[:] = normals @ r
        if self.scale is not None:
            factors = rng.uniform(*self.scale, size=3).astype(np.float32)
            xyz *= factors
            if normals is not None:
                normals /= factors
                normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        if self.translate > 0:
            xyz += rng.uniform(-self.translate, self.translate, size=3).astype(np.float32)
        if self.jitter_std > 0:
            xyz += np.clip(rng.normal(0.0, self.jitter_std, size=(n, 3)), -self.jitter_clip,
                           self.jitter_clip).astype(np.float32)
        if self.dropout_max > 0:
            dropped = rng.random(n) <= rng.random() * self.dropout_max
            out[dropped] = out[0]
            if mask is not None:
                mask = mask.copy()
                mask[dropped] = mask[0]
        return out, mask


#: Point-BERT's fine-tuning augmentation (the default `PointAugment`).
POINTBERT_AUGMENT = PointAugment()

__all__ = ["normalize_unit_sphere", "rotation_about_axis", "PointAugment", "POINTBERT_AUGMENT"]
