"""The plateau rule on constructed metric histories, and a run that stops there."""

from __future__ import annotations

import pytest

from lm4vis.train.config import ConfigError, load_config
from lm4vis.train.plateau import plateau_epoch, plateau_status
from lm4vis.train.report import markdown_table, summarize


@pytest.mark.parametrize("values, window, tol, expected", [
    ([0.10, 0.30, 0.50, 0.60, 0.62, 0.623], 3, 0.03, 5),   # flat once 0.60, 0.62, 0.623 move < 0.03
    ([0.10, 0.30, 0.50, 0.60, 0.62, 0.623], 3, 0.02, None),  # 0.023 is not < 0.02
    ([0.5, 0.5], 3, 0.01, None),                             # too few epochs to judge
    ([0.5, 0.5, 0.5], 3, 0.0, None),                         # the tolerance is exclusive
    ([2.9, 2.7, 2.68, 2.67, 2.9], 3, 0.05, 3),               # lower-is-better alike: it is movement
    ([0.4, 0.41, 0.2, 0.21], 2, 0.02, 1),                    # the first epoch it held
])
def test_plateau_epoch(values, window, tol, expected):
    assert plateau_epoch(values, window, tol) == expected


def test_min_epochs_skips_an_early_pause():
    # the image demo's MLP control (16 epochs): flat at 65% over epochs 4-6, then on to 72%
    values = [0.366, 0.431, 0.552, 0.649, 0.657, 0.654, 0.69, 0.71, 0.72, 0.722, 0.725]
    assert plateau_epoch(values, 3, 0.01) == 5                  # the pause would stop it at epoch 6
    assert plateau_epoch(values, 3, 0.01, min_epochs=8) == 10   # judged from epoch 8: the real one
    assert plateau_epoch(values[:9], 3, 0.01, min_epochs=8) is None
    st = plateau_status([{"epoch": i, "val/acc": v} for i, v in enumerate(values)], "val/acc", 3, 0.01,
                        min_epochs=8)
    assert st["epoch"] == 11 and st["min_epochs"] == 8
    with pytest.raises(ValueError, match="min_epochs"):
        plateau_epoch(values, 3, 0.01, min_epochs=-1)
    with pytest.raises(ConfigError, match="plateau_min_epochs"):
        load_config(None, {"trainer.plateau_min_epochs": -1})


def test_plateau_status_counts_epochs_from_one_and_skips_unvalidated():
    history = [{"epoch": 0, "val/acc": 0.2}, {"epoch": 1, "train/epoch_loss": 1.0},
               {"epoch": 2, "val/acc": 0.5}, {"epoch": 3, "val/acc": 0.501}, {"epoch": 4, "val/acc": 0.502}]
    st = plateau_status(history, "val/acc", 3, 0.01)
    assert st["reached"] and st["epoch"] == 5 and st["moved"] == pytest.approx(0.002)
    assert not plateau_status(history[:4], "val/acc", 3, 0.01)["reached"]
    with pytest.raises(ValueError, match="at least 2"):
        plateau_epoch([1.0, 1.0], 1, 0.1)


def test_config_checks_the_rule():
    with pytest.raises(ConfigError, match="plateau_window"):
        load_config(None, {"trainer.plateau_window": 1})
    with pytest.raises(ConfigError, match="plateau_tolerance"):
        load_config(None, {"trainer.plateau_tolerance": -0.1})


def _run(variant, seed, final, reached, epoch=None):
    return {"variant": variant, "seed": seed, "status": "completed", "final": {"val/acc": final},
            "task": {"monitor": {"name": "acc", "label": "top-1", "higher_is_better": True, "unit": "%",
                                 "scale": 100.0, "digits": 2, "key": "val/acc", "mode": "max"}},
            "plateau": {"reached": reached, "epoch": epoch, "window": 3, "tolerance": 0.005,
                        "moved": 0.001, "stop": True}}


def test_report_says_which_runs_reached_it():
    runs = [_run("baseline", 0, 0.5, True, 7), _run("baseline", 1, 0.52, False),
            _run("frozen-lm", 0, 0.51, True, 6), _run("frozen-lm", 1, 0.5, True, 8)]
    table = markdown_table(summarize(runs, ["baseline", "frozen-lm"]))
    assert "| plateau |" in table
    assert "| 1/2 (epoch 7) |" in table and "| 2/2 (epoch 6, 8) |" in table
    assert "moved less than 0.50% over their last 3 validated epochs" in table


def test_the_report_says_runs_stop_at_their_plateau_only_when_they_do():
    from lm4vis.train.report import render_markdown

    runs = [_run("baseline", 0, 0.5, True, 7), _run("frozen-lm", 0, 0.51, False)]
    said = render_markdown(summarize(runs, ["baseline", "frozen-lm"]), {})
    assert "a run stops early once the plateau rule below holds" in said and "no early stopping" not in said
    for r in runs:
        r["plateau"]["stop"] = False
    said = render_markdown(summarize(runs, ["baseline", "frozen-lm"]), {})
    assert "no early stopping" in said and "stops early" not in said


def test_the_demo_reading_counts_the_runs_on_their_plateau():
    from lm4vis.train.demo import reading

    runs = [_run("baseline", 0, 0.5, True, 7), _run("baseline", 1, 0.52, False),
            _run("frozen-lm", 0, 0.51, True, 6), _run("frozen-lm", 1, 0.5, True, 8)]
    for r in runs:
        r["plateau"]["min_epochs"] = 6
    cfg = load_config("demo", {"trainer.max_epochs": 9})
    said = reading(runs, summarize(runs, ["baseline", "frozen-lm"]), cfg, quick=False)
    assert "up to 9 epochs (stopping at the plateau rule)" in said
    assert ("3 of 4 runs reached the plateau (top-1 moving less than 0.5% over 3 epochs, judged from "
            "epoch 6); the others are still moving") in said
    for r in runs:
        r["plateau"]["reached"] = True
    said = reading(runs, summarize(runs, ["baseline", "frozen-lm"]), cfg, quick=False)
    assert "4 of 4 runs reached the plateau" in said and "still moving" not in said


@pytest.mark.slow
def test_a_run_stops_at_its_plateau(tiny_cfg):
    from lm4vis.train.run import train

    # A tolerance no change reaches: the rule holds after 2 validated epochs, of 4.
    cfg = tiny_cfg.replace({"trainer.max_epochs": 4, "trainer.stop_at_plateau": True, "data.limit_train": 32,
                            "data.limit_val": 16, "trainer.plateau_window": 2, "trainer.plateau_tolerance": 10.0,
                            "run_name": "p"})
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["plateau"]["reached"] and summary["plateau"]["epoch"] == 2 and summary["plateau"]["stop"]
    off = train(cfg.replace({"trainer.stop_at_plateau": False, "trainer.max_epochs": 2, "run_name": "q"}))
    assert off["epochs"] == 2 and off["plateau"]["reached"] and not off["plateau"]["stop"]
