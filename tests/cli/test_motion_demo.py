"""`lm4vis demo --task motion`: the three variants on the simulator, at a tiny budget, with the
forecasting metrics judged lower-is-better and the constant-velocity reference in the reading."""

from __future__ import annotations

import json

import pytest

from lm4vis.cli import main
from lm4vis.data.cache import CACHE_ENV
from lm4vis.train.config import ConfigError
from lm4vis.train.demo import DEMO_TASKS, demo_config

TINY = ["host.embed_dim=32", "host.subgraph_depth=2", "host.num_heads=2", "data.num_train=32",
        "data.num_val=16", "data.batch_size=8", "trainer.max_epochs=1"]


def test_the_motion_row_names_its_presets():
    row = DEMO_TASKS["motion"]
    cfg = demo_config(task="motion")
    assert (row.preset, cfg.host.kind, cfg.data.name, cfg.task.name) == ("motion-demo", "vectornet",
                                                                         "sim-traffic", "forecasting")
    assert demo_config(quick=True, task="motion").data.num_train < cfg.data.num_train
    with pytest.raises(ConfigError, match="not an embedded dataset of --task motion"):
        demo_config(task="motion", dataset="fashion-mnist")
    with pytest.raises(ConfigError, match="images, points, video, motion"):
        demo_config(task="points-or-so")


@pytest.mark.slow
def test_demo_task_motion_tiny(tmp_path, tiny_llama, capsys, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    code = main(["demo", "--task", "motion", *TINY, f"block.source={tiny_llama}", "--seeds", "0,1",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for words in ("| baseline |", "| frozen-lm |", "| mlp |", "minFDE@6 mean (m)", "lower is better",
                  "| minADE@6 (m) ↓ |", "| MR@1 (%) ↓ |", "wall time", "constant-velocity"):
        assert words in out, words
    results = json.loads((tmp_path / "demo-sim-traffic" / "results.json").read_text())
    assert [r["variant"] for r in results["summary"]["rows"]] == ["baseline", "frozen-lm", "mlp"]
    assert results["summary"]["metric"]["key"] == "val/minFDE@6"
    assert results["reference"]["scenes"] == 16 and "val/minFDE@1" in results["reference"]["metrics"]
    assert "top-1" not in results["reading"] and "MR@6" in results["reading"]
    report = (tmp_path / "demo-sim-traffic" / "report.md").read_text()
    assert "Every other metric the task declares" in report and "| brier-minFDE@6 (m) ↓ |" in report
