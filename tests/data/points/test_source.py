"""The registered point datasets: typed configs, the one point data source, and bad input
reaching the engine with the fix named (or counted)."""

from __future__ import annotations

import numpy as np
import pytest

from lm4vis.data.points import POINT_DATASETS, PointAugment, scanobjectnn, shapes3d
from lm4vis.data.points.base import SHORT_CLOUD_POLICIES
from lm4vis.data.points_config import (POINT_DATASETS as REGISTERED, SCANOBJECTNN_VARIANTS, SHAPES3D_ROTATIONS,
                                       SHORT_CLOUD, SKIP_OR_FAIL, ModelNet40Config, PointDataConfig,
                                       ScanObjectNNConfig, Shapes3DDataConfig)
from lm4vis.data.skips import POLICIES, BadInputError
from lm4vis.registry import DATASETS
from lm4vis.train.config import ConfigError, load_config
from lm4vis.train.datamodule import build_source, prepare_config

from .conftest import write_h5, write_modelnet40_h5, write_scanobjectnn

POINT_HOST = ["host.kind=point-bert", "host.num_groups=8", "host.group_size=8", "host.depth=1",
              "host.embed_dim=16", "host.num_heads=2"]


def test_every_point_dataset_is_registered_with_its_config():
    assert set(REGISTERED) == set(POINT_DATASETS)
    for name, (config, _) in REGISTERED.items():
        part = DATASETS.get(name)
        assert part.config is config and issubclass(config, PointDataConfig)
        assert part.extras["kind"] == "points" and part.extras["description"]


def test_light_choice_tables_match_the_loaders():
    # The config layer may not import the loaders (torch): a copy of their choices, kept equal here.
    assert SHORT_CLOUD == SHORT_CLOUD_POLICIES and SKIP_OR_FAIL == POLICIES
    assert SCANOBJECTNN_VARIANTS == tuple(scanobjectnn.VARIANTS) and SHAPES3D_ROTATIONS == shapes3d.ROTATIONS


def test_sections_are_typed_by_the_dataset_named():
    cfg = load_config(None, ["data.name=scanobjectnn", "data.variant=pb_t50_rs", "data.num_points=2048",
                             "data.scale=[0.8,1.25]", "data.short_cloud=fail"])
    assert type(cfg.data) is ScanObjectNNConfig and cfg.data.variant == "pb_t50_rs"
    assert cfg.data.val_split == "test" and cfg.data.scale == (0.8, 1.25)
    assert type(load_config(None, ["data.name=modelnet40-resampled"]).data) is ModelNet40Config
    assert type(load_config(None, ["data.name=shapes3d"]).data) is Shapes3DDataConfig
    with pytest.raises(ConfigError) as e:
        load_config(None, ["data.name=modelnet40-h5", "data.variant=obj_bg"])
    assert "data.variant" in str(e.value) and "use_normals" in str(e.value) and "num_points" in str(e.value)


