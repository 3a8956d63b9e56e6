"""Readers of the files point clouds come in, and uniform sampling of mesh surfaces.

Every reader raises `CloudReadError` (or lets `OSError` through) for a file it cannot use, with
the file and the problem in the message; the datasets turn either into a counted skip or a
`BadInputError` by their ``unreadable`` policy. Nothing here unpickles: ``.npy`` files are read
with ``allow_pickle=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..skips import BadInputError

MESH_EXTENSIONS: tuple[str, ...] = (".off", ".ply")
CLOUD_EXTENSIONS: tuple[str, ...] = (".off", ".ply", ".npy")


class CloudReadError(ValueError):
    """A point-cloud or mesh file that cannot be parsed; the message names file and problem."""


def read_h5(path: str | Path, wanted: Sequence[str], optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The ``wanted`` (and present ``optional``) datasets of an HDF5 file, read whole.

    A release file without a wanted key is not a counted skip but an error: the whole split
    would be wrong.

    Args:
        path: the ``.h5`` file.
        wanted: keys that must be there.
        optional: keys read when present.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            found = sorted(f.keys())
            missing = [k for k in wanted if k not in f]
            if missing:
                raise BadInputError(
                    f"{path}: HDF5 keys {found} found, {list(wanted)} wanted (missing {missing}); "
                    "this is not a file of the expected release: download it again"
                )
            return {k: np.asarray(f[k]) for k in (*wanted, *optional) if k in f}
    except OSError as e:
        raise BadInputError(f"{path}: not a readable HDF5 file ({e}); download it again") from e


def _off_counts(lines: list[str], path: str | Path) -> tuple[list[int], int]:
    """(vertex, face[, edge]) counts and the index of the first data line (blank and comment
    lines already dropped).

    ModelNet's quirk: about a sixth of its OFF files glue the counts to the keyword
    (``OFF490 518 0``) instead of putting them on the next line.
    """
    head = lines[0].strip()
    if not head.startswith("OFF"):
        raise CloudReadError(f"{path}: not an OFF file (first line {head[:40]!r})")
    glued = head[3:].split()
    counts, end = (glued, 1) if glued else (lines[1].split() if len(lines) > 1 else [], 2)
    if len(counts) < 2:
        raise CloudReadError(f"{path}: OFF header has no 'vertices faces edges' counts")
    return [int(t) for t in counts], end


def read_off(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(V, 3)`` float32 and triangles ``(F, 3)`` int64 of an OFF mesh, polygons
    fanned into triangles. Handles ModelNet's glued header (``OFF<n> <f> <e>``) and ``#``
    comments.

    Args:
        path: the ``.off`` file.
    """
    try:
        with open(path, encoding="ascii") as f:
            # Blank and comment-only lines carry nothing in OFF.
            lines = [line for line in (raw.split("#", 1)[0] for raw in f) if line.strip()]
    except UnicodeDecodeError as e:
        raise CloudReadError(f"{path}: not a text OFF file ({e})") from e
    if not lines:
        raise CloudReadError(f"{path}: empty file")
    try:
        counts, start = _off_counts(lines, path)
        num_vertices, num_faces = counts[0], counts[1]
        body = lines[start:]
        if len(body) < num_vertices + num_faces:
            raise CloudReadError(
                f"{path}: header promises {num_vertices} vertices and {num_faces} faces, "
                f"the file has {len(body)} data lines"
            )
        vertices = np.array([row.split()[:3] for row in body[:num_vertices]], dtype=np.float32)
        faces = _fan([[int(t) for t in row.split()] for row in body[num_vertices : num_vertices + num_faces]],
                     num_vertices, path)
    except CloudReadError:
        raise
    except ValueError as e:  # int()/float() of a malformed token
        raise CloudReadError(f"{path}: malformed OFF data ({e})") from e
    return vertices.reshape(-1, 3), faces


