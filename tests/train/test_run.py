"""Run folders: kill and resume gives the uninterrupted result, nothing is ever overwritten,
checkpoints are written atomically, and `load_run` rebuilds the trained model."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import lightning as L
import pytest
import torch

from lm4vis.train.callbacks import AtomicCheckpointIO
from lm4vis.train.config import ConfigError
from lm4vis.train.folders import RunExistsError, read_summary
from lm4vis.train.loading import load_run
from lm4vis.train.run import train


class Kill(RuntimeError):
    pass


class _KillAt(L.Callback):
    """Raises in the middle of an epoch, as a killed process stops."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise Kill("simulated kill")


def _tensors(model):
    return {k: v for k, v in model.state_dict().items() if torch.is_tensor(v)}


# Every source of randomness on: augmentation, mixup/cutmix, drop path, label smoothing, and
# worker processes (num_workers=2), where a resumed epoch is easiest to get wrong.
AUGMENTED = {
    "task.mixup": 0.8, "task.cutmix": 1.0, "data.randaugment": "rand-m9-mstd0.5-inc1",
    "data.random_erasing": 0.25, "task.label_smoothing": 0.1, "optim.warmup_epochs": 1.0,
    "host.drop_path_rate": 0.1, "data.crop": "padded", "data.hflip": 0.5,
}


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
def test_kill_and_resume_equals_uninterrupted(tiny_cfg, factory, num_workers):
    cfg = tiny_cfg.replace({**AUGMENTED, "data.num_workers": num_workers, "trainer.max_epochs": 2})
    full = train(cfg.replace({"run_name": "full"}))

    killed_cfg = cfg.replace({"run_name": "killed"})
    with pytest.raises(Kill):
        train(killed_cfg, callbacks=[_KillAt(epoch=1, batch=2)])
    run_dir = Path(cfg.out_dir) / "killed"
    done = read_summary(run_dir)
    assert done["status"] == "failed" and done["resumable"] and "simulated kill" in done["error"]
    # the resume must start from epoch 0's checkpoint, not over (which would also match)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    resumed = train(None, resume=run_dir)

    assert resumed["status"] == "completed" and resumed["steps"] == full["steps"]
    a, b = _tensors(load_run(Path(cfg.out_dir) / "full")[0]), _tensors(load_run(run_dir)[0])
    assert a.keys() == b.keys()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6
    for ha, hb in zip(full["history"], resumed["history"], strict=True):
        assert ha.keys() == hb.keys()
        assert all(ha[k] == pytest.approx(hb[k], abs=1e-6) for k in ha)
    # metrics.csv: the killed partial epoch was dropped, not duplicated.
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and len(steps) == full["steps"]


def test_existing_run_folder_is_refused(tiny_cfg, factory):
    cfg = tiny_cfg.replace({"run_name": "taken", "trainer.max_epochs": 1})
    first = train(cfg)
    ckpt = Path(first["run_dir"]) / "checkpoints" / "last.ckpt"
    before = ckpt.stat().st_mtime_ns, ckpt.read_bytes()
    with pytest.raises(RunExistsError) as e:
        train(cfg)
    assert "--resume" in str(e.value) and "auto" in str(e.value)
    assert (ckpt.stat().st_mtime_ns, ckpt.read_bytes()) == before
    # auto: a free suffix, the first run untouched
    second = train(cfg, auto_name=True)
    assert Path(second["run_dir"]).name == "taken-2"
    assert (ckpt.stat().st_mtime_ns, ckpt.read_bytes()) == before
    # resuming a completed run does nothing
    again = train(None, resume=first["run_dir"])
    assert again["status"] == "completed" and ckpt.stat().st_mtime_ns == before[0]


def test_resume_with_other_config_names_the_keys(tiny_cfg, factory):
    cfg = tiny_cfg.replace({"run_name": "mine", "trainer.max_epochs": 1})
    first = train(cfg)
    other = cfg.replace({"optim.lr": 0.5, "block.variant": "mlp", "out_dir": "elsewhere"})
    with pytest.raises(ConfigError) as e:
        train(other, resume=first["run_dir"])
    msg = str(e.value)
    assert "optim.lr" in msg and "block.variant" in msg and "out_dir" not in msg