@pytest.mark.parametrize("override, words", [
    ("data.variant=hardest", "choose one of obj_only, obj_bg, pb_t50_rs"),
    ("data.short_cloud=skip", "choose one of resample, fail"),
    ("data.nonfinite=ignore", "choose one of skip, fail"),
    ("data.dropout_max=1.0", "data.dropout_max=1.0 must be in [0, 1)"),
    ("data.scale=[1.5,0.5]", "0 < low <= high"),
    ("data.num_points=0", "data.num_points=0 must be positive"),
])
def test_bad_values_name_the_key_and_choices(override, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_config(None, ["data.name=scanobjectnn", override])


def test_source_describes_shapes3d_and_builds_each_split():
    cfg = load_config(None, [*POINT_HOST, "host.num_classes=14", "data.name=shapes3d", "data.num_points=64",
                             "data.train_per_class=3", "data.val_per_class=2", "data.limit_val=10"])
    source = build_source(cfg)
    assert prepare_config(cfg, source) is cfg  # nothing to estimate
    info = source.info
    assert (info.num_classes, info.num_points, info.inputs_key, info.has_masks) == (14, 64, "points", True)
    assert info.class_names[:2] == ("sphere", "octahedron")
    train, val = source.dataset("train", True), source.dataset("val", False)
    assert (len(train), len(val)) == (42, 10) and source.accepts_epoch
    assert isinstance(train.augment, PointAugment) and train.augment.scale == (2 / 3, 3 / 2)
    assert val.augment is None and train.seed == cfg.seed
    item = train[(5, 1)]
    assert item["points"].shape == (64, 3) and item["mask"].shape == (64,) and int(item["label"]) == 5
    # An epoch changes the augmentation, not the shape behind it.
    assert not np.allclose(train[(5, 1)]["points"], train[(5, 2)]["points"])
    no_aug = build_source(cfg.replace({"data.augment": False}))
    assert no_aug.dataset("train", True).augment is None


def test_analysis_batches_carry_point_masks():
    cfg = load_config(None, [*POINT_HOST, "host.num_classes=14", "data.name=shapes3d", "data.num_points=48"])
    points, masks = next(build_source(cfg).analysis_batches("val", limit=5, batch_size=4))
    assert points.shape == (4, 48, 3) and masks.shape == (4, 48) and str(masks.dtype) == "torch.bool"


def test_a_release_needs_its_root_and_its_splits(tmp_path):
    with pytest.raises(ConfigError, match="reads files: set data.root"):
        build_source(load_config(None, ["data.name=modelnet40-h5"]))
    with pytest.raises(ConfigError, match="no 'val'; set data.val_split=test"):
        build_source(load_config(None, ["data.name=scanobjectnn", f"data.root={tmp_path}", "data.val_split=val"]))


def test_a_missing_split_file_names_the_release_layout(tmp_path):
    cfg = load_config(None, [*POINT_HOST, "host.num_classes=15", "data.name=scanobjectnn", f"data.root={tmp_path}",
                             "data.variant=pb_t50_rs"])
    with pytest.raises(FileNotFoundError, match=r"training_objectdataset_augmentedrot_scale75.h5(.|\n)*main_split"):
        prepare_config(cfg)


def test_h5_without_expected_keys_names_the_keys(tmp_path):
    folder = write_modelnet40_h5(tmp_path, {"train": [3], "test": [2]}, points=32)
    write_h5(folder / "ply_data_train0.h5", points=np.zeros((3, 32, 3), np.float32))
    cfg = load_config(None, [*POINT_HOST, "data.name=modelnet40-h5", f"data.root={tmp_path}", "data.num_points=32"])
    with pytest.raises(BadInputError, match=r"ply_data_train0.h5.*'data'"):
        prepare_config(cfg)


def test_nonfinite_and_short_clouds_are_counted_or_refused(tmp_path):
    write_scanobjectnn(tmp_path, clouds=6, points=32)
    path = tmp_path / "main_split" / "training_objectdataset.h5"
    import h5py

    with h5py.File(path, "r+") as f:
        data = f["data"][...]
        data[2, 5, 1] = np.nan
        f["data"][...] = data
    base = [*POINT_HOST, "host.num_classes=15", "data.name=scanobjectnn", f"data.root={tmp_path}",
            "data.num_points=48"]
    train = build_source(load_config(None, base)).dataset("train", True)
    assert len(train) == 5
    assert train.skips.counts == {"nonfinite-coordinates": 1, "short-cloud-resampled": 5}
    assert train[0]["points"].shape == (48, 3)
    with pytest.raises(BadInputError, match="clouds of 32 points, 48 asked.*short_cloud='resample'"):
        build_source(load_config(None, [*base, "data.short_cloud=fail"])).dataset("train", True)
    with pytest.raises(BadInputError, match=r"training_objectdataset.h5\[2\]: NaN/Inf coordinates"):
        build_source(load_config(None, [*base, "data.nonfinite=fail"])).dataset("train", True)
