"""Variants x seeds: the report's statistics, its files, and resumability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm4vis.train.compare import compare
from lm4vis.train.config import ConfigError
from lm4vis.train.report import mean_ci, summarize, t_quantile


@pytest.mark.parametrize("p, df, expected", [
    (0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 4, 2.7764), (0.975, 9, 2.2622),
    (0.975, 30, 2.0423), (0.975, 1e6, 1.9600), (0.95, 5, 2.0150), (0.025, 4, -2.7764),
])
def test_t_quantile_matches_the_table(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("values, mean, half", [
    ([0.8, 0.82, 0.81], 0.81, 4.3027 * 0.01 / 3**0.5),
    ([0.5, 0.5], 0.5, 0.0),
    ([0.7], 0.7, None),  # one seed: no interval
])
def test_mean_ci(values, mean, half):
    s = mean_ci(values)
    assert s["mean"] == pytest.approx(mean)
    if half is None:
        assert s["ci_low"] is None and s["std"] is None
    else:
        assert s["half_width"] == pytest.approx(half, abs=1e-6)


def _run(variant, seed, acc):
    return {"variant": variant, "seed": seed, "status": "completed", "final": {"val/acc": acc},
            "params": {"trainable": 10, "frozen": 5}, "time_per_step_s": 0.1, "samples_per_s": 640}


@pytest.mark.parametrize("accs, verdict", [
    ({0: (0.80, 0.85), 1: (0.70, 0.76), 2: (0.75, 0.79)}, "better"),   # +4..6 pts every seed
    ({0: (0.80, 0.78), 1: (0.70, 0.67), 2: (0.75, 0.725)}, "worse"),  # -2..3 pts
    ({0: (0.80, 0.85), 1: (0.70, 0.66), 2: (0.75, 0.76)}, "no significant difference"),
])
def test_paired_verdicts(accs, verdict):
    runs = [r for s, (a, b) in accs.items() for r in (_run("baseline", s, a), _run("frozen-lm", s, b))]
    out = summarize(runs, ["baseline", "frozen-lm"])
    assert out["paired_differences"][0]["verdict"] == verdict
    assert [r["metric"]["n"] for r in out["rows"]] == [3, 3]


@pytest.mark.slow
def test_compare_writes_report_and_resumes(tiny_cfg, factory, monkeypatch):
    cfg = tiny_cfg.replace({"trainer.max_epochs": 1})
    res = compare(cfg, ["baseline", "frozen-lm"], [0, 1], name="cmp")
    out = Path(res["out_dir"])
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "baseline-s0", "baseline-s1", "frozen-lm-s0", "frozen-lm-s1"]
    report = (out / "report.md").read_text()
    for words in ("| baseline | 2 |", "| frozen-lm | 2 |", "95% CI", "trainable params", "samples/s",
                  "curves.png"):
        assert words in report
    assert (out / "curves.png").stat().st_size > 1000
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 4 and results["summary"]["rows"][0]["variant"] == "baseline"

    # A second call trains nothing: every run is complete.
    import lm4vis.train.run as run_mod

    fits = []
    real_fit = run_mod._fit
    monkeypatch.setattr(run_mod, "_fit", lambda *a, **k: fits.append(a) or real_fit(*a, **k))
    again = compare(cfg, ["baseline", "frozen-lm"], [0, 1], name="cmp")
    assert fits == [] and again["summary"]["rows"] == res["summary"]["rows"]

    # A different budget under the same name is refused, naming the key.
    with pytest.raises(ConfigError, match="optim.lr"):
        compare(cfg.replace({"optim.lr": 0.1}), ["baseline"], [0], name="cmp")


@pytest.mark.parametrize("variants, seeds, words", [
    (["baseline", "frozen"], [0], "frozen"),
    ([], [0], "none given"),
    (["baseline"], [], "seed"),
    (["baseline", "baseline"], [0], "repeat"),
])
def test_compare_bad_arguments(tiny_cfg, variants, seeds, words):
    with pytest.raises(ConfigError, match=words):
        compare(tiny_cfg, variants, seeds)
