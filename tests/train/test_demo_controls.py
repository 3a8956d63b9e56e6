"""A demo task's controls: extra baseline rows with an input taken away, trained with every
seed after the three variants, reported with their paired difference from the baseline."""

from __future__ import annotations

import json

import pytest

from lm4vis.train.demo import DEMO_TASKS, Control, DemoTask, run_demo


def _tiny_task(tmp_path, tiny_cfg) -> DemoTask:
    preset = tmp_path / "tiny-demo.yaml"
    preset.write_text(tiny_cfg.replace({"trainer.max_epochs": 1}).to_yaml())
    blind = Control("blind", (("data.limit_train", 16),), "a quarter of the training images")
    return DemoTask(str(preset), str(preset), "the tests' images", controls=(blind,))


@pytest.mark.slow
def test_controls_are_trained_and_read(tmp_path, tiny_cfg, monkeypatch):
    monkeypatch.setitem(DEMO_TASKS, "tiny", _tiny_task(tmp_path, tiny_cfg))
    done = []
    results = run_demo([0], out=str(tmp_path / "out"), task="tiny", on_run_done=done.append)
    assert [r["cell"] for r in done] == ["baseline", "frozen-lm", "mlp", "blind"]
    blind = [r for r in done if r["cell"] == "blind"]
    assert all(r["variant"] == "baseline" for r in blind)  # a control is the host without the block
    saved = json.loads((tmp_path / "out" / "demo-synthetic" / "results.json").read_text())
    rows = [r["variant"] for r in saved["summary"]["rows"]]
    assert rows == ["baseline", "frozen-lm", "mlp", "blind"]
    assert any(d["variant"] == "blind" for d in saved["summary"]["paired_differences"])
    assert "The blind control (a quarter of the training images) reached" in results["reading"]
    assert blind[0]["final"] != done[0]["final"]  # it trained on less data than the baseline

    # Without controls: the three variants only (reused, as finished runs are).
    done.clear()
    results = run_demo([0], out=str(tmp_path / "out"), task="tiny", on_run_done=done.append, controls=False)
    assert [r["cell"] for r in done] == ["baseline", "frozen-lm", "mlp"]
    assert "control" not in results["reading"]
