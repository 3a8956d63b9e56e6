"""Point-cloud datasets: ModelNet40 (HDF5 and resampled releases), ScanObjectNN, users' own
shape folders, and the generated ``shapes3d``.

    from lm4vis.data.points import build_point_dataset, collate_points, POINTBERT_AUGMENT
    ds = build_point_dataset("shapes3d", split="train", augment=POINTBERT_AUGMENT, num_points=1024)
    item = ds[0]          # {"points": float32 (1024, 3), "label": int64 (), "mask": bool (1024,)}
    ds.info               # PointCloudInfo(name, num_classes, class_names, num_points, channels, ...)
    ds.skips.to_dict()    # bad input counted while indexing
    loader = DataLoader(ds, batch_size=32, collate_fn=collate_points)

Every builder is ``builder(split, root, **options)`` and returns a `PointCloudDataset`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .arrays import ArrayCloudDataset
from .base import (NORMALS, XYZ, BadInputPolicy, PointCloudDataset, PointCloudInfo, collate_points,
                   fit_num_points)
from .cached import CachedCloudDataset, Source
from .folder import build_point_folder
from .io import CloudReadError, read_off, read_ply, sample_surface
from .modelnet import build_modelnet40_h5, build_modelnet40_resampled
from .scanobjectnn import build_scanobjectnn
from .shapes3d import Shapes3D, Shapes3DConfig, build_shapes3d
from .transforms import POINTBERT_AUGMENT, PointAugment, normalize_unit_sphere


@dataclass(frozen=True)
class PointDatasetSpec:
    """One point-cloud dataset, for the engine's registry.

    Args:
        builder: ``builder(split, root, **options) -> PointCloudDataset``.
        needs_root: ``root`` must be given (a downloaded release or users' files).
        splits: the splits it has.
        description: one line for listings.
    """

    builder: Callable[..., PointCloudDataset]
    needs_root: bool
    splits: tuple[str, ...]
    description: str


POINT_DATASETS: dict[str, PointDatasetSpec] = {
    "shapes3d": PointDatasetSpec(build_shapes3d, False, ("train", "val", "test"),
                                 "generated surfaces, 14 classes, partial views, outliers, object masks"),
    "modelnet40-h5": PointDatasetSpec(build_modelnet40_h5, True, ("train", "test"),
                                      "PointNet's modelnet40_ply_hdf5_2048/ (2048 points, 40 classes)"),
    "modelnet40-resampled": PointDatasetSpec(build_modelnet40_resampled, True, ("train", "test"),
                                             "PointNet++'s modelnet40_normal_resampled/ (10k points + normals)"),
    "scanobjectnn": PointDatasetSpec(build_scanobjectnn, True, ("train", "test"),
                                     "ScanObjectNN h5_files, variant obj_only / obj_bg / pb_t50_rs, 15 classes"),
    "point-folder": PointDatasetSpec(build_point_folder, True, ("train", "val", "test", "all"),
                                     "root/<class>/[train|test/]*.ply|off|npy"),
}


def build_point_dataset(name: str, split: str = "train", root: str | Path | None = None,
                        **options: Any) -> PointCloudDataset:
    """The point-cloud dataset ``name``.

    Args:
        name: a key of `POINT_DATASETS`.
        split: one of the dataset's splits.
        root: its folder, for datasets that read files.
        **options: the builder's options (``num_points``, ``augment``, ``policy``, ...).
    """
    if name not in POINT_DATASETS:
        raise ValueError(f"unknown point dataset {name!r}; choose one of {', '.join(POINT_DATASETS)}")
    return POINT_DATASETS[name].builder(split, root, **options)


__all__ = [
    "POINT_DATASETS", "PointDatasetSpec", "build_point_dataset", "PointCloudDataset", "PointCloudInfo",
    "BadInputPolicy", "ArrayCloudDataset", "CachedCloudDataset", "Source", "Shapes3D", "Shapes3DConfig",
    "PointAugment", "POINTBERT_AUGMENT", "collate_points", "normalize_unit_sphere", "fit_num_points",
    "build_shapes3d", "build_modelnet40_h5", "build_modelnet40_resampled", "build_scanobjectnn",
    "build_point_folder", "CloudReadError", "read_off", "read_ply", "sample_surface", "XYZ", "NORMALS",
]
