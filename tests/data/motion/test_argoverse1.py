"""Argoverse 1.1 on small CSVs and a small vector map written in the release's exact format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from motion_files import ARGOVERSE_HEADER, T0, Track, argoverse_scene, track_id, write_argoverse_csv, write_vector_map

from lm4vis.data.base import DatasetNotFoundError
from lm4vis.data.motion import FEATURES, Argoverse1, Argoverse1DataConfig, collate, to_world
from lm4vis.data.motion.vectorize import AGENT, AV, FOCAL, LANE
from lm4vis.data.skips import BadInputError, Skipped

COL = {name: i for i, name in enumerate(FEATURES)}
MAP = "map_files/pruned_argoverse_PIT_10314_vector_map.xml"


def _dataset(root: Path, split: str = "val", **kw) -> Argoverse1:
    return Argoverse1(Argoverse1DataConfig(root=str(root), **kw), split)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_val_item_in_the_agents_frame(tmp_path):
    tracks = argoverse_scene()
    root = tmp_path / "release"  # beside the test's cache folder, not above it
    write_argoverse_csv(root / "val/data/1234.csv", tracks)
    before = _files(root)
    ds = _dataset(root)
    item = ds[0]
    assert ds.info.has_future and not ds.info.has_map and (ds.info.obs_len, ds.info.pred_len) == (20, 30)
    assert item["scene_id"] == 1234 and item["has_future"].item() is True
    assert item["vectors"].dtype == torch.float32 and item["vectors"].shape[-1] == len(FEATURES)
    assert item["polyline_type"].tolist() == [FOCAL, AGENT, AGENT, AV]  # no map: agents only
    # the AGENT drives +x at 10 m/s: in its frame the history lies on the negative x axis ...
    focal = item["vectors"][0][~item["vector_mask"][0]]
    np.testing.assert_allclose(focal[-1, :4], [-1.0, 0.0, 0.0, 0.0], atol=1e-4)
    # ... the future on the positive one, and the frame's inverse gives back the CSV's positions
    np.testing.assert_allclose(item["future"][:, 0], np.arange(1, 31), atol=1e-4)
    world = to_world(item["future"].double(), item["origin"], item["rotation"])
    np.testing.assert_allclose(world, tracks[7].xy[20:], atol=1e-4)
    # the nearest other track is the one seen at steps 5..12 only: 7 vectors, the last ending
    # 0.7 s before the present
    partial = item["vectors"][1][~item["vector_mask"][1]]
    assert len(partial) == 7 and partial[-1, COL["time"]].item() == pytest.approx(-0.7)
    assert _files(root) == before  # nothing written next to the data


def test_test_split_has_no_future(tmp_path):
    write_argoverse_csv(tmp_path / "test_obs/data/77.csv", argoverse_scene(total_steps=20))
    ds = _dataset(tmp_path, "test")
    item = ds[0]
    assert not ds.info.has_future and item["has_future"].item() is False
    assert item["future"].shape == (30, 2) and (item["future"] == 0).all()
    assert (~item["vector_mask"][0]).sum() == 19


def test_row_order_does_not_matter(tmp_path):
    path = write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene())
    lines = path.read_text().splitlines()
    rng = np.random.default_rng(0)
    shuffled = tmp_path / "shuffled"
    (shuffled / "val/data").mkdir(parents=True)
    (shuffled / "val/data/1.csv").write_text("\n".join([lines[0], *rng.permutation(lines[1:])]) + "\n")
    a, b = _dataset(tmp_path, cache=False)[0], _dataset(shuffled, cache=False)[0]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_lanes_from_the_vector_map(tmp_path):
    write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene())
    # The AGENT's last observed position is (2019, 1000); the map has a left-turn lane there
    # and a lane 1 km away.
    write_vector_map(tmp_path / MAP, [
        dict(lane_id=9604854, points=[(2000.0 + 5 * i, 998.0) for i in range(12)], turn_direction="LEFT",
             is_intersection=True, has_traffic_control=True),
        dict(lane_id=9604855, points=[(3000.0, 2000.0), (3010.0, 2000.0)]),
    ])
    ds = _dataset(tmp_path, map_root=str(tmp_path / "map_files"), lane_piece_vectors=9)
    item = ds[0]
    assert ds.info.has_map
    types = item["polyline_type"].tolist()
    assert types.count(LANE) == 2  # 11 vectors in pieces of 9 and 2; the far lane left out
    lane = item["vectors"][types.index(LANE)][~item["vector_mask"][types.index(LANE)]]
    assert (lane[:, COL["turn_left"]] == 1).all() and (lane[:, COL["is_intersection"]] == 1).all()
    assert (lane[:, COL["has_traffic_control"]] == 1).all() and (lane[:, COL["turn_right"]] == 0).all()
    np.testing.assert_allclose(lane[0, [COL["y_start"], COL["y_end"]]], [-2.0, -2.0], atol=1e-4)


def test_processed_scenes_are_cached_outside_the_data(tmp_path, _private_cache):
    write_argoverse_csv(tmp_path / "data_root/val/data/5.csv", argoverse_scene())
    ds = _dataset(tmp_path / "data_root")
    first = ds[0]
    cached = list(_private_cache.rglob("5.npz"))
    assert len(cached) == 1
    # the CSV is not read again: even a broken one is served from the cache
    (tmp_path / "data_root/val/data/5.csv").write_text("garbage\n")
    again = _dataset(tmp_path / "data_root")[0]
    assert all(torch.equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)
    # another option is another cache folder
    with pytest.raises(BadInputError, match="no column"):
        _dataset(tmp_path / "data_root", max_agents=2)[0]


def _bad(edit):
    """A scene writer for the table below: the good scene, its CSV lines rewritten by ``edit``."""
    def write(path: Path) -> None:
        write_argoverse_csv(path, argoverse_scene())
        path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    return write


def _drop_agent_row(step: int):
    stamp = f"{T0 + 0.1 * step:.6f},"
    return lambda lines: [line for line in lines if not (line.startswith(stamp) and ",AGENT," in line)]


SCENE_PROBLEMS = [
    ("nan-coordinates", "on_nan", _bad(edit=lambda ls: [ls[0], ls[1].replace(",1980.0,", ",NaN,"), *ls[2:]])),
    ("nan-coordinates", "on_nan", _bad(edit=lambda ls: [ls[0], ls[1].replace(",1980.0,", ",,"), *ls[2:]])),
    ("no-agent", "on_bad_focal", _bad(edit=lambda ls: [line.replace(",AGENT,", ",OTHERS,") for line in ls])),
    ("several-agents", "on_bad_focal",
     _bad(edit=lambda ls: [line.replace(f"{track_id(100)},OTHERS", f"{track_id(100)},AGENT") for line in ls])),
    ("focal-track-too-short", "on_bad_focal", _bad(edit=_drop_agent_row(3))),
    ("focal-future-incomplete", "on_bad_focal", _bad(edit=_drop_agent_row(40))),
]


@pytest.mark.parametrize("reason, policy, write", SCENE_PROBLEMS,
                         ids=[f"{reason}-{i}" for i, (reason, _, _) in enumerate(SCENE_PROBLEMS)])
def test_bad_scenes_skip_and_count_or_fail(tmp_path, reason, policy, write):
    write(tmp_path / "val/data/3.csv")
    write_argoverse_csv(tmp_path / "val/data/4.csv", argoverse_scene())
    ds = _dataset(tmp_path, **{policy: "skip"})
    marker = ds[0]
    assert isinstance(marker, Skipped) and marker.reason == reason and "3.csv" in marker.detail
    batch = collate([ds[0], ds[1]])
    assert batch["skipped"] == {reason: 1} and batch["vectors"].shape[0] == 1
    with pytest.raises(BadInputError, match=rf"3\.csv.*{policy}='skip'"):
        _dataset(tmp_path, **{policy: "fail"})[0]


@pytest.mark.parametrize("header, missing", [
    ("TIMESTAMP,TRACK_ID,OBJECT_TYPE,X,CITY_NAME", "Y"),
    ("TIMESTAMP,OBJECT_TYPE,X,Y", "TRACK_ID, CITY_NAME"),
    ("", "TIMESTAMP, TRACK_ID, OBJECT_TYPE, X, Y, CITY_NAME"),
])
def test_missing_columns_are_named(tmp_path, header, missing):
    (tmp_path / "val/data").mkdir(parents=True)
    (tmp_path / "val/data/1.csv").write_text(header + "\n")
    with pytest.raises(BadInputError, match=f"no column {missing} .*starts with {ARGOVERSE_HEADER}"):
        _dataset(tmp_path)[0]


def test_unknown_object_type_is_named(tmp_path):
    path = write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene())
    path.write_text(path.read_text().replace(",OTHERS,", ",PEDESTRIAN,", 1))
    with pytest.raises(BadInputError, match="OBJECT_TYPE 'PEDESTRIAN'.*AGENT, AV, OTHERS"):
        _dataset(tmp_path)[0]


def test_more_agents_than_max_agents_keeps_the_nearest(tmp_path):
    tracks = argoverse_scene(others=0)
    for i in range(6):  # parked cars 5, 10, ... 30 m to the left of the AGENT's last position
        tracks[200 + i] = Track("OTHERS", list(range(50)), np.tile([2019.0, 1005.0 + 5 * i], (50, 1)))
    write_argoverse_csv(tmp_path / "val/data/1.csv", tracks)
    item = _dataset(tmp_path, max_agents=4)[0]
    assert item["dropped_agents"] == 4  # 7 others (6 parked + the AV at 20 m), 3 kept
    lateral = [v[~m][-1, COL["y_end"]].item() for v, m in zip(item["vectors"][1:], item["vector_mask"][1:])]
    np.testing.assert_allclose(lateral, [5.0, 10.0, 15.0], atol=1e-4)
    assert collate([item])["skipped"] == {"agents-beyond-max_agents": 1}  # the scene, counted once


def test_files_that_are_no_sequence_are_counted(tmp_path):
    write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene())
    (tmp_path / "val/data/._1.csv").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    ds = _dataset(tmp_path)
    assert len(ds) == 1 and ds.skips.to_dict()["counts"] == {"not-a-sequence-file": 1}


@pytest.mark.parametrize("layout, split, message", [
    ("val/data", "train", "forecasting_train_v1.1.tar.gz"),
    ("val", "val", "forecasting_val_v1.1.tar.gz"),
    ("test/data", "test", r"test_obs/data"),
    ("val/data", "val", "holds no <sequence id>.csv"),
])
def test_missing_split_says_what_to_download(tmp_path, layout, split, message):
    (tmp_path / layout).mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=message):
        _dataset(tmp_path, split)


def test_map_root_without_maps_says_what_to_extract(tmp_path):
    write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene())
    (tmp_path / "map_files").mkdir()
    with pytest.raises(DatasetNotFoundError, match="hd_maps.tar.gz"):
        _dataset(tmp_path, map_root=str(tmp_path / "map_files"))


def test_a_city_without_its_map_is_named(tmp_path):
    write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene(), city="MIA")
    write_vector_map(tmp_path / MAP, [dict(lane_id=1, points=[(0.0, 0.0), (1.0, 0.0)])])
    with pytest.raises(BadInputError, match="pruned_argoverse_MIA_10316_vector_map.xml"):
        _dataset(tmp_path, map_root=str(tmp_path / "map_files"))[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(root=""), "data.root must name"),
    (dict(root="x", on_nan="ignore"), "skip or fail"),
    (dict(root="x", on_bad_focal="drop"), "skip or fail"),
    (dict(root="x", max_agents=0), "max_agents"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Argoverse1DataConfig(**kwargs)


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        _dataset(tmp_path, split="dev")


def test_skips_found_in_workers_reach_the_batch(tmp_path):
    write_argoverse_csv(tmp_path / "val/data/1.csv", argoverse_scene())
    _bad(lambda ls: [line.replace(",AGENT,", ",OTHERS,") for line in ls])(tmp_path / "val/data/2.csv")
    ds = _dataset(tmp_path)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1, collate_fn=ds.collate)
    (batch,) = list(loader)
    assert batch["skipped"] == {"no-agent": 1} and batch["scene_id"].tolist() == [1]