def test_run_folder_contents_and_load_run(tiny_cfg, factory):
    cfg = tiny_cfg.replace({"run_name": "files", "trainer.max_epochs": 2})
    summary = train(cfg)
    run_dir = Path(summary["run_dir"])
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    # the best epoch by the task's monitor metric and the last; no temporary file left
    best = f"epoch{summary['best']['epoch']:03d}.ckpt"
    assert names == sorted({best, "last.ckpt"})
    assert {"config.yaml", "metrics.csv", "summary.json", "tensorboard"} <= {p.name for p in run_dir.iterdir()}
    assert any((run_dir / "tensorboard").iterdir())
    for key in ("time_per_step_s", "samples_per_s", "threads", "task", "skipped", "params", "final", "best"):
        assert summary[key]
    model, loaded_cfg = load_run(run_dir)
    assert loaded_cfg.data.mean is not None  # resolved statistics are part of the saved config
    # the by-reference LM weights were not stored in the checkpoint, yet the model is complete
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert not any(k.startswith("model.lm_block.lm.") for k in state)
    x = torch.rand(2, 1, 16, 16)
    model2, _ = load_run(run_dir, "last.ckpt")
    assert torch.equal(model(x), model2(x))
    with pytest.raises(FileNotFoundError, match=best):
        load_run(run_dir, "epoch999.ckpt")


def test_atomic_checkpoint_survives_a_failed_write(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"w": torch.zeros(3), "bad": Unpicklable()}, path)
    assert torch.equal(torch.load(path)["w"], torch.ones(3))  # the old file is intact
    assert os.listdir(tmp_path) == ["last.ckpt"]  # and no temporary file is left


def test_resume_may_change_how_a_run_executes(tiny_cfg, tmp_path):
    from lm4vis.train.folders import check_resume_config

    # neither compiling nor the progress bar changes what is computed
    check_resume_config(tiny_cfg, tiny_cfg.replace({"trainer.compile": True, "trainer.progress_bar": True}), tmp_path)
    with pytest.raises(ConfigError, match="trainer.max_epochs"):
        check_resume_config(tiny_cfg, tiny_cfg.replace({"trainer.max_epochs": 9}), tmp_path)


def test_resume_takes_execution_keys_from_the_command(tiny_cfg, factory, caplog):
    """A run killed eager may be resumed compiled: the flag is applied, not just tolerated, and
    the resume says where it resumed and which execution settings changed."""
    cfg = tiny_cfg.replace({"run_name": "eager-then-compiled", "trainer.max_epochs": 2})
    with pytest.raises(Kill):
        train(cfg, callbacks=[_KillAt(epoch=1, batch=1)])
    seen = []

    class _See(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.append(pl_module.model.lm_block._compiled_call_impl is not None)

    with caplog.at_level("INFO", logger="lm4vis.train.run"):
        resumed = train(cfg.replace({"trainer.compile": True}), resume=Path(cfg.out_dir) / cfg.run_name,
                        callbacks=[_See()])
    assert resumed["status"] == "completed" and seen == [True]
    assert "trainer.compile: False -> True" in caplog.text
    assert "from last.ckpt at the end of epoch 1/2, step " in caplog.text


@pytest.mark.parametrize("keep, expected", [(0, ["last.ckpt"]), (-1, ["epoch000.ckpt", "epoch001.ckpt", "epoch002.ckpt", "last.ckpt"]),
                                            (2, None)])
def test_checkpoints_kept(tiny_cfg, keep, expected):
    """Every epoch's checkpoint is kept only when asked (-1); by default the best and the last."""
    cfg = tiny_cfg.replace({"run_name": f"keep{keep}", "trainer.max_epochs": 3, "trainer.keep_checkpoints": keep})
    summary = train(cfg)
    names = sorted(p.name for p in (Path(summary["run_dir"]) / "checkpoints").iterdir())
    if expected is None:  # the two best epochs by val/acc (ties either way), and last
        assert len(names) == 3 and "last.ckpt" in names
        acc = {f"epoch{h['epoch']:03d}.ckpt": h["val/acc"] for h in summary["history"]}
        kept = [n for n in names if n != "last.ckpt"]
        assert min(acc[n] for n in kept) >= max(v for n, v in acc.items() if n not in kept)
    else:
        assert names == expected
