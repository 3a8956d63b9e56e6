"""Fast to say no: --help and config, preset and option errors come back without importing
torch (the timings themselves are benchmarks/startup.py's)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["--help"], 0, "usage: lm4vis"),
    (["train", "--help"], 0, "usage: lm4vis train"),
    (["analyze", "--help"], 0, "usage: lm4vis analyze"),
    (["train", "--config", "fashion-mnist-vit-tiny", "optim.learning_rate=1e-3"], 1, "did you mean optim.lr"),
    (["train", "--config", "fashion-mnist-vit-tny"], 1, "did you mean fashion-mnist-vit-tiny"),
    (["compare", "--config", "demo", "--variants", "frozen"], 1, "choose from baseline, frozen-lm"),
    (["sweep", "--config", "demo", "--kind", "layer", "trainer.epochs=2"], 1, "did you mean trainer.max_epochs"),
    (["analyze", "RUN", "--split", "val", "--calib-split", "val"], 1, "--calib-split are both"),
    (["train", "--config", "points-demo", "host.num_group=4"], 1, "did you mean host.num_groups"),
    (["train", "--config", "pointbert-scanobjectnn-pb_t50_rs", "data.variant=hard"], 1,
     "choose one of obj_only, obj_bg, pb_t50_rs"),
    (["demo", "--help"], 0, "--task {images,points,video,motion,vqa}"),
]


@pytest.mark.parametrize("args, code, words", CASES)
def test_answers_without_importing_torch(args, code, words):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "lm4vis", *args],
                          capture_output=True, text=True)
    assert proc.returncode == code, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "lightning" not in imported
    assert words in proc.stdout + proc.stderr
