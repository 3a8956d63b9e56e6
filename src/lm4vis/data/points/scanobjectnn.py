"""ScanObjectNN (Uy et al., ICCV 2019): real scans of 15 object classes, as downloaded.

The ``h5_files`` release (``root`` is the folder holding ``main_split/``, or the ``h5_files/``
folder above it)::

    main_split/        training_objectdataset.h5, test_objectdataset.h5          OBJ_BG
                       training_objectdataset_augmentedrot_scale75.h5, test_...  PB_T50_RS
    main_split_nobg/   training_objectdataset.h5, test_objectdataset.h5          OBJ_ONLY

Each file holds ``data`` (M, 2048, 3) float32, ``label`` (M,) and ``mask`` (M, 2048): the
instance label of each point, -1 for background (the ScanObjectNN authors' convention; its
``convert_to_binary_mask`` maps -1 to 0 and everything else to 1). Items carry ``mask`` =
``mask != -1`` wherever the file has the key. Class names are not in the h5 folders; they are
the release's ``shape_names.txt`` order, as Point-BERT ships it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import DatasetNotFoundError
from ..skips import BadInputError
from .arrays import ArrayCloudDataset
from .base import XYZ, BadInputPolicy, PointCloudInfo, check_split
from .io import read_h5
from .modelnet import RELEASE_SPLITS
from .transforms import PointAugment

CLASS_NAMES: tuple[str, ...] = ("bag", "bin", "box", "cabinet", "chair", "desk", "display", "door",
                                "shelf", "table", "bed", "pillow", "sink", "sofa", "toilet")
#: variant -> (folder, file-name suffix)
VARIANTS: dict[str, tuple[str, str]] = {
    "obj_only": ("main_split_nobg", ""),
    "obj_bg": ("main_split", ""),
    "pb_t50_rs": ("main_split", "_augmentedrot_scale75"),
}
BACKGROUND = -1


def build_scanobjectnn(
    split: str = "train",
    root: str | Path | None = None,
    *,
    variant: str = "obj_bg",
    num_points: int | None = None,
    augment: PointAugment | None = None,
    seed: int = 0,
    normalize: bool = False,
    policy: BadInputPolicy = BadInputPolicy(),
) -> ArrayCloudDataset:
    """One ScanObjectNN variant (see the module docstring).

    Args:
        split: ``train`` or ``test``.
        root: the folder holding ``main_split/`` and ``main_split_nobg/`` (or ``h5_files/``).
        variant: ``obj_only``, ``obj_bg`` or ``pb_t50_rs`` (the hardest).
        num_points: points per item: None keeps the stored 2048; fewer are taken by FPS.
        augment: training augmentation, or None.
        seed: the run seed of the augmentation.
        normalize: rescale each cloud into the unit sphere (Point-BERT does not).
        policy: what to do with bad input.
    """
    name = "scanobjectnn"
    check_split(split, RELEASE_SPLITS, name)
    if variant not in VARIANTS:
        raise ValueError(f"scanobjectnn variant={variant!r} is unknown; choose one of {', '.join(VARIANTS)}")
    if root is None:
        raise ValueError("dataset 'scanobjectnn' needs root=<the folder holding main_split/ and main_split_nobg/>")
    base = Path(root).expanduser()
    if not (base / "main_split").is_dir() and (base / "h5_files").is_dir():
        base = base / "h5_files"  # the zip's own top folder
    folder, suffix = VARIANTS[variant]
    path = base / folder / f"{'training' if split == 'train' else 'test'}_objectdataset{suffix}.h5"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"scanobjectnn: missing {path}; {base} should hold main_split/ (training_objectdataset.h5, "
            "test_objectdataset.h5 and their _augmentedrot_scale75 versions) and main_split_nobg/ "
            "(training_objectdataset.h5, test_objectdataset.h5), as unzipped from h5_files.zip"
        )
    arrays = read_h5(path, ("data", "label"), optional=("mask",))
    data = arrays["data"]
    if data.ndim != 3 or data.shape[-1] < 3:
        raise BadInputError(f"{path}: 'data' has shape {data.shape}; want (M, points, 3)")
    labels = arrays["label"].reshape(-1)
    if len(labels) != len(data):
        raise BadInputError(f"{path}: {len(labels)} labels for {len(data)} clouds")
    masks = arrays.get("mask")
    if masks is not None:
        if masks.shape != data.shape[:2]:
            raise BadInputError(f"{path}: 'mask' has shape {masks.shape}, 'data' {data.shape}; want one value per point")
        masks = masks != BACKGROUND
    info = PointCloudInfo(f"{name}-{variant}", len(CLASS_NAMES), CLASS_NAMES, num_points or data.shape[1], XYZ,
                          has_masks=masks is not None)
    origins = [f"{path.name}[{i}]" for i in range(len(data))]
    return ArrayCloudDataset(info, data[..., :3].astype(np.float32, copy=False), labels, masks, origins,
                             augment=augment, seed=seed, normalize=normalize, policy=policy)


__all__ = ["build_scanobjectnn", "CLASS_NAMES", "VARIANTS"]
