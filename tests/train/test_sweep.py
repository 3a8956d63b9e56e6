"""lm4vis sweep: the cells of each kind, a small sweep end to end, and resuming a killed one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lm4vis.train import sweep as sweep_mod
from lm4vis.train.config import ConfigError
from lm4vis.train.sweep import layer_indices, sweep, sweep_cells


@pytest.mark.parametrize("n, every, expected", [
    (30, 5, [0, 5, 10, 15, 20, 25, 29]),
    (30, 10, [0, 10, 20, 29]),
    (2, 1, [0, 1]),
    (1, 3, [0]),
])
def test_layer_indices_first_to_last(n, every, expected):
    assert layer_indices(n, every) == expected


def test_cells_of_each_kind(tiny_cfg):
    layer = sweep_cells("layer", tiny_cfg, every=1)
    assert [c.label for c in layer] == ["baseline", "layer-0", "layer-1"]
    assert layer[2].overrides == {"block.variant": "frozen-lm", "block.layers": "1", "block.where": "last"}
    placement = sweep_cells("placement", tiny_cfg)
    assert [(c.overrides.get("block.where"), c.overrides.get("block.layers")) for c in placement[1:]] == [
        ("first", "-1"), ("middle", "-1"), ("last", "-1"), ("last", "-2:")]
    llm = sweep_cells("llm", tiny_cfg, llms=(tiny_cfg.block.source, "random-lm", "mlp"), with_baseline=False)
    assert [c.overrides["block.variant"] for c in llm] == ["frozen-lm", "random-lm", "mlp"]
    with pytest.raises(ConfigError, match="layer, placement, llm"):
        sweep_cells("depth", tiny_cfg)
    with pytest.raises(ConfigError, match="--every"):
        sweep_cells("layer", tiny_cfg, every=0)


def test_llm_sweep_skips_names_that_are_not_installed(tiny_cfg, monkeypatch):
    monkeypatch.setattr(sweep_mod.registry, "available", lambda: [])
    cells = sweep_cells("llm", tiny_cfg, llms=("smollm2-135m", "mlp"), with_baseline=False)
    assert [c.label for c in cells] == ["mlp"]


@pytest.mark.slow
def test_layer_sweep_end_to_end_and_resume(tiny_cfg, factory, monkeypatch):
    import lm4vis.train.compare as compare_mod

    cfg = tiny_cfg.replace({"trainer.max_epochs": 1})
    real_train = compare_mod.train
    calls: list[str] = []

    def killed_on_third_run(run_cfg, **kw):
        calls.append(run_cfg.run_name)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real_train(run_cfg, **kw)

    monkeypatch.setattr(compare_mod, "train", killed_on_third_run)
    with pytest.raises(KeyboardInterrupt):
        sweep(cfg, "layer", seeds=[0], every=1)
    assert calls == ["baseline-s0", "layer-0-s0", "layer-1-s0"]

    # Started again, the two finished runs are kept and only the third one trains.
    import lm4vis.train.run as run_mod

    fits = []
    real_fit = run_mod._fit
    monkeypatch.setattr(compare_mod, "train", real_train)
    monkeypatch.setattr(run_mod, "_fit", lambda *a, **k: fits.append(a) or real_fit(*a, **k))
    res = sweep(cfg, "layer", seeds=[0], every=1)
    assert len(fits) == 1
    out = Path(res["out_dir"])
    assert out.name == "sweep-layer"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["baseline-s0", "layer-0-s0", "layer-1-s0"]
    assert (out / "sweep.png").stat().st_size > 1000 and (out / "report.md").exists()
    results = json.loads((out / "results.json").read_text())
    assert [r["variant"] for r in results["summary"]["rows"]] == ["baseline", "layer-0", "layer-1"]
    assert all(r["status"] == "completed" for r in results["runs"])


def test_sweep_cli_help(capsys):
    from lm4vis.cli import main

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert "placement" in out and "--every" in out and "Table D" in out
