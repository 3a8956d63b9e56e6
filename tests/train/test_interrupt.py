"""Preemption: SIGTERM and SIGINT stop a run at the next safe point with a checkpoint, the
process says how to resume and exits 143 / 130, and the resumed run ends where the
uninterrupted one does."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from lm4vis.train.folders import read_summary
from lm4vis.train.interrupt import RunInterrupted
from lm4vis.train.loading import checkpoint_position, load_run
from lm4vis.train.run import train



class _SignalAt(L.Callback):
    """Sends ``signum`` to this process as training batch ``batch`` of ``epoch`` starts."""

    def __init__(self, signum: int, epoch: int, batch: int) -> None:
        self.signum, self.epoch, self.batch, self.sent = signum, epoch, batch, False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.sent and trainer.current_epoch == self.epoch and batch_idx == self.batch:
            self.sent = True
            os.kill(os.getpid(), self.signum)


def _weights(run_dir):
    return {k: v for k, v in load_run(run_dir)[0].state_dict().items() if torch.is_tensor(v)}


def _same_run(full: dict, resumed: dict, full_dir: Path, resumed_dir: Path) -> None:
    assert resumed["status"] == "completed" and resumed["steps"] == full["steps"]
    for ha, hb in zip(full["history"], resumed["history"], strict=True):
        assert ha == pytest.approx(hb, abs=1e-6)
    a, b = _weights(full_dir), _weights(resumed_dir)
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6


def _loss_rows(run_dir: Path) -> list[tuple[str, str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return [(r["epoch"], r["step"], r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


# Every source of randomness on, as in the kill-and-resume test of test_run.py.
AUGMENTED = {
    "task.mixup": 0.8, "task.cutmix": 1.0, "data.randaugment": "rand-m9-mstd0.5-inc1",
    "task.label_smoothing": 0.1, "host.drop_path_rate": 0.1, "data.crop": "padded", "data.hflip": 0.5,
}


@pytest.mark.slow
@pytest.mark.parametrize("signum, accumulate, epoch, at_batch, stops_after", [
    (signal.SIGTERM, 1, 1, 1, 2),  # inside an epoch: saved after the batch in flight
    (signal.SIGINT, 1, 1, 1, 2),   # Ctrl-C takes the same road
    (signal.SIGTERM, 2, 1, 0, 2),  # never inside gradient accumulation: after the step's 2nd batch
    (signal.SIGTERM, 1, 0, 3, 0),  # during an epoch's last batch: after its validation, at its end
])
def test_signal_stops_at_a_safe_point_and_resumes_exactly(tiny_cfg, signum, accumulate, epoch, at_batch,
                                                           stops_after):
    cfg = tiny_cfg.replace({**AUGMENTED, "trainer.accumulate_grad_batches": accumulate})
    full = train(cfg.replace({"run_name": "full"}))
    out = Path(cfg.out_dir)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under a shell's background job, not Python's default
    with pytest.raises(RunInterrupted) as stop:
        train(cfg.replace({"run_name": "cut"}), callbacks=[_SignalAt(signum, epoch, at_batch)])
    e = stop.value
    assert e.signum == signum and e.exit_code == 128 + signum
    assert f"resume with: lm4vis train --resume {out / 'cut'}" in str(e)
    summary = read_summary(out / "cut")
    assert summary["status"] == "interrupted" and summary["interrupted"]["signal"] == signal.Signals(signum).name

    at = checkpoint_position(out / "cut" / "checkpoints" / "last.ckpt")
    assert at.epoch == epoch and at.mid_epoch == bool(stops_after) and at.step == e.step
    if stops_after:
        assert at.batches == stops_after
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored to what they were

    resumed = train(None, resume=out / "cut")
    _same_run(full, resumed, out / "full", out / "cut")
    assert _loss_rows(out / "cut") == _loss_rows(out / "full")  # no row lost or repeated


@pytest.mark.slow
def test_a_signal_in_the_last_batch_lets_the_run_complete(tiny_cfg):
    """Nothing is left to save after the last epoch: the run completes instead."""
    done = train(tiny_cfg, callbacks=[_SignalAt(signal.SIGTERM, epoch=1, batch=3)])
    assert done["status"] == "completed" and done["epochs"] == 2


# -- a real `lm4vis train` process -----------------------------------------------------------------
PLUGIN = '''
"""Test plugin: the synthetic images of tests/train/conftest.py, slow to load, and a marker
file once training is under way (so the test signals a running loop)."""
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lm4vis import register_dataset
from lm4vis.data.configs import ImageDataConfig


@dataclass(frozen=True)
class Info:
    name: str = "slow-synthetic"
    num_classes: int = 4
    in_chans: int = 1
    image_size: int = 16
    class_names: tuple = ("c0", "c1", "c2", "c3")
    has_masks: bool = False


class Images(torch.utils.data.Dataset):
    info = Info()
    reads = 0

    def __init__(self, n, split):
        self.n, self.offset, self.split = n, {"train": 0, "val": 10_000, "test": 20_000}[split], split

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.split == "train":
            Images.reads += 1
            marker = os.environ.get("LM4VIS_TEST_MARKER")
            if marker and Images.reads == 20:  # into the second batch of 16
                Path(marker).touch()
            time.sleep(float(os.environ.get("LM4VIS_TEST_ITEM_DELAY", "0")))
        g = torch.Generator().manual_seed(self.offset + i)
        label = i % 4
        img = torch.randint(0, 50, (1, 16, 16), generator=g) + 25 * label
        img[:, : 4 * (label + 1), :4] = 255
        return img.to(torch.uint8), label


def _factory(name, split="train", root=None, image_size=None, seed=0, limit=None, **_):
    return Images(96 if split == "train" else 32, split)


def _source(cfg):
    from lm4vis.data.image_source import ImageSource

    return ImageSource(cfg, base=_factory)


register_dataset("slow-synthetic", config=ImageDataConfig, builder=_source)
'''


def _preset(tmp_path: Path, tiny_llama_dir: str, tiny_overrides: dict) -> Path:
    preset = {}
    for key, value in {**tiny_overrides, "data.name": "slow-synthetic", "block.source": tiny_llama_dir,
                       "out_dir": str(tmp_path / "runs"), "plugins": ["slow_plugin"]}.items():
        *parents, leaf = key.split(".")
        node = preset
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


def _lm4vis(args, tmp_path, **env):
    return subprocess.Popen([sys.executable, "-m", "lm4vis", "train", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env})


@pytest.fixture(scope="module")
def process_setup(tmp_path_factory, tiny_llama_dir, tiny_overrides):
    """The plugin and preset, and the uninterrupted run both signals are measured against."""
    root = tmp_path_factory.mktemp("signals")
    (root / "slow_plugin.py").write_text(textwrap.dedent(PLUGIN))
    preset = _preset(root, tiny_llama_dir, tiny_overrides)
    full = _lm4vis(["--config", str(preset), "--run-name", "full"], root)
    _, err = full.communicate(timeout=240)
    assert full.returncode == 0, err
    return root, preset, read_summary(root / "runs" / "full")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_lm4vis_train_process_on_a_signal(process_setup, signum):
    root, preset, full = process_setup
    name = f"cut-{signal.Signals(signum).name}"
    marker = root / f"training-{name}"
    proc = _lm4vis(["--config", str(preset), "--run-name", name], root,
                   LM4VIS_TEST_MARKER=str(marker), LM4VIS_TEST_ITEM_DELAY="0.02")
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=240)
    run_dir = root / "runs" / name
    assert proc.returncode == 128 + signum, err
    assert f"resume with: lm4vis train --resume {run_dir}" in err and "interrupted at epoch 1, step " in err, err
    assert read_summary(run_dir)["status"] == "interrupted"
    assert checkpoint_position(run_dir / "checkpoints" / "last.ckpt").mid_epoch

    resumed = _lm4vis(["--resume", str(run_dir)], root)
    _, r_err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, r_err
    assert "resuming" in r_err and "of its batches" in r_err, r_err  # where it resumed
    done = read_summary(run_dir)
    assert done["final"] == pytest.approx(full["final"], abs=1e-6) and done["steps"] == full["steps"]


@pytest.mark.slow
def test_compare_passes_the_interrupt_on_and_resumes_cell_by_cell(tmp_path, tiny_llama_dir, tiny_overrides,
                                                                  monkeypatch, capsys):
    import shlex

    import lm4vis.train.compare as compare_mod
    from lm4vis.cli import main

    preset = tmp_path / "tiny.yaml"
    data = yaml.safe_load(_preset(tmp_path, tiny_llama_dir, tiny_overrides).read_text())
    data["data"]["name"], data["trainer"]["max_epochs"] = "synthetic", 1  # conftest's dataset
    data.pop("plugins")
    preset.write_text(yaml.safe_dump(data))
    real, trained = compare_mod.train, []

    def signal_in_second_run(cfg, **kw):
        trained.append(cfg.block.variant)
        if len(trained) == 2:
            kw["callbacks"] = [_SignalAt(signal.SIGTERM, epoch=0, batch=1)]
        return real(cfg, **kw)

    monkeypatch.setattr(compare_mod, "train", signal_in_second_run)
    args = ["compare", "--config", str(preset), "--variants", "baseline,frozen-lm,mlp", "--seeds", "0",
            "--name", "cmp"]
    assert main(args) == 143
    err = capsys.readouterr().err
    out = tmp_path / "runs" / "cmp"
    assert f"of run {out / 'frozen-lm-s0'}; resume with: lm4vis {shlex.join(args)}" in err, err
    assert trained == ["baseline", "frozen-lm"]  # the grid stopped with its cell
    assert read_summary(out / "frozen-lm-s0")["status"] == "interrupted"

    monkeypatch.setattr(compare_mod, "train", lambda cfg, **kw: trained.append(cfg.block.variant) or real(cfg, **kw))
    assert main(args) == 0
    assert trained[2:] == ["baseline", "frozen-lm", "mlp"]  # baseline reused, frozen-lm resumed
    assert all(read_summary(out / f"{v}-s0")["status"] == "completed" for v in ("baseline", "frozen-lm", "mlp"))
