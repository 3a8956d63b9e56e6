"""The registered motion datasets: light configs typed by `data.name`, the one data source, and
the loaders' own options reached through it (Argoverse, ETH/UCY leave-one-scene-out)."""

from __future__ import annotations

import numpy as np
import pytest
from motion_files import argoverse_scene, write_argoverse_csv, write_eth_file

from lm4vis.data.configs import (ETH_UCY_SCENES, POLICIES, SIM_LAYOUTS, Argoverse1DataConfig, EthUcyDataConfig,
                                 SimTrafficDataConfig)
from lm4vis.data.motion import LAYOUTS, SCENES, SimTraffic
from lm4vis.data.motion.source import LimitedScenes, MotionSource
from lm4vis.data.skips import POLICIES as LOADER_POLICIES
from lm4vis.registry import DATASETS
from lm4vis.train.config import ConfigError, load_config

BASE = ["host.kind=vectornet", "task.name=forecasting"]


def test_light_constants_are_the_loaders_own():
    assert SIM_LAYOUTS == LAYOUTS and ETH_UCY_SCENES == SCENES and POLICIES == LOADER_POLICIES


@pytest.mark.parametrize("name, cls", [("sim-traffic", SimTrafficDataConfig),
                                       ("argoverse1", Argoverse1DataConfig), ("eth-ucy", EthUcyDataConfig)])
def test_each_dataset_types_its_section(name, cls, tmp_path):
    cfg = load_config(None, [*BASE, f"data.name={name}", f"data.root={tmp_path}", "data.max_agents=5"])
    assert type(cfg.data) is cls and cfg.data.max_agents == 5
    assert DATASETS.get(name).get("kind") == "motion"


def test_simulator_options_reach_the_loader():
    cfg = load_config(None, [*BASE, "data.name=sim-traffic", "data.num_train=40", "data.num_val=12",
                             "data.data_seed=3", "data.layouts=[merge]", "data.other_agents=[1,2]"])
    source = MotionSource(cfg.replace({"data.limit_train": 10, "data.cache": False}))
    train, val = source.split("train"), source.split("val")
    # The loader reads the run's own data section: one declaration of every option.
    assert isinstance(train, SimTraffic) and train.cfg is source.cfg.data and val.cfg is source.cfg.data
    assert (len(train), len(val), train.options["seed"], train.split, val.split) == (40, 12, 3, "train", "val")
    assert train.options["layouts"] == ["merge"] and train.options["other_agents"] == [1, 2]
    ds = source.dataset("train", train=True)
    assert isinstance(ds, LimitedScenes) and len(ds) == 10 and ds.skips is source.split("train").skips
    assert len(source.dataset("val", train=False)) == 12
    assert source.info.pred_len == 30 and source.info.has_map
    with pytest.raises(IndexError):
        ds[10]


@pytest.mark.parametrize("overrides, words", [
    (["data.name=argoverse1"], ["data.root", "forecasting_*_v1.1.tar.gz"]),
    (["data.name=argoverse1", "data.root=/x", "data.val_split=test"], ["val_split=test", "no futures"]),
    (["data.name=argoverse1", "data.root=/x", "data.on_nan=ignore"], ["data.on_nan='ignore'", "skip or fail"]),
    (["data.name=eth-ucy", "data.root=/x", "data.scene=paris"], ["data.scene='paris'", "zara1"]),
    (["data.name=sim-traffic", "data.layouts=[roundabout]"], ["roundabout", "intersection"]),
    (["data.name=sim-traffic", "data.num_train=0"], ["data.num_train=0 must be positive"]),
    (["data.name=sim-traffic", "data.lanes=3"], ["data.lanes", "valid keys of data", "lane_radius"]),
])
def test_bad_data_config_names_the_fix(overrides, words):
    with pytest.raises(ConfigError) as e:
        load_config(None, [*BASE, *overrides])
    for w in words:
        assert w in str(e.value)


def test_a_missing_release_says_what_to_download(tmp_path):
    cfg = load_config(None, [*BASE, "data.name=argoverse1", f"data.root={tmp_path}"])
    with pytest.raises(ConfigError, match="forecasting_train_v1.1.tar.gz.*check data.root"):
        MotionSource(cfg).info


def test_argoverse_options_reach_the_loader(tmp_path):
    write_argoverse_csv(tmp_path / "train/data/1.csv", argoverse_scene(others=4))
    write_argoverse_csv(tmp_path / "val/data/2.csv", argoverse_scene())
    cfg = load_config(None, [*BASE, "data.name=argoverse1", f"data.root={tmp_path}", "data.max_agents=3",
                             "data.on_nan=fail", "data.cache=false"])
    source = MotionSource(cfg)
    assert source.split("train").cfg.max_agents == 3 and source.split("train").cfg.on_nan == "fail"
    item = source.dataset("train", train=True)[0]
    assert int(item["dropped_agents"]) == 6 - 3  # AGENT, AV and 4 OTHERS; the nearest 3 kept
    assert source.resolve() is cfg  # nothing to estimate from the data


def _walker(steps, start, velocity):
    steps = list(steps)
    return steps, np.asarray(start) + np.asarray(steps)[:, None] * np.asarray(velocity)


def test_eth_ucy_holds_one_scene_out(tmp_path):
    """data.scene=hotel: train and val are the other scenes' files, val_split=test is hotel's."""
    for split, n_walkers in (("train", 2), ("val", 3), ("test", 4)):
        write_eth_file(tmp_path / f"hotel/{split}/{split}.txt",
                       {k: _walker(range(20), (k, 0.0), (0.0, 0.4)) for k in range(n_walkers)})
    cfg = load_config(None, [*BASE, "data.name=eth-ucy", f"data.root={tmp_path}", "data.scene=hotel",
                             "data.val_split=test"])
    source = MotionSource(cfg)
    assert source.split("train").cfg is cfg.data and source.split("train").cfg.scene == "hotel"
    # one 20-step window per file, one item per walker seen throughout it
    assert len(source.dataset("train", True)) == 2 and len(source.dataset("test", False)) == 4
    assert source.info.obs_len == 8 and source.info.pred_len == 12 and not source.info.has_map


def test_keep_in_memory_reads_each_scene_once_per_process(monkeypatch):
    cfg = load_config(None, [*BASE, "data.name=sim-traffic", "data.num_train=4", "data.num_val=4",
                             "data.cache=false", "data.keep_in_memory=true", "data.data_seed=11"])
    first = MotionSource(cfg).dataset("train", train=True)
    item = first[1]
    # A second source of the same config (the next run of a compare) reads nothing again ...
    second = MotionSource(cfg).dataset("train", train=True)
    monkeypatch.setattr(type(second.base), "__getitem__", lambda self, i: pytest.fail("read again"))
    assert second[1] is item
    # ... and a source of other options never sees those scenes.
    other = MotionSource(cfg.replace({"data.max_agents": 3})).dataset("train", train=True)
    with pytest.raises(pytest.fail.Exception, match="read again"):
        other[1]


def test_each_loader_takes_the_config_its_dataset_is_registered_with():
    """One declaration of every option: the loaders are built from the light configs themselves."""
    from lm4vis.data.motion import DATASETS as LOADER_CONFIGS
    from lm4vis.data.motion.source import LOADERS

    for name, (config, loader) in LOADER_CONFIGS.items():
        assert DATASETS.get(name).config is config and LOADERS[name] is loader, name
