"""The file readers (OFF by hand, PLY, npy, text) and mesh-surface sampling."""

from __future__ import annotations

import numpy as np
import pytest

from lm4vis.data.points import CloudReadError, read_off, read_ply, sample_surface
from lm4vis.data.points.io import read_npy, read_text_cloud

from .conftest import CUBE_QUADS, CUBE_TRIANGLES, CUBE_VERTICES, write_off, write_ply


@pytest.mark.parametrize("glued", [False, True])  # ModelNet's "OFF8 6 0" header, and the normal one
def test_read_off_fans_quads_into_triangles(tmp_path, glued):
    vertices, faces = read_off(write_off(tmp_path / "cube.off", CUBE_VERTICES, CUBE_QUADS, glued=glued))
    np.testing.assert_array_equal(vertices, CUBE_VERTICES)
    assert vertices.dtype == np.float32 and faces.shape == (12, 3) and faces.dtype == np.int64
    np.testing.assert_array_equal(faces, CUBE_TRIANGLES)


def test_read_off_skips_comments_and_blank_lines_and_face_colours(tmp_path):
    path = tmp_path / "tri.off"
    path.write_text("OFF\n# a comment\n\n3 1 0\n0 0 0\n1 0 0  # trailing comment\n0 1 0\n3 0 1 2 255 0 0\n")
    vertices, faces = read_off(path)
    assert vertices.shape == (3, 3) and faces.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("PLY\n", "not an OFF file"),
    ("OFF\n", "no 'vertices faces edges' counts"),
    ("OFF\n4 1 0\n0 0 0\n", "promises 4 vertices and 1 faces, the file has 1 data lines"),
    ("OFF\n3 1 0\n0 0 0\n1 0 x\n0 1 0\n3 0 1 2\n", "malformed OFF data"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "outside 0..2"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "is not 'n i1 .. in'"),
])
def test_read_off_bad_files_name_the_problem(tmp_path, text, match):
    path = tmp_path / "bad.off"
    path.write_text(text)
    with pytest.raises(CloudReadError, match=match):
        read_off(path)


def test_read_off_binary_garbage(tmp_path):
    path = tmp_path / "bin.off"
    path.write_bytes(b"OFF\n\xff\xfe\x00")
    with pytest.raises(CloudReadError, match="not a text OFF file"):
        read_off(path)


@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("with_faces", [False, True])
def test_read_ply_ascii_and_binary(tmp_path, text, with_faces):
    path = write_ply(tmp_path / "cube.ply", CUBE_VERTICES, CUBE_TRIANGLES if with_faces else None, text=text)
    vertices, faces = read_ply(path)
    np.testing.assert_array_equal(vertices, CUBE_VERTICES)
    assert faces.shape == ((12, 3) if with_faces else (0, 3))
    if with_faces:
        np.testing.assert_array_equal(faces, CUBE_TRIANGLES)


@pytest.mark.parametrize("content", [b"", b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\n",
                                     b"ply\nformat ascii 1.0\nelement point 1\nproperty float x\nend_header\n1\n"])
def test_read_ply_unreadable(tmp_path, content):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(CloudReadError, match="not a readable PLY file"):
        read_ply(path)


@pytest.mark.parametrize("array, ok", [
    (np.zeros((5, 3)), True), (np.zeros((5, 7), np.float16), True), (np.zeros((5, 2)), False),
    (np.zeros(5), False), (np.array([["a", "b", "c"]]), False),
])
def test_read_npy_wants_numbers_of_shape_n_by_3(tmp_path, array, ok):
    np.save(tmp_path / "a.npy", array)
    if ok:
        out = read_npy(tmp_path / "a.npy")
        assert out.dtype == np.float32 and out.shape == array.shape
    else:
        with pytest.raises(CloudReadError, match="want \\(N, 3\\+\\) numbers"):
            read_npy(tmp_path / "a.npy")


def test_read_npy_never_unpickles(tmp_path):
    np.save(tmp_path / "o.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(CloudReadError, match="not a plain numeric .npy array"):
        read_npy(tmp_path / "o.npy")


def test_read_text_cloud_columns(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("1,2,3,4,5,6\n7,8,9,10,11,12\n")
    assert read_text_cloud(path, 3).tolist() == [[1, 2, 3], [7, 8, 9]]
    with pytest.raises(CloudReadError, match="2 rows of 6 columns; want rows of 7"):
        read_text_cloud(path, 7)


def test_sample_surface_is_uniform_by_area(tmp_path):
    # Two triangles of areas 1 and 3 far apart: a quarter of the points on the first.
    vertices = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [10, 0, 0], [16, 0, 0], [10, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    points = sample_surface(vertices, faces, 20000, np.random.default_rng(0))
    assert points.shape == (20000, 3) and points.dtype == np.float32
    assert abs((points[:, 0] < 5).mean() - 0.25) < 0.02
    first = points[points[:, 0] < 5]
    assert (first[:, 0] / 2 + first[:, 1] <= 1 + 1e-6).all()  # inside the triangle
    assert abs(first[:, 1].mean() - 1 / 3) < 0.02  # the centroid's height: uniform inside


def test_sample_surface_of_a_degenerate_mesh():
    with pytest.raises(CloudReadError, match="no surface area"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 5, np.random.default_rng(0))
