"""ModelNet40 in its two common releases, read as downloaded.

``modelnet40-h5``: PointNet's ``modelnet40_ply_hdf5_2048/``::

    shape_names.txt                 40 class names, one per line
    train_files.txt, test_files.txt one .h5 path per line, e.g.
                                    data/modelnet40_ply_hdf5_2048/ply_data_train0.h5
    ply_data_train0..4.h5, ply_data_test0..1.h5
        data   (M, 2048, 3) float32
        label  (M, 1) uint8
        normal (M, 2048, 3) float32 (read with use_normals=True)

  The list files carry the prefix of PointNet's repository layout; the files are found by
  their basename next to the list (a quirk of the release).

``modelnet40-resampled``: PointNet++'s ``modelnet40_normal_resampled/``::

    modelnet40_shape_names.txt      40 class names
    modelnet40_train.txt, modelnet40_test.txt   shape ids, e.g. airplane_0001, night_stand_0001
    <class>/<shape id>.txt          10,000 rows "x,y,z,nx,ny,nz"

  The class of a shape id is the id without its trailing ``_NNNN`` (so ``night_stand_0001``
  is a night_stand: split at the last underscore, not the first). Each file is reduced to
  ``num_points`` by farthest point sampling once and cached (see `CachedCloudDataset`).

Both come in train and test splits only; Point-BERT validates on test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import DatasetNotFoundError
from ..skips import BadInputError
from .arrays import ArrayCloudDataset
from .base import NORMALS, XYZ, BadInputPolicy, PointCloudInfo, check_split
from .cached import CachedCloudDataset, Source
from .io import read_h5, read_text_cloud
from .transforms import PointAugment

RELEASE_SPLITS: tuple[str, ...] = ("train", "test")
H5_FOLDER = "modelnet40_ply_hdf5_2048"
RESAMPLED_FOLDER = "modelnet40_normal_resampled"


def release_root(root: str | Path | None, folder: str, dataset: str) -> Path:
    """``root`` itself or, when given its parent, ``root/folder``.

    Args:
        root: what the user passed.
        folder: the release's folder name.
        dataset: name used in messages.
    """
    if root is None:
        raise ValueError(f"dataset {dataset!r} needs root=<the {folder}/ folder as downloaded>")
    path = Path(root).expanduser()
    if (path / folder).is_dir():
        return path / folder
    if not path.is_dir():
        raise DatasetNotFoundError(f"{dataset}: no directory {path}; pass the {folder}/ folder as downloaded")
    return path


def require_file(path: Path, dataset: str, contents: str) -> Path:
    """``path``, or a `DatasetNotFoundError` naming it and what the folder should hold."""
    if not path.is_file():
        raise DatasetNotFoundError(f"{dataset}: missing {path}; the release folder {path.parent} should contain {contents}")
    return path


def read_names(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def build_modelnet40_h5(
    split: str = "train",
    root: str | Path | None = None,
    *,
    num_points: int | None = None,
    use_normals: bool = False,
    augment: PointAugment | None = None,
    seed: int = 0,
    normalize: bool = False,
    policy: BadInputPolicy = BadInputPolicy(),
) -> ArrayCloudDataset:
    """PointNet's ModelNet40 HDF5 release (see the module docstring).

    Args:
        split: ``train`` or ``test``.
        root: the ``modelnet40_ply_hdf5_2048/`` folder (or its parent).
        num_points: points per item: None keeps the stored 2048; fewer are taken by FPS.
        use_normals: add the ``normal`` channels (nx, ny, nz).
        augment: training augmentation, or None.
        seed: the run seed of the augmentation.
        normalize: rescale each cloud into the unit sphere (the release already is).
        policy: what to do with bad input.
    """
    name = "modelnet40-h5"
    check_split(split, RELEASE_SPLITS, name)
    folder = release_root(root, H5_FOLDER, name)
    contents = "shape_names.txt, train_files.txt, test_files.txt and the ply_data_*.h5 files"
    class_names = read_names(require_file(folder / "shape_names.txt", name, contents))
    listed = read_names(require_file(folder / f"{split}_files.txt", name, contents))
    wanted = ("data", "label", "normal") if use_normals else ("data", "label")
    data, labels, origins = [], [], []
    for line in listed:
        path = folder / Path(line).name  # the list's repository prefix does not exist here
        if not path.is_file():
            raise DatasetNotFoundError(f"{name}: {folder / f'{split}_files.txt'} lists {line}, but {path} "
                                       "is missing; download the whole release again")
        arrays = read_h5(path, wanted)
        clouds = arrays["data"]
        if clouds.ndim != 3 or clouds.shape[-1] != 3:
            raise BadInputError(f"{path}: 'data' has shape {clouds.shape}; want (M, points, 3)")
        if use_normals:
            clouds = np.concatenate([clouds, arrays["normal"]], axis=-1)
        if data and clouds.shape[1] != data[0].shape[1]:
            raise BadInputError(f"{path}: clouds of {clouds.shape[1]} points, {data[0].shape[1]} in the files before")
        label = arrays["label"].reshape(-1)
        if len(label) != len(clouds):
            raise BadInputError(f"{path}: {len(label)} labels for {len(clouds)} clouds")
        data.append(clouds.astype(np.float32, copy=False))
        labels.append(label)
        origins += [f"{path.name}[{i}]" for i in range(len(clouds))]
    if not data:
        raise DatasetNotFoundError(f"{name}: {folder / f'{split}_files.txt'} lists no files")
    info = PointCloudInfo(name, len(class_names), tuple(class_names), num_points or data[0].shape[1],
                          XYZ + NORMALS if use_normals else XYZ)
    return ArrayCloudDataset(info, np.concatenate(data), np.concatenate(labels), None, origins,
                             augment=augment, seed=seed, normalize=normalize, policy=policy)


def shape_class(shape_id: str, path: Path) -> str:
    """``night_stand_0001`` -> ``night_stand``: the id without its trailing ``_NNNN``."""
    name, sep, number = shape_id.rpartition("_")
    if not sep or not name or not number.isdigit():
        raise BadInputError(f"{path}: shape id {shape_id!r} is not <class>_<number>")
    return name


def build_modelnet40_resampled(
    split: str = "train",
    root: str | Path | None = None,
    *,
    num_points: int = 1024,
    use_normals: bool = False,
    augment: PointAugment | None = None,
    seed: int = 0,
    normalize: bool = True,
    policy: BadInputPolicy = BadInputPolicy(),
) -> CachedCloudDataset:
    """PointNet++'s resampled ModelNet40 (see the module docstring); the first build of a
    split prepares its cache (minutes for the full release), later builds only read it.

    Args:
        split: ``train`` or ``test``.
        root: the ``modelnet40_normal_resampled/`` folder (or its parent).
        num_points: points per item, by FPS from the 10,000 (Point-BERT: 1024, 4096, 8192).
        use_normals: keep the nx, ny, nz columns.
        augment: training augmentation, or None.
        seed: the run seed of the augmentation.
        normalize: centre and scale into the unit sphere (Point-BERT's ``pc_normalize``).
        policy: what to do with bad input.
    """
    name = "modelnet40-resampled"
    check_split(split, RELEASE_SPLITS, name)
    folder = release_root(root, RESAMPLED_FOLDER, name)
    contents = ("modelnet40_shape_names.txt, modelnet40_train.txt, modelnet40_test.txt and one "
                "<class>/<shape id>.txt per shape")
    class_names = read_names(require_file(folder / "modelnet40_shape_names.txt", name, contents))
    split_file = require_file(folder / f"modelnet40_{split}.txt", name, contents)
    label_of = {c: i for i, c in enumerate(class_names)}
    sources = []
    for shape_id in read_names(split_file):
        cls = shape_class(shape_id, split_file)
        if cls not in label_of:
            raise BadInputError(f"{split_file}: shape {shape_id} is of class {cls!r}, which "
                                f"modelnet40_shape_names.txt does not list")
        sources.append(Source(folder / cls / f"{shape_id}.txt", label_of[cls], f"{cls}/{shape_id}.txt"))
    channels = XYZ + NORMALS if use_normals else XYZ
    info = PointCloudInfo(name, len(class_names), tuple(class_names), num_points, channels)

    def reader(path: Path) -> tuple[np.ndarray, None]:
        return read_text_cloud(path, columns=len(channels)), None

    return CachedCloudDataset(info, sources, reader, folder, augment=augment, seed=seed,
                              normalize=normalize, policy=policy)


__all__ = ["build_modelnet40_h5", "build_modelnet40_resampled", "release_root", "require_file",
           "read_names", "shape_class", "RELEASE_SPLITS"]
