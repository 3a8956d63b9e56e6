"""Engine defects found when lm4vis was tried as a new user would; each test failed before its fix."""

from __future__ import annotations

import pickle
from pathlib import Path

import lightning as L
import pytest
import torch

from lm4vis.train.compare import compare
from lm4vis.train.folders import read_summary
from lm4vis.train.loading import UnsafeCheckpointError, load_run
from lm4vis.train.report import summarize
from lm4vis.train.config import threads_for
from lm4vis.train.run import train


class _Marker:
    """Unpickling this creates a file: what a hostile checkpoint would do, harmlessly."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_loading_a_run_never_runs_code_from_its_checkpoint(tiny_cfg, tmp_path):
    summary = train(tiny_cfg.replace({"run_name": "hostile", "trainer.max_epochs": 1}))
    ckpt = Path(summary["run_dir"]) / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    marker = tmp_path / "code-ran"
    state["surprise"] = _Marker(marker)
    torch.save(state, ckpt)
    with pytest.raises(UnsafeCheckpointError, match="not loaded"):
        load_run(summary["run_dir"])
    assert not marker.exists()


class _Poison(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 1:
            with torch.no_grad():
                pl_module.model.head.weight.fill_(float("nan"))


def test_compare_retrains_a_failed_run_once_its_config_changed(tiny_cfg):
    cfg = tiny_cfg.replace({"trainer.max_epochs": 1})
    out = Path(cfg.out_dir) / "cmp"
    # A run that diverged, in the folder compare will use for (baseline, seed 0).
    failed = train(cfg.replace({"block.variant": "baseline", "out_dir": str(out), "run_name": "baseline-s0"}),
                   callbacks=[_Poison()])
    assert failed["status"] == "failed"
    same = compare(cfg, ["baseline"], [0], name="cmp")  # same config: the failure stands
    assert same["runs"][0]["status"] == "failed"
    fixed = compare(cfg.replace({"optim.lr": 1e-3}), ["baseline"], [0], name="cmp")
    assert fixed["runs"][0]["status"] == "completed"
    assert read_summary(out / "baseline-s0.failed-1")["status"] == "failed"  # kept, not deleted


def test_threads_come_from_the_config_and_are_recorded(tiny_cfg):
    assert threads_for(tiny_cfg) >= 1 and tiny_cfg.trainer.threads is None
    summary = train(tiny_cfg.replace({"run_name": "one-thread", "trainer.max_epochs": 1, "trainer.threads": 1}))
    assert summary["threads"] == 1


def _run(variant, seed, value, higher_is_better):
    monitor = {"name": "err", "label": "error", "higher_is_better": higher_is_better, "unit": "m",
               "scale": 1.0, "digits": 2, "key": "val/err", "mode": "max" if higher_is_better else "min"}
    return {"variant": variant, "seed": seed, "status": "completed", "final": {"val/err": value},
            "task": {"monitor": monitor}}


@pytest.mark.parametrize("higher_is_better, expected", [(False, "better"), (True, "worse")])
def test_verdict_follows_the_metric_direction(higher_is_better, expected):
    """The variant's metric is lower on every seed: better for minADE, worse for accuracy."""
    pairs = {0: (1.00, 0.80), 1: (1.10, 0.85), 2: (0.95, 0.78)}
    runs = [r for s, (b, v) in pairs.items()
            for r in (_run("baseline", s, b, higher_is_better), _run("frozen-lm", s, v, higher_is_better))]
    out = summarize(runs, ["baseline", "frozen-lm"])
    assert out["paired_differences"][0]["verdict"] == expected
    assert out["metric"]["label"] == "error"


@pytest.mark.slow
def test_a_bf16_true_run_reloads(tiny_cfg):
    """Lightning's bf16-true casts the frozen layers too; the by-reference hash is of the source."""
    summary = train(tiny_cfg.replace({"run_name": "bf16", "trainer.max_epochs": 1,
                                      "trainer.precision": "bf16-true"}))
    assert summary["status"] == "completed"
    model, _ = load_run(summary["run_dir"])
    assert model.lm_block.lm.layers[0].attn.q_proj.weight.dtype == torch.float32  # as read again


def test_a_trainer_lightning_refuses_leaves_no_folder_and_one_line(tiny_cfg):
    from lm4vis.train.config import ConfigError

    cfg = tiny_cfg.replace({"run_name": "gpu", "trainer.accelerator": "gpu"})
    with pytest.raises(ConfigError, match="--accelerator") as e:
        train(cfg)
    assert "no run folder" in str(e.value) and len(str(e.value).splitlines()) == 1
    assert not (Path(cfg.out_dir) / "gpu").exists()
    assert train(cfg.replace({"trainer.accelerator": "cpu"}))["status"] == "completed"  # the fix just works


def test_grid_seed_flag_is_refused_with_the_right_flag(tmp_path):
    from lm4vis.cli import main

    assert main(["compare", "--config", "demo", "--seed", "5"]) == 1


def test_compare_names_its_own_fix_for_a_config_mismatch(tiny_cfg):
    from lm4vis.train.config import ConfigError

    cfg = tiny_cfg.replace({"trainer.max_epochs": 1})
    compare(cfg, ["baseline"], [0], name="mismatch")
    with pytest.raises(ConfigError, match="another --name") as e:
        compare(cfg.replace({"optim.lr": 0.01}), ["baseline"], [0], name="mismatch")
    assert "--run-name" not in str(e.value)


class _CrashAt(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("disk went away")


def test_a_run_that_fails_in_training_names_the_command_that_continues_it(tiny_cfg, caplog):
    from lm4vis.train.compare import _one

    cfg = tiny_cfg.replace({"run_name": "crash"})
    with caplog.at_level("ERROR", logger="lm4vis.train.run"), pytest.raises(RuntimeError, match="disk went away"):
        train(cfg, callbacks=[_CrashAt()])
    run_dir = Path(cfg.out_dir) / "crash"
    done = read_summary(run_dir)
    assert done["status"] == "failed" and done["resumable"] and "disk went away" in done["error"]
    assert f"continue it from its last checkpoint with: lm4vis train --resume {run_dir}" in caplog.text
    # compare continues such a run (a NaN failure it would leave alone until the config changes)
    assert _one(cfg, run_dir, "crash")["status"] == "completed"
