"""`lm4vis demo --task vqa` and `lm4vis analyze` on a VQA run, at a tiny budget: the three variants,
the language-only and image-only controls, the blind prior in the reading, per-question-type
accuracies in the report, and the token-map analysis against the objects the questions name."""

from __future__ import annotations

import json

import pytest

from lm4vis.cli import main
from lm4vis.train.demo import DEMO_TASKS, demo_config

TINY = ["host.image.kwargs={embed_dim: 24, depth: 1, num_heads: 2}", "host.image.img_size=32",
        "host.image.patch_size=16", "host.text.embed_dim=16", "host.text.num_heads=2", "host.embed_dim=24",
        "host.num_heads=2", "data.num_train=64", "data.num_val=28", "data.batch_size=16",
        "trainer.max_epochs=1"]


def test_the_vqa_row_names_its_presets_and_controls():
    row = DEMO_TASKS["vqa"]
    cfg = demo_config(task="vqa")
    assert (row.preset, cfg.host.kind, cfg.data.name, cfg.task.name) == ("vqa-demo", "fusion-vqa", "shapes-vqa", "vqa")
    assert [(c.label, c.cell()[1]) for c in row.controls] == [
        ("language-only", {"block.variant": "baseline", "data.blind": "image"}),
        ("image-only", {"block.variant": "baseline", "data.blind": "text"})]
    assert demo_config(quick=True, task="vqa").data.num_train < cfg.data.num_train


@pytest.mark.slow
def test_demo_and_analyze_on_tiny_vqa_runs(tmp_path, tiny_llama, capsys):
    code = main(["demo", "--task", "vqa", *TINY, f"block.source={tiny_llama}", "--seeds", "0",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    said = " ".join(out.split())  # the reading is wrapped
    assert "For scale, the blind prior" in said and "The language-only control (every image replaced by zeros)" in said
    for words in ("| baseline |", "| frozen-lm |", "| mlp |", "| language-only |", "| image-only |",
                  "VQA accuracy", "| shape (%) ↑ |", "| closest (%) ↑ |"):
        assert words in out, words
    folder = tmp_path / "demo-shapes-vqa"
    results = json.loads((folder / "results.json").read_text())
    assert [r["variant"] for r in results["summary"]["rows"]] == ["baseline", "frozen-lm", "mlp", "language-only",
                                                                  "image-only"]
    prior = results["reference"]["metrics"]
    # the preset asks two question types: the prior is given for those, and only those
    assert results["reference"]["scenes"] == 28 and set(prior) == {"val/acc", "val/acc/shape", "val/acc/closest"}
    assert (folder / "frozen-lm-s0" / "tokenizer" / "tokenizer.json").is_file()

    code = main(["analyze", str(folder / "frozen-lm-s0"), "--against", str(folder / "baseline-s0"),
                 "--split", "val", "--calib-split", "test", "--num-images", "28", "--batch-size", "14",
                 "--num-examples", "3", "--out", str(tmp_path / "maps")])
    out = capsys.readouterr().out
    assert code == 0
    for words in ("| frozen-lm (visual) | amp@visual | named |", "| baseline | l2@fused | evidence |",
                  "paired difference", "vqa_maps.png"):
        assert words in out, words
    saved = json.loads((tmp_path / "maps" / "analysis.json").read_text())
    rows = {(r["model"], r["map"], r["target"], r["against"]): r for r in saved["rows"]}
    named = rows[("frozen-lm (visual)", "l2@visual", "named", "vs-rest")]
    assert 0 < named["questions"] <= 28 and 0.0 <= named["mean"] <= 1.0
    # questions about the leftmost object or a count name no object: only those that do are scored
    assert rows[("baseline", "l2@visual", "named", "vs-rest")]["questions"] == named["questions"]
    assert not any(k[0] == "baseline" and k[1].startswith("amp@") for k in rows)  # no block, no amplification
    assert (tmp_path / "maps" / "vqa_maps.png").stat().st_size > 1000
