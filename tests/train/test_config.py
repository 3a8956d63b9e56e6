"""Typed run configs: YAML presets with base: inheritance, typed overrides, unknown keys."""

from __future__ import annotations

import pytest
import yaml

from lm4vis.train.config import ConfigError, RunConfig, load_config, load_preset_dict


@pytest.mark.parametrize("override, key, expected", [
    ("optim.lr=1e-3", "optim.lr", 1e-3),
    ("optim.lr=2", "optim.lr", 2.0),                       # int text into a float field
    ("seed=7", "seed", 7),
    ("trainer.progress_bar=false", "trainer.progress_bar", False),
    ("trainer.progress_bar=yes", "trainer.progress_bar", True),
    ("trainer.devices=2", "trainer.devices", 2),           # int | str: a count
    ("trainer.devices=auto", "trainer.devices", "auto"),   # int | str: text
    ("trainer.precision=32", "trainer.precision", "32"),   # text field stays text
    ("trainer.limit_train_batches=0.25", "trainer.limit_train_batches", 0.25),
    ("trainer.limit_train_batches=3", "trainer.limit_train_batches", 3),
    ("data.limit_train=none", "data.limit_train", None),
    ("data.mean=[0.5,0.4,0.3]", "data.mean", [0.5, 0.4, 0.3]),
    ("data.mean=0.5", "data.mean", [0.5]),
    ("block.layers=-2:", "block.layers", "-2:"),
    ("block.layers=-1", "block.layers", -1),
    ("data.randaugment=null", "data.randaugment", None),
    ("host.kwargs.depth=3", "host.kwargs", {"depth": 3}),
])
def test_override_is_typed_by_the_field(override, key, expected):
    over = [override]
    if key == "data.mean":  # mean and std come together
        over.append("data.std=" + ",".join(["0.2"] * len(expected)))
    cfg = load_config(None, over)
    section, _, name = key.rpartition(".")
    value = getattr(getattr(cfg, section) if section else cfg, name)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("override, words", [
    ("optim.lrr=1", ["optim.lrr", "did you mean optim.lr", "weight_decay"]),
    ("nope=1", ["'nope'", "valid keys of the top level", "optim"]),
    ("host.nam=vit", ["host.nam", "valid keys of host", "img_size"]),
    ("optim.lr=fast", ["optim.lr", "number"]),
    ("seed=1.5", ["seed", "integer"]),
    ("trainer.precision=64", ["trainer.precision", "bf16-mixed"]),
    ("block.variant=frozen", ["block.variant", "frozen-lm"]),
    ("data.batch_size=0", ["data.batch_size", "positive"]),
    ("optim.lr", ["section.key=value"]),
])
def test_bad_override_names_the_key(override, words):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("text, words", [
    ("optim:\n  lr: 1.0e-3\n  lr_decay: 0.1\n", ["optim.lr_decay", "valid keys of optim", "warmup_epochs"]),
    ("model:\n  name: vit\n", ["'model'", "valid keys of the top level", "host"]),
    ("data:\n  name: fashion-mnist\n  limit: 10\n", ["data.limit", "limit_train"]),
    ("trainer: 5\n", ["trainer", "mapping"]),
])
def test_unknown_yaml_key_is_an_error(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    for w in words:
        assert w in str(e.value)


def test_base_inheritance_merges_sections(tmp_path):
    (tmp_path / "parent.yaml").write_text(
        "host:\n  img_size: 28\n  kwargs: {depth: 4, embed_dim: 64}\noptim:\n  lr: 1.0e-3\n  weight_decay: 0.1\n")
    (tmp_path / "child.yaml").write_text(
        "base: parent.yaml\nhost:\n  kwargs: {depth: 2}\noptim:\n  lr: 5.0e-4\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (5e-4, 0.1)
    assert cfg.host.kwargs == {"depth": 2, "embed_dim": 64}
    assert cfg.host.img_size == 28 and cfg.data.image_size == 28  # derived from the host


def test_base_loop_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_preset_dict(tmp_path / "a.yaml")


def test_missing_preset_lists_the_presets():
    with pytest.raises(FileNotFoundError) as e:
        load_config("no-such-preset")
    assert "fashion-mnist-vit-tiny" in str(e.value)


def test_yaml_round_trip_and_diff():
    cfg = load_config("fashion-mnist-vit-tiny", ["optim.lr=3e-4", "data.mean=[0.3]", "data.std=[0.4]"])
    again = RunConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg and again.diff(cfg) == []
    other = cfg.replace(["optim.lr=1e-3", "trainer.max_epochs=2"])
    assert other.diff(cfg) == ["optim.lr", "trainer.max_epochs"]


@pytest.mark.parametrize("overrides, words", [
    (["data.image_size=32"], ["data.image_size=32", "host.img_size=28"]),
    (["task.mixup=0.8", "data.batch_size=31"], ["data.batch_size=31", "even"]),
    (["optim.mixup=0.8"], ["task.mixup"]),  # a moved key names its new place
    (["data.mean=[0.5]"], ["data.mean and data.std"]),
])
def test_cross_field_checks(overrides, words):
    with pytest.raises(ConfigError) as e:
        load_config("fashion-mnist-vit-tiny", overrides)
    for w in words:
        assert w in str(e.value)
