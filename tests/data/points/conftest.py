"""Tiny releases written in the exact layouts the loaders read (torchvision's approach): the
folder and file names, list files with their quirks, HDF5 keys with the release's dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

MODELNET40 = [  # the release's 40 names, in shape_names.txt order
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone", "cup",
    "curtain", "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard", "lamp", "laptop",
    "mantel", "monitor", "night_stand", "person", "piano", "plant", "radio", "range_hood", "sink", "sofa",
    "stairs", "stool", "table", "tent", "toilet", "tv_stand", "vase", "wardrobe", "xbox",
]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test caches into its own folder, never into the user's ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("LM4VIS_CACHE", str(path))
    return path


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (to prove nothing was written next to the data)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def cloud(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-1, 1, (n, 3)).astype(np.float32)


def write_h5(path: Path, **arrays: np.ndarray) -> Path:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def write_modelnet40_h5(root: Path, per_file: dict[str, list[int]], points: int = 64, seed: int = 0) -> Path:
    """``modelnet40_ply_hdf5_2048/`` with files ``ply_data_<split><i>.h5`` of ``per_file[split][i]``
    clouds; labels cycle through 0..39. List files carry PointNet's ``data/...`` prefix."""
    rng = np.random.default_rng(seed)
    folder = root / "modelnet40_ply_hdf5_2048"
    folder.mkdir(parents=True)
    (folder / "shape_names.txt").write_text("\n".join(MODELNET40) + "\n")
    label = 0
    for split, counts in per_file.items():
        lines = []
        for i, m in enumerate(counts):
            name = f"ply_data_{split}{i}.h5"
            labels = (np.arange(label, label + m) % 40).astype(np.uint8).reshape(m, 1)
            label += m
            write_h5(folder / name, data=rng.uniform(-1, 1, (m, points, 3)).astype(np.float32), label=labels,
                     normal=rng.normal(size=(m, points, 3)).astype(np.float32),
                     faceId=rng.integers(0, 100, (m, points)).astype(np.int32))
            lines.append(f"data/modelnet40_ply_hdf5_2048/{name}")
        (folder / f"{split}_files.txt").write_text("\n".join(lines) + "\n")
    return folder


#: shape ids of the tiny resampled release; night_stand has an underscore in the class name.
RESAMPLED_IDS = {
    "train": ["airplane_0001", "airplane_0002", "night_stand_0001", "night_stand_0002", "xbox_0001"],
    "test": ["airplane_0627", "night_stand_0201"],
}


def write_modelnet40_resampled(root: Path, rows: int = 300, seed: int = 0) -> Path:
    """``modelnet40_normal_resampled/``: ``<class>/<id>.txt`` of ``x,y,z,nx,ny,nz`` rows."""
    rng = np.random.default_rng(seed)
    folder = root / "modelnet40_normal_resampled"
    folder.mkdir(parents=True)
    (folder / "modelnet40_shape_names.txt").write_text("\n".join(MODELNET40) + "\n")
    for split, ids in RESAMPLED_IDS.items():
        (folder / f"modelnet40_{split}.txt").write_text("\n".join(ids) + "\n")
        for shape_id in ids:
            write_resampled_shape(folder, shape_id, np.concatenate([cloud(rng, rows), rng.normal(size=(rows, 3))], 1))
    return folder


def write_resampled_shape(folder: Path, shape_id: str, rows: np.ndarray) -> Path:
    cls = shape_id.rpartition("_")[0]
    path = folder / cls / f"{shape_id}.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n")
    return path


def write_scanobjectnn(root: Path, clouds: int = 6, points: int = 64, seed: int = 0) -> Path:
    """``main_split/`` and ``main_split_nobg/`` with the release's keys: ``data`` float32,
    ``label`` int64 (M,), ``mask`` int64 (M, P) holding -1 on background and an instance id
    on the object."""
    rng = np.random.default_rng(seed)
    files = {"main_split": ["", "_augmentedrot_scale75"], "main_split_nobg": [""]}
    for folder, suffixes in files.items():
        for suffix in suffixes:
            for prefix in ("training", "test"):
                mask = np.where(rng.random((clouds, points)) < 0.3, -1, rng.integers(0, 40, (clouds, 1)))
                if folder == "main_split_nobg":
                    mask[:] = 7  # background filtered out before sampling
                write_h5(root / folder / f"{prefix}_objectdataset{suffix}.h5",
                         data=rng.uniform(-1, 1, (clouds, points, 3)).astype(np.float32),
                         label=(np.arange(clouds) % 15).astype(np.int64), mask=mask.astype(np.int64))
    return root


def write_off(path: Path, vertices: np.ndarray, faces: list[list[int]], glued: bool = False) -> Path:
    """An OFF mesh; ``glued`` writes ModelNet's quirky ``OFF<n> <f> <e>`` header."""
    counts = f"{len(vertices)} {len(faces)} 0"
    head = f"OFF{counts}" if glued else f"OFF\n# written by the tests\n{counts}"
    body = [" ".join(f"{v:.6f}" for v in row) for row in vertices]
    body += [" ".join(str(i) for i in [len(f), *f]) for f in faces]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n" + "\n".join(body) + "\n")
    return path


def write_ply(path: Path, vertices: np.ndarray, faces: list[list[int]] | None = None, text: bool = False) -> Path:
    from plyfile import PlyData, PlyElement

    vertex = np.array([tuple(v) for v in vertices], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    elements = [PlyElement.describe(vertex, "vertex")]
    if faces is not None:
        face = np.array([(f,) for f in faces], dtype=[("vertex_indices", "i4", (3,))])
        elements.append(PlyElement.describe(face, "face"))
    path.parent.mkdir(parents=True, exist_ok=True)
    PlyData(elements, text=text).write(str(path))
    return path


CUBE_VERTICES = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float32)
CUBE_QUADS = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
CUBE_TRIANGLES = [t for q in CUBE_QUADS for t in ([q[0], q[1], q[2]], [q[0], q[2], q[3]])]


def write_point_folder(root: Path, per_class: int = 5, seed: int = 0, split_dirs: bool = False) -> Path:
    """Three classes of shapes, one format each: ``cube`` OFF meshes (half with the glued
    header), ``blob`` binary PLY clouds, ``rod`` .npy arrays with an extra column."""
    rng = np.random.default_rng(seed)
    for i in range(per_class):
        part = ("test" if i % 3 == 2 else "train") if split_dirs else ""
        write_off(root / "cube" / part / f"cube_{i:04d}.off", CUBE_VERTICES * (1 + i / 10), CUBE_QUADS, glued=i % 2 == 0)
        write_ply(root / "blob" / part / f"blob_{i:04d}.ply", cloud(rng, 80))
        rod = np.concatenate([cloud(rng, 90) * [0.1, 1, 0.1], rng.random((90, 1))], axis=1)
        path = root / "rod" / part / f"rod_{i:04d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, rod.astype(np.float64))
    return root
