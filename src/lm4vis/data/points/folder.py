"""``point-folder``: users' own shapes, one file each, in class folders.

Layouts::

    root/<class>/*.ply|*.off|*.npy              split 80/10/10 per class with a fixed seed
    root/<class>/{train,test}/*.ply|*.off|*.npy the raw ModelNet layout; val is carved from
                                                train (90/10)

Meshes (OFF, PLY with faces) are sampled uniformly on their surface, point clouds (PLY
without faces, ``.npy`` arrays (N, 3+)) reduced by farthest point sampling; x, y, z only.
OFF files are parsed here (with ModelNet's ``OFF<n> <f> <e>`` header quirk); PLY files by
plyfile. Prepared clouds are cached away from the data (see `CachedCloudDataset`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import DatasetNotFoundError, stratified_split
from .base import XYZ, BadInputPolicy, PointCloudInfo, check_split
from .cached import ORDER_SEED, CachedCloudDataset, Source
from .io import CLOUD_EXTENSIONS, read_npy, read_off, read_ply
from .transforms import PointAugment

FOLDER_SPLITS: tuple[str, ...] = ("train", "val", "test", "all")


def read_shape(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(points or vertices ``(n, 3)``, triangles ``(F, 3)`` or None) of one shape file.

    Args:
        path: a ``.off``, ``.ply`` or ``.npy`` file.
    """
    ext = path.suffix.lower()
    if ext == ".off":
        return read_off(path)
    if ext == ".ply":
        vertices, faces = read_ply(path)
        return vertices, faces if len(faces) else None
    return read_npy(path)[:, :3], None


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _shapes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CLOUD_EXTENSIONS)


def build_point_folder(
    split: str = "train",
    root: str | Path | None = None,
    *,
    num_points: int = 1024,
    augment: PointAugment | None = None,
    seed: int = 0,
    normalize: bool = True,
    policy: BadInputPolicy = BadInputPolicy(),
) -> CachedCloudDataset:
    """Shapes in class folders (see the module docstring for layouts and splits).

    Args:
        split: ``train``, ``val``, ``test`` or ``all``.
        root: the folder of class folders.
        num_points: points per item.
        augment: training augmentation, or None.
        seed: the run seed of the augmentation.
        normalize: centre and scale each cloud into the unit sphere.
        policy: what to do with bad input (unreadable files, NaN, short clouds).
    """
    name = "point-folder"
    check_split(split, FOLDER_SPLITS, name)
    if root is None:
        raise ValueError("dataset 'point-folder' needs root=<folder with one folder per class>")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"point-folder: no directory {root}; check the path")
    classes = _subdirs(root)
    if not classes:
        raise DatasetNotFoundError(f"point-folder: no class folders in {root}; expected {root}/<class>/*.ply|off|npy")
    has_splits = any((c / "train").is_dir() for c in classes)

    def collect(part: str | None) -> list[Source]:
        out = []
        for label, cls in enumerate(classes):
            folder = cls / part if part else cls
            if folder.is_dir():
                out += [Source(p, label, str(p.relative_to(root))) for p in _shapes(folder)]
        return out

    def carve(sources: list[Source], fractions: list[float], part: int) -> list[Source]:
        labels = np.asarray([s.label for s in sources], dtype=np.int64)
        keep = stratified_split(labels, fractions, ORDER_SEED)[part]
        return [sources[i] for i in sorted(keep)]

    if split == "all":
        sources = collect("train") + collect("test") if has_splits else collect(None)
    elif not has_splits:
        sources = carve(collect(None), [0.8, 0.1, 0.1], ("train", "val", "test").index(split))
    elif split == "test":
        sources = collect("test")
    else:
        sources = carve(collect("train"), [0.9, 0.1], 0 if split == "train" else 1)
    if not sources:
        raise DatasetNotFoundError(
            f"point-folder: no {'/'.join(CLOUD_EXTENSIONS)} files for split {split!r} under {root}"
        )
    info = PointCloudInfo(name, len(classes), tuple(c.name for c in classes), num_points, XYZ)
    return CachedCloudDataset(info, sources, read_shape, root, augment=augment, seed=seed,
                              normalize=normalize, policy=policy)


__all__ = ["build_point_folder", "read_shape", "FOLDER_SPLITS"]
