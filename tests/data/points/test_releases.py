"""Each release loader on tiny files written in its real layout, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.data.base import DatasetNotFoundError
from lm4vis.data.points import (POINT_DATASETS, BadInputPolicy, PointAugment, build_point_dataset,
                                collate_points)
from lm4vis.data.skips import BadInputError, Skipped

from .conftest import (MODELNET40, RESAMPLED_IDS, cloud, tree, write_h5, write_modelnet40_h5,
                       write_modelnet40_resampled, write_point_folder, write_ply, write_resampled_shape,
                       write_scanobjectnn)


def check_items(ds, num_points: int, num_channels: int, has_masks: bool) -> None:
    """What every point dataset promises of its items."""
    assert ds.info.num_points == num_points and ds.info.num_channels == num_channels
    assert ds.info.has_masks == has_masks
    assert len(ds) > 0
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == ({"points", "label", "mask"} if has_masks else {"points", "label"})
        assert item["points"].shape == (num_points, num_channels) and item["points"].dtype == torch.float32
        assert item["label"].shape == () and item["label"].dtype == torch.long
        assert 0 <= int(item["label"]) < ds.info.num_classes
        assert int(item["label"]) == ds.targets[i]
        assert torch.isfinite(item["points"]).all()
        if has_masks:
            assert item["mask"].shape == (num_points,) and item["mask"].dtype == torch.bool
    batch = collate_points([ds[0], ds[len(ds) - 1]])
    assert batch["points"].shape == (2, num_points, num_channels) and batch["skipped"] == {}


# -- modelnet40-h5 ------------------------------------------------------------------------------
@pytest.mark.parametrize("split, clouds", [("train", 7), ("test", 3)])
@pytest.mark.parametrize("num_points, use_normals", [(64, False), (40, False), (64, True)])
def test_modelnet40_h5(tmp_path, split, clouds, num_points, use_normals):
    folder = write_modelnet40_h5(tmp_path, {"train": [4, 3], "test": [3]}, points=64)
    ds = build_point_dataset("modelnet40-h5", split, tmp_path, num_points=num_points, use_normals=use_normals)
    assert len(ds) == clouds and ds.info.class_names == tuple(MODELNET40)
    check_items(ds, num_points, 6 if use_normals else 3, has_masks=False)
    import h5py

    with h5py.File(folder / f"ply_data_{split}0.h5") as f:
        stored, labels = np.asarray(f["data"]), np.asarray(f["label"]).reshape(-1)
    first = ds[0]["points"].numpy()
    assert int(ds[0]["label"]) == labels[0]
    if num_points == 64:  # all points, in the stored order
        np.testing.assert_array_equal(first[:, :3], stored[0])
    else:  # an FPS subset of the stored points, starting at point 0
        assert (first[0, :3] == stored[0, 0]).all()
        assert {tuple(p) for p in first[:, :3]} <= {tuple(p) for p in stored[0]}


def test_modelnet40_h5_accepts_the_folder_itself_or_its_parent(tmp_path):
    folder = write_modelnet40_h5(tmp_path, {"train": [2], "test": [2]})
    assert len(build_point_dataset("modelnet40-h5", "train", folder)) == len(build_point_dataset("modelnet40-h5", "train", tmp_path))


@pytest.mark.parametrize("drop, match", [
    ("label", r"keys \['data', 'faceId', 'normal'\] found, \['data', 'label'\] wanted \(missing \['label'\]\)"),
    ("data", r"missing \['data'\]"),
])
def test_h5_without_expected_keys_names_found_and_wanted(tmp_path, drop, match):
    folder = write_modelnet40_h5(tmp_path, {"train": [2], "test": [2]})
    import h5py

    with h5py.File(folder / "ply_data_train0.h5", "a") as f:
        del f[drop]
    with pytest.raises(BadInputError, match=match):
        build_point_dataset("modelnet40-h5", "train", folder)


@pytest.mark.parametrize("missing, match", [
    ("train_files.txt", r"missing .*train_files.txt; the release folder .* should contain shape_names.txt, train_files.txt"),
    ("shape_names.txt", r"missing .*shape_names.txt"),
    ("ply_data_train0.h5", r"lists data/modelnet40_ply_hdf5_2048/ply_data_train0.h5, but .* is missing"),
])
def test_modelnet40_h5_missing_files_are_named(tmp_path, missing, match):
    folder = write_modelnet40_h5(tmp_path, {"train": [2], "test": [2]})
    (folder / missing).unlink()
    with pytest.raises(DatasetNotFoundError, match=match):
        build_point_dataset("modelnet40-h5", "train", folder)


@pytest.mark.parametrize("policy, expect", [("skip", 1), ("fail", BadInputError)])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_h5_nonfinite_clouds_skipped_and_counted_or_fail(tmp_path, policy, expect, bad):
    folder = write_modelnet40_h5(tmp_path, {"train": [3], "test": [2]})
    import h5py

    with h5py.File(folder / "ply_data_train0.h5", "a") as f:
        data = np.asarray(f["data"])
        data[1, 5, 2] = bad
        f["data"][...] = data
    build = lambda: build_point_dataset("modelnet40-h5", "train", folder, policy=BadInputPolicy(nonfinite=policy))  # noqa: E731
    if expect is BadInputError:
        with pytest.raises(BadInputError, match=r"ply_data_train0.h5\[1\]: NaN/Inf coordinates"):
            build()
        return
    ds = build()
    assert len(ds) == 2 and ds.skips.counts == {"nonfinite-coordinates": expect}
    assert ds.targets.tolist() == [0, 2]  # cloud 1 is the one left out


def test_h5_short_clouds_resampled_and_counted_or_fail(tmp_path):
    write_modelnet40_h5(tmp_path, {"train": [3], "test": [2]}, points=32)
    ds = build_point_dataset("modelnet40-h5", "train", tmp_path, num_points=50)
    assert ds.skips.counts == {"short-cloud-resampled": 3}
    item = ds[0]["points"].numpy()
    assert item.shape == (50, 3) and len({tuple(p) for p in item}) == 32  # every point, plus repeats
    np.testing.assert_array_equal(ds[0]["points"], item)  # the same repeats every time
    with pytest.raises(BadInputError, match=r"clouds of 32 points, 50 asked; ask num_points <= 32"):
        build_point_dataset("modelnet40-h5", "train", tmp_path, num_points=50,
                            policy=BadInputPolicy(short_cloud="fail"))


# -- modelnet40-resampled -----------------------------------------------------------------------
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("num_points, use_normals", [(128, False), (64, True)])
def test_modelnet40_resampled(tmp_path, split, num_points, use_normals):
    folder = write_modelnet40_resampled(tmp_path)
    before = tree(tmp_path / "modelnet40_normal_resampled")
    ds = build_point_dataset("modelnet40-resampled", split, tmp_path, num_points=num_points, use_normals=use_normals)
    check_items(ds, num_points, 6 if use_normals else 3, has_masks=False)
    # night_stand_0001 is a night_stand: the class is the id without its last _NNNN.
    expected = sorted(MODELNET40.index(i.rpartition("_")[0]) for i in RESAMPLED_IDS[split])
    assert sorted(ds.targets.tolist()) == expected
    assert tree(folder) == before  # nothing written next to the data
    points = ds[0]["points"].numpy()
    assert np.abs(np.linalg.norm(points[:, :3], axis=1).max() - 1) < 1e-5  # pc_normalize
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == len(RESAMPLED_IDS[split])


def test_modelnet40_resampled_reads_its_cache_the_second_time(tmp_path, monkeypatch):
    write_modelnet40_resampled(tmp_path)
    first = build_point_dataset("modelnet40-resampled", "train", tmp_path, num_points=100)
    from lm4vis.data.points import modelnet

    def no_reading(*args, **kwargs):
        raise AssertionError("a cached source was read again")

    monkeypatch.setattr(modelnet, "read_text_cloud", no_reading)
    second = build_point_dataset("modelnet40-resampled", "train", tmp_path, num_points=100)
    for i in range(len(first)):
        torch.testing.assert_close(first[i]["points"], second[i]["points"], rtol=0, atol=0)


def test_resampled_cache_key_follows_num_points(tmp_path):
    write_modelnet40_resampled(tmp_path)
    a = build_point_dataset("modelnet40-resampled", "test", tmp_path, num_points=64)
    b = build_point_dataset("modelnet40-resampled", "test", tmp_path, num_points=32)
    assert a.cache != b.cache and b[0]["points"].shape == (32, 3)


def test_resampled_missing_split_file_names_path_and_contents(tmp_path):
    folder = write_modelnet40_resampled(tmp_path)
    (folder / "modelnet40_test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing .*modelnet40_test.txt; the release folder .* "
                                                   r"should contain modelnet40_shape_names.txt, modelnet40_train.txt"):
        build_point_dataset("modelnet40-resampled", "test", folder)


@pytest.mark.parametrize("policy", ["skip", "fail"])
def test_resampled_bad_files_skipped_and_counted_or_fail(tmp_path, policy):
    folder = write_modelnet40_resampled(tmp_path)
    rows = np.ones((300, 6))
    rows[7, 0] = np.nan
    write_resampled_shape(folder, "airplane_0002", rows)
    (folder / "xbox" / "xbox_0001.txt").write_text("1,2,3,oops,5,6\n")
    (folder / "night_stand" / "night_stand_0002.txt").unlink()
    build = lambda: build_point_dataset("modelnet40-resampled", "train", folder, num_points=64,  # noqa: E731
                                        policy=BadInputPolicy(nonfinite=policy, unreadable=policy))
    if policy == "fail":
        with pytest.raises(BadInputError, match="airplane/airplane_0002.txt: NaN/Inf coordinates"):
            build()
        return
    ds = build()
    assert len(ds) == 2
    assert ds.skips.counts == {"nonfinite-coordinates": 1, "unreadable-txt": 2}
    assert sorted(ds.targets.tolist()) == [0, MODELNET40.index("night_stand")]


def test_resampled_short_file_resampled_and_counted(tmp_path):
    folder = write_modelnet40_resampled(tmp_path, rows=300)
    write_resampled_shape(folder, "airplane_0627", np.ones((20, 6)) * np.arange(20)[:, None])
    ds = build_point_dataset("modelnet40-resampled", "test", folder, num_points=64)
    assert ds.skips.counts == {"short-cloud-resampled": 1}
    assert len(ds) == 2 and all(ds[i]["points"].shape == (64, 3) for i in range(2))
    with pytest.raises(BadInputError, match="20 points, 64 asked"):
        build_point_dataset("modelnet40-resampled", "test", folder, num_points=64,
                            policy=BadInputPolicy(short_cloud="fail"))


# -- scanobjectnn --------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["obj_only", "obj_bg", "pb_t50_rs"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_scanobjectnn_variants(tmp_path, variant, split):
    write_scanobjectnn(tmp_path, clouds=6, points=64)
    ds = build_point_dataset("scanobjectnn", split, tmp_path, variant=variant)
    check_items(ds, 64, 3, has_masks=True)
    assert ds.info.num_classes == 15 and ds.info.class_names[0] == "bag"
    folder = "main_split_nobg" if variant == "obj_only" else "main_split"
    suffix = "_augmentedrot_scale75" if variant == "pb_t50_rs" else ""
    import h5py

    with h5py.File(tmp_path / folder / f"{'training' if split == 'train' else 'test'}_objectdataset{suffix}.h5") as f:
        data, mask = np.asarray(f["data"]), np.asarray(f["mask"])
    np.testing.assert_array_equal(ds[2]["points"].numpy(), data[2])
    np.testing.assert_array_equal(ds[2]["mask"].numpy(), mask[2] != -1)  # -1 = background
    assert ds[2]["mask"].all() == (variant == "obj_only")


def test_scanobjectnn_inside_the_zips_h5_files_folder_and_without_mask(tmp_path):
    write_h5(tmp_path / "h5_files" / "main_split" / "test_objectdataset.h5",
             data=np.zeros((2, 16, 3), np.float32), label=np.array([[3], [4]], np.int64))
    ds = build_point_dataset("scanobjectnn", "test", tmp_path, variant="obj_bg")
    assert not ds.info.has_masks and "mask" not in ds[0] and ds.targets.tolist() == [3, 4]


def test_scanobjectnn_mask_follows_fps_rows(tmp_path):
    write_scanobjectnn(tmp_path, clouds=2, points=64)
    full = build_point_dataset("scanobjectnn", "test", tmp_path)
    sub = build_point_dataset("scanobjectnn", "test", tmp_path, num_points=16)
    lookup = {tuple(p.tolist()): bool(m) for p, m in zip(full[1]["points"], full[1]["mask"])}
    assert [lookup[tuple(p.tolist())] for p in sub[1]["points"]] == sub[1]["mask"].tolist()


def test_scanobjectnn_missing_file_names_the_layout(tmp_path):
    write_scanobjectnn(tmp_path)
    (tmp_path / "main_split" / "test_objectdataset_augmentedrot_scale75.h5").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing .*test_objectdataset_augmentedrot_scale75.h5; .* should hold main_split/"):
        build_point_dataset("scanobjectnn", "test", tmp_path, variant="pb_t50_rs")


def test_scanobjectnn_unknown_variant():
    with pytest.raises(ValueError, match="obj_only, obj_bg, pb_t50_rs"):
        build_point_dataset("scanobjectnn", "train", "/nowhere", variant="pb_t25")


# -- point-folder --------------------------------------------------------------------------------
@pytest.mark.parametrize("split_dirs, split, count", [
    (False, "all", 30), (False, "train", 24), (False, "val", 3), (False, "test", 3),  # 80/10/10
    (True, "all", 30), (True, "train", 18), (True, "val", 3), (True, "test", 9),  # train/ 90/10, test/
])
def test_point_folder_layouts_and_splits(tmp_path, split_dirs, split, count):
    root = write_point_folder(tmp_path / "shapes", per_class=10, split_dirs=split_dirs)
    before = tree(root)
    ds = build_point_dataset("point-folder", split, root, num_points=64)
    assert len(ds) == count and ds.info.class_names == ("blob", "cube", "rod")
    assert np.bincount(ds.targets).tolist() == [count // 3] * 3
    check_items(ds, 64, 3, has_masks=False)
    assert tree(root) == before


def test_point_folder_without_shapes_says_what_it_looked_for(tmp_path):
    (tmp_path / "shapes" / "cube").mkdir(parents=True)
    (tmp_path / "shapes" / "cube" / "notes.txt").write_text("not a shape")
    with pytest.raises(DatasetNotFoundError, match=r"no .off/.ply/.npy files for split 'train'"):
        build_point_dataset("point-folder", "train", tmp_path / "shapes")


def test_point_folder_splits_are_disjoint(tmp_path):
    root = write_point_folder(tmp_path / "shapes", per_class=10)
    names = {s: {ds.sources[i].name for i in ds.indices} for s in ("train", "val", "test")
             for ds in [build_point_dataset("point-folder", s, root, num_points=32)]}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    assert len(names["train"] | names["val"] | names["test"]) == 30


def test_point_folder_meshes_are_sampled_on_their_surface(tmp_path):
    root = write_point_folder(tmp_path / "shapes", per_class=2)
    ds = build_point_dataset("point-folder", "all", root, num_points=200, normalize=False)
    for i in range(len(ds)):
        src = ds.sources[ds.indices[i]]
        if src.name.startswith("cube"):
            p = ds[i]["points"].numpy()
            side = np.abs(p).max()  # cube_0000 has half side 1, cube_0001 1.1
            assert np.allclose(np.abs(p).max(axis=1), side, atol=1e-5)  # on a face, not inside
            assert len(np.unique(p.round(4), axis=0)) == 200  # 200 distinct surface points, not 8 corners


@pytest.mark.parametrize("policy", ["skip", "fail"])
@pytest.mark.parametrize("name, content, reason", [
    ("blob/broken.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\nend_header\n\x00",
     "unreadable-ply"),
    ("blob/not_a_ply.ply", b"hello", "unreadable-ply"),
    ("cube/bad.off", b"OFF\n3 1 0\n0 0 0\n1 1\n", "unreadable-off"),
    ("rod/pickled.npy", None, "unreadable-npy"),
])
def test_point_folder_unreadable_files_skipped_and_counted_or_fail(tmp_path, policy, name, content, reason):
    root = write_point_folder(tmp_path / "shapes", per_class=2)
    path = root / name
    if content is None:  # an object array: loading it would need pickle, which is never allowed
        np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(content)
    build = lambda: build_point_dataset("point-folder", "all", root, num_points=32,  # noqa: E731
                                        policy=BadInputPolicy(unreadable=policy))
    if policy == "fail":
        with pytest.raises(BadInputError, match=name.split("/")[1]):
            build()
        return
    ds = build()
    assert len(ds) == 6 and ds.skips.counts == {reason: 1}
    assert ds.skips.examples[reason][0].startswith(name)


def test_point_folder_nan_cloud_skipped(tmp_path):
    root = write_point_folder(tmp_path / "shapes", per_class=2)
    points = cloud(np.random.default_rng(1), 50)
    points[3, 1] = np.nan
    write_ply(root / "blob" / "nan.ply", points, text=True)
    ds = build_point_dataset("point-folder", "all", root, num_points=32)
    assert len(ds) == 6 and ds.skips.counts == {"nonfinite-coordinates": 1}


def test_point_folder_cleared_cache_is_prepared_again_or_skipped(tmp_path):
    root = write_point_folder(tmp_path / "shapes", per_class=2)
    ds = build_point_dataset("point-folder", "all", root, num_points=32)
    want = ds[0]["points"]
    for f in ds.cache.glob("*.npy"):
        f.unlink()
    torch.testing.assert_close(ds[0]["points"], want, rtol=0, atol=0)  # prepared again, identically
    src = ds.sources[ds.indices[1]]
    ds.cache_path(ds.indices[1]).unlink(missing_ok=True)
    src.path.write_bytes(b"garbage")  # and now that file is bad: a marker, for the collate to count
    marker = ds[1]
    assert isinstance(marker, Skipped) and marker.reason.startswith("unreadable-")
    batch = collate_points([ds[0], marker, ds[2]])
    assert batch["points"].shape == (2, 32, 3) and batch["skipped"] == {marker.reason: 1}


def test_collate_of_only_skipped_items():
    assert collate_points([Skipped("unreadable-ply", "a.ply")] * 2) == {"skipped": {"unreadable-ply": 2}}


# -- every dataset --------------------------------------------------------------------------------
def test_unknown_dataset_and_split_are_named():
    with pytest.raises(ValueError, match="shapes3d, modelnet40-h5"):
        build_point_dataset("modelnet10")
    with pytest.raises(ValueError, match="has no split 'val'; use one of train, test"):
        build_point_dataset("modelnet40-h5", "val", "/nowhere")


@pytest.mark.parametrize("name", [n for n, spec in POINT_DATASETS.items() if spec.needs_root])
def test_datasets_that_read_files_need_a_root(name):
    with pytest.raises(ValueError, match="needs root="):
        build_point_dataset(name, "train", None)


def test_augmentation_is_drawn_from_seed_epoch_and_index(tmp_path):
    write_modelnet40_h5(tmp_path, {"train": [4], "test": [2]})
    ds = build_point_dataset("modelnet40-h5", "train", tmp_path, augment=PointAugment(rotate=True), seed=3)
    again = build_point_dataset("modelnet40-h5", "train", tmp_path, augment=PointAugment(rotate=True), seed=3)
    other_seed = build_point_dataset("modelnet40-h5", "train", tmp_path, augment=PointAugment(rotate=True), seed=4)
    a = ds[(2, 5)]["points"]
    _ = [again[(i, 0)] for i in range(4)]  # other reads first: the order must not matter
    torch.testing.assert_close(again[(2, 5)]["points"], a, rtol=0, atol=0)
    assert not torch.equal(ds[(2, 6)]["points"], a)  # another epoch, another augmentation
    assert not torch.equal(other_seed[(2, 5)]["points"], a)
    torch.testing.assert_close(ds[2]["points"], ds[(2, 0)]["points"], rtol=0, atol=0)  # int key = epoch 0
