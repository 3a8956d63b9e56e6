"""docs/extending.md runs as written: its plugin (a host, a task and a dataset of the user's own,
with variable-length padded tokens and a lower-is-better metric) goes through train, compare and
sweep without a line of lm4vis changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lm4vis.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _block(text: str, lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"docs/extending.md has no {lang} block"
    return blocks[0]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    text = DOC.read_text()
    (tmp_path / "toy_plugin.py").write_text(_block(text, "python"))
    (tmp_path / "toy.yaml").write_text(_block(text, "yaml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


TINY = ["data.num_train=96", "data.num_val=64", "trainer.max_epochs=2"]


@pytest.mark.slow
def test_the_documented_plugin_trains_compares_and_sweeps(plugin_dir, tiny_llama):
    lm = f"block.source={tiny_llama}"
    assert main(["train", "--config", "toy.yaml", lm, *TINY, "--out", "runs"]) == 0
    summary = json.loads((plugin_dir / "runs/toy-sets-frozen-lm-s0/summary.json").read_text())
    assert summary["status"] == "completed" and summary["host_kind"] == "set-encoder"
    monitor = summary["task"]["monitor"]
    assert (monitor["key"], monitor["higher_is_better"]) == ("val/mae", False)
    assert summary["best"]["val/mae"] == min(h["val/mae"] for h in summary["history"])  # min, not max
    assert all("val/median_ae" in h for h in summary["history"])  # the gathered metric
    saved = (plugin_dir / "runs/toy-sets-frozen-lm-s0/config.yaml").read_text()
    assert "toy_plugin" in saved and "set-encoder" in saved

    assert main(["compare", "--config", "toy.yaml", lm, *TINY, "--variants", "baseline,frozen-lm",
                 "--seeds", "0,1", "--out", "runs", "--name", "cmp"]) == 0
    report = (plugin_dir / "runs/cmp/report.md").read_text()
    assert "MAE mean" in report and "lower is better" in report
    results = json.loads((plugin_dir / "runs/cmp/results.json").read_text())
    diff = results["summary"]["paired_differences"][0]
    stats, verdict = diff["diff"], diff["verdict"]
    if stats["ci_high"] is not None and stats["ci_high"] < 0:  # frozen-lm's MAE lower: better
        assert verdict == "better"
    elif stats["ci_low"] is not None and stats["ci_low"] > 0:
        assert verdict == "worse"

    assert main(["sweep", "--config", "toy.yaml", lm, *TINY, "--kind", "layer", "--every", "1",
                 "--seeds", "0", "--out", "runs", "--name", "sw"]) == 0
    sweep = json.loads((plugin_dir / "runs/sw/results.json").read_text())
    assert [r["variant"] for r in sweep["summary"]["rows"]] == ["baseline", "layer-0", "layer-1"]

    assert main(["demo", "--config", "toy.yaml", lm, *TINY, "--seeds", "0,1", "--out", "runs"]) == 0
    demo = json.loads((plugin_dir / "runs/demo-toy-sets/results.json").read_text())
    assert [r["variant"] for r in demo["summary"]["rows"]] == ["baseline", "frozen-lm", "mlp"]
    assert "MAE" in demo["reading"] and "top-1" not in demo["reading"]


def test_plugin_overrides_are_typed_by_the_plugins_classes(plugin_dir):
    from lm4vis.train.config import ConfigError, load_config

    cfg = load_config("toy.yaml", ["host.width=64", "data.max_tokens=20"])
    assert (cfg.host.width, cfg.data.max_tokens) == (64, 20)
    with pytest.raises(ConfigError, match="valid keys of host: kind, width, depth, num_heads"):
        load_config("toy.yaml", ["host.widht=64"])
    with pytest.raises(ConfigError, match="host.width='wide' must be an integer"):
        load_config("toy.yaml", ["host.width=wide"])


def test_padding_changes_no_prediction_of_the_documented_host(plugin_dir, tiny_llama):
    """The mask reaches the frozen block through the slot: extra padding tokens change nothing."""
    import torch

    from lm4vis.hosts import build_model
    from lm4vis.train.config import load_config
    from lm4vis.train.datamodule import build_source

    cfg = load_config("toy.yaml", [f"block.source={tiny_llama}"])
    model = build_model(cfg.host, cfg.block, seed=0, info=build_source(cfg).info).eval()
    assert model.lm_slot.filled
    tokens = torch.randn(2, 5, 3)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    padded = torch.cat([tokens, torch.randn(2, 4, 3)], dim=1)
    padded_mask = torch.cat([mask, torch.ones(2, 4, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, mask), model(padded, padded_mask), atol=1e-5, rtol=1e-5)
