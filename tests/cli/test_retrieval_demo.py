"""Retrieval through the engine and the CLI: a tiny dual encoder trained on shapes-captions,
R@K in both directions in the summary, the tokeniser saved with the run and used again when the
run is loaded, and `lm4vis demo --task retrieval` at a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lm4vis.cli import main
from lm4vis.train.config import load_config
from lm4vis.train.demo import DEMO_TASKS, demo_config

TINY = ["host.image.img_size=16", "host.image.patch_size=8", "host.image.kwargs.embed_dim=24",
        "host.image.kwargs.depth=1", "host.image.kwargs.num_heads=2", "host.text.embed_dim=16",
        "host.text.depth=1", "host.text.num_heads=2", "host.embed_dim=16", "data.num_train=8",
        "data.num_val=6", "data.batch_size=8", "trainer.max_epochs=1"]
RECALLS = [f"val/{d}_r{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)]


def test_the_retrieval_row_names_its_presets() -> None:
    row = DEMO_TASKS["retrieval"]
    cfg = demo_config(task="retrieval")
    assert (row.preset, cfg.host.kind, cfg.data.name, cfg.task.name) == (
        "retrieval-demo", "dual-encoder", "shapes-captions", "retrieval")
    assert cfg.block.where == "image_lm_slot" and cfg.task.monitor == "rmean"
    quick = demo_config(quick=True, task="retrieval")
    assert quick.data.num_train < cfg.data.num_train
    assert set(RECALLS) <= {f"val/{m}" for m in row.metrics} | {"val/rmean"}


@pytest.mark.slow
def test_train_scores_the_whole_split_and_reloads_with_its_tokeniser(tmp_path: Path, tiny_llama: str) -> None:
    from lm4vis.train.loading import load_run

    code = main(["train", "--config", "retrieval-demo-quick", *TINY, f"block.source={tiny_llama}",
                 "block.where=image_lm_slot,text_lm_slot", f"out_dir={tmp_path}", "run_name=r"])
    assert code == 0
    run = tmp_path / "r"
    summary = json.loads((run / "summary.json").read_text())
    final = summary["final"]
    for key in [*RECALLS, "val/rmean", "val/rsum", "val/loss"]:
        assert key in final, key
    assert all(0.0 <= final[k] <= 1.0 for k in RECALLS)
    assert final["val/t2i_r10"] >= final["val/t2i_r5"] >= final["val/t2i_r1"]
    assert final["val/t2i_r10"] == 1.0  # 6 validation images: every caption's image is in the top 10
    assert set(summary["params"]["block"]) == {"image_lm_block", "text_lm_block"}
    assert (run / "tokenizer" / "tokenizer.json").is_file()
    model, cfg = load_run(run, "last.ckpt")
    assert cfg.block.where == "image_lm_slot,text_lm_slot" and model.image_lm_slot.filled and model.text_lm_slot.filled
    # the loaded model scores the validation split as the run did
    from lm4vis.tasks.base import build_task
    from lm4vis.train.datamodule import build_source

    source = build_source(cfg, run)
    task = build_task(cfg, source.info)
    val = source.dataset("val", train=False)
    batch = task.collate([val[i] for i in range(len(val))])
    with torch.no_grad():
        gathered = task.batch_outputs(*task.forward(model, batch, train=False))
    assert task.gathered_metrics(gathered)["rmean"] == pytest.approx(final["val/rmean"], abs=1e-6)


def test_quick_preset_resolves() -> None:
    cfg = load_config("retrieval-demo-quick")
    assert cfg.data.image_size == cfg.host.image.img_size


@pytest.mark.slow
def test_demo_task_retrieval_tiny(tmp_path: Path, tiny_llama: str, capsys) -> None:
    code = main(["demo", "--task", "retrieval", *TINY, f"block.source={tiny_llama}", "--seeds", "0,1",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for words in ("| baseline |", "| frozen-lm |", "| mlp |", "R-mean mean (%)", "image→text R@1",
                  "text→image R@10", "random ranking"):
        assert words in out, words