def _fan(rows: list[list[int]], num_vertices: int, path: str | Path) -> np.ndarray:
    """``n i1 .. in [colour]`` face rows -> triangles (i1, ik, ik+1)."""
    triangles = []
    for row in rows:
        n = row[0]
        if n < 3 or len(row) < n + 1:
            raise CloudReadError(f"{path}: face row {row[:8]} is not 'n i1 .. in'")
        ids = row[1 : n + 1]
        triangles.extend((ids[0], ids[k], ids[k + 1]) for k in range(1, n - 1))
    faces = np.array(triangles, dtype=np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise CloudReadError(f"{path}: a face refers to a vertex outside 0..{num_vertices - 1}")
    return faces


def read_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(V, 3)`` float32 and triangles ``(F, 3)`` int64 (``(0, 3)`` for a point
    cloud) of a PLY file, ASCII or binary.

    Args:
        path: the ``.ply`` file.
    """
    from plyfile import PlyData, PlyParseError

    try:
        ply = PlyData.read(str(path))
        vertex = ply["vertex"]
        vertices = np.stack([np.asarray(vertex[c], dtype=np.float32) for c in ("x", "y", "z")], axis=1)
        faces = np.zeros((0, 3), dtype=np.int64)
        if "face" in ply and ply["face"].count:
            names = [p.name for p in ply["face"].properties]
            key = "vertex_indices" if "vertex_indices" in names else "vertex_index"
            rows = [[len(ids), *ids] for ids in ply["face"][key]]
            faces = _fan(rows, len(vertices), path)
    except CloudReadError:
        raise
    except (PlyParseError, KeyError, ValueError, IndexError, TypeError, UnicodeDecodeError, EOFError) as e:
        raise CloudReadError(f"{path}: not a readable PLY file ({type(e).__name__}: {e})") from e
    return vertices, faces


def read_npy(path: str | Path) -> np.ndarray:
    """Points ``(N, C >= 3)`` float32 of a ``.npy`` array (never unpickled).

    Args:
        path: the ``.npy`` file.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays, or not an .npy at all
        raise CloudReadError(f"{path}: not a plain numeric .npy array ({e})") from e
    if array.ndim != 2 or array.shape[1] < 3 or not np.issubdtype(array.dtype, np.number):
        raise CloudReadError(f"{path}: array of shape {array.shape} and dtype {array.dtype}; want (N, 3+) numbers")
    return array.astype(np.float32)


def read_text_cloud(path: str | Path, columns: int, delimiter: str = ",") -> np.ndarray:
    """Rows of ``delimiter``-separated numbers as ``(N, columns)`` float32 (extra columns dropped).

    Args:
        path: the text file (``x,y,z,nx,ny,nz`` per row in ModelNet's resampled release).
        columns: columns needed.
        delimiter: column separator.
    """
    try:
        array = np.loadtxt(path, delimiter=delimiter, dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise CloudReadError(f"{path}: malformed rows ({e})") from e
    if array.shape[1] < columns or len(array) == 0:
        raise CloudReadError(f"{path}: {array.shape[0]} rows of {array.shape[1]} columns; want rows of {columns}")
    return array[:, :columns]


def sample_surface(vertices: np.ndarray, faces: np.ndarray, num_points: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``num_points`` points uniform on a triangle mesh's surface: triangles picked by area,
    then a uniform point in each (the square-root barycentric rule).

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` vertex indices.
        num_points: points to draw.
        rng: the generator.

    Returns:
        ``(num_points, 3)`` float32.
    """
    tri = vertices[faces].astype(np.float64)  # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = area.sum()
    if not np.isfinite(total) or total <= 0:
        raise CloudReadError("the mesh has no surface area (every face is degenerate)")
    picked = rng.choice(len(tri), size=num_points, p=area / total)
    r1, r2 = np.sqrt(rng.random(num_points)), rng.random(num_points)
    a, b, c = tri[picked, 0], tri[picked, 1], tri[picked, 2]
    out = (1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * c
    return out.astype(np.float32)


__all__ = ["CloudReadError", "MESH_EXTENSIONS", "CLOUD_EXTENSIONS", "read_h5", "read_off", "read_ply",
           "read_npy", "read_text_cloud", "sample_surface"]
