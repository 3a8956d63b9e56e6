"""`lm4vis demo --task all`: the paper-shaped table from constructed results (both metric
directions), and the runner, which reads a finished task back instead of retraining it."""

from __future__ import annotations

import json

import pytest

from lm4vis import register_dataset
from lm4vis.data.configs import ImageDataConfig
from lm4vis.train.demo import DEMO_TASKS, DemoTask
from lm4vis.train.paper_table import add_bonferroni, markdown, plot, reading, run_all, table_row
from lm4vis.train.report import summarize

ACC = {"name": "acc", "label": "top-1", "higher_is_better": True, "unit": "%", "scale": 100.0, "digits": 2,
       "key": "val/acc", "mode": "max"}
FDE = {"name": "minFDE@6", "label": "minFDE@6", "higher_is_better": False, "unit": "m", "scale": 1.0,
       "digits": 2, "key": "val/minFDE@6", "mode": "min"}


def _results(metric, values):
    runs = [{"variant": v, "seed": s, "status": "completed", "final": {metric["key"]: x},
             "task": {"monitor": metric}} for v, xs in values.items() for s, x in enumerate(xs)]
    return {"summary": summarize(runs, list(values)), "dataset": "d", "out_dir": "x"}


def test_table_from_constructed_results():
    images = _results(ACC, {"baseline": [0.50, 0.52, 0.51], "frozen-lm": [0.55, 0.57, 0.565],
                            "mlp": [0.5, 0.5, 0.5]})
    motion = _results(FDE, {"baseline": [2.6, 2.7, 2.65], "frozen-lm": [2.9, 3.0, 2.97],
                            "mlp": [2.6, 2.7, 2.7]})
    same = _results(ACC, {"baseline": [0.5, 0.6, 0.4], "frozen-lm": [0.6, 0.4, 0.5], "mlp": [0.5, 0.5, 0.5]})
    rows = [table_row("images", images), table_row("motion", motion), table_row("points", same)]
    add_bonferroni(rows)
    # frozen-lm up 5 points of top-1: better; frozen-lm up 0.3 m of a lower-is-better error: worse.
    assert [r["verdict"] for r in rows] == ["better", "worse", "no significant difference"]
    assert all(r["verdict_bonferroni"] in ("better", "worse", "no significant difference") for r in rows)
    text = markdown(rows)
    assert "| images | top-1 (%) ↑ | 51.00 ± 2.48 |" in text
    assert "| motion | minFDE@6 (m) ↓ |" in text and "| +0.31 ± 0.03 | worse |" in text
    said = reading(rows, "smollm2-135m", quick=False)
    assert "helped in 1, hurt in 1 and made no significant difference in 1" in said
    assert "about 14%" in said  # 1 - 0.95**3 of a false 'significant' row by luck
    assert "98.3% level" in said


def test_the_table_counts_the_runs_on_their_plateau():
    def with_plateau(results, reached):
        for row, n in zip(results["summary"]["rows"], reached):
            row["plateau"] = {"reached": n, "runs": 3, "epochs": [], "window": 3, "tolerance": 0.01}
        return results

    trained = with_plateau(_results(ACC, {"baseline": [0.5, 0.52, 0.51], "frozen-lm": [0.5, 0.51, 0.52],
                                          "mlp": [0.5, 0.5, 0.51]}), [3, 3, 3])
    learning = with_plateau(_results(FDE, {"baseline": [2.6, 2.7, 2.65], "frozen-lm": [2.6, 2.7, 2.6],
                                           "mlp": [2.6, 2.7, 2.7]}), [3, 1, 0])
    rows = [table_row("images", trained), table_row("motion", learning)]
    assert rows[0]["plateau"] == {"reached": 9, "runs": 9} and rows[1]["plateau"] == {"reached": 4, "runs": 9}
    text = markdown(rows)
    assert text.splitlines()[0].endswith("| plateau |") and "| 9/9 |" in text and "| 4/9 |" in text
    said = reading(rows, "gemma3-270m", quick=False)
    assert "13 of 18 variant runs ended on their plateau; in motion some did not" in said
    assert "SmolLM2-135M" not in said  # the scale sentence names the LM the table ran
    old = table_row("images", _results(ACC, {"baseline": [0.5, 0.6], "frozen-lm": [0.6, 0.5], "mlp": [0.5, 0.5]}))
    assert old["plateau"] is None and "| – |" in markdown([old])


def test_bonferroni_can_turn_a_verdict():
    # A difference just beyond the 95% interval of one task, not beyond the widened one of 7.
    r = _results(ACC, {"baseline": [0.50, 0.50, 0.50], "frozen-lm": [0.52, 0.53, 0.525], "mlp": [0.5] * 3})
    rows = [table_row("t", r)] + [table_row(f"u{i}", _results(ACC, {"baseline": [0.5, 0.6], "frozen-lm": [0.6, 0.5],
                                                                     "mlp": [0.5, 0.5]})) for i in range(6)]
    add_bonferroni(rows)
    assert rows[0]["verdict"] == "better" and rows[0]["verdict_bonferroni"] == "no significant difference"


def test_plot_draws_a_panel_per_task(tmp_path):
    rows = [table_row("images", _results(ACC, {"baseline": [0.5, 0.52], "frozen-lm": [0.5, 0.5], "mlp": [0.4, 0.5]})),
            table_row("motion", _results(FDE, {"baseline": [2.6, 2.7], "frozen-lm": [2.9], "mlp": []}))]
    plot(rows, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 5_000


register_dataset("synthetic-b", config=ImageDataConfig,
                 builder=lambda cfg: __import__("lm4vis.registry", fromlist=["DATASETS"]).DATASETS.get("synthetic").build(cfg))


@pytest.mark.slow
def test_run_all_reads_a_finished_task_back(tmp_path, tiny_cfg, monkeypatch):
    for name, data in (("tiny-a", "synthetic"), ("tiny-b", "synthetic-b")):
        preset = tmp_path / f"{name}.yaml"
        preset.write_text(tiny_cfg.replace({"trainer.max_epochs": 1, "data.name": data,
                                            "data.limit_train": 32, "data.limit_val": 16}).to_yaml())
        monkeypatch.setitem(DEMO_TASKS, name, DemoTask(str(preset), str(preset), name))
    out = str(tmp_path / "out")
    trained, tasks = [], []
    run_all([0], out=out, tasks=["tiny-a"], on_run_done=trained.append,
            on_task_done=lambda t, r, reused: tasks.append((t, reused)))
    assert len(trained) == 3 and tasks == [("tiny-a", False)]

    trained.clear(), tasks.clear()
    table = run_all([0], out=out, tasks=["tiny-a", "tiny-b"], on_run_done=trained.append,
                    on_task_done=lambda t, r, reused: tasks.append((t, reused)))
    assert tasks == [("tiny-a", True), ("tiny-b", False)]
    assert len(trained) == 3 and {r["dataset"] for r in trained} == {"synthetic-b"}  # tiny-a not retrained
    saved = json.loads((tmp_path / "out" / "paper-table" / "results.json").read_text())
    assert [r["task"] for r in saved["rows"]] == ["tiny-a", "tiny-b"]
    assert (tmp_path / "out" / "paper-table" / "table.png").is_file()
    assert "| tiny-a | top-1 (%) ↑ |" in (tmp_path / "out" / "paper-table" / "table.md").read_text()
    assert table["reading"].startswith("Across 2 task(s)")
