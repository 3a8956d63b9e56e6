"""`lm4vis analyze` on motion runs: the vectornet host's registered layout and analysis, end to end
on two tiny runs trained by the engine on the simulator, and the per-scene scores by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lm4vis.analysis.layout import FOCAL_PROXIMITY, PolylineLayout, layout_of
from lm4vis.analysis.motion import scene_top1
from lm4vis.cli import main

#: The motion preset at a size that trains two steps in seconds; no scene cache on disk.
TINY = ["host.embed_dim=32", "host.subgraph_depth=2", "host.num_heads=2", "data.num_train=16",
        "data.num_val=24", "data.batch_size=8", "data.cache=false", "data.keep_in_memory=false",
        "trainer.max_steps=2", "trainer.max_epochs=1", "trainer.progress_bar=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_llama):
    from lm4vis.train import load_config, train

    tmp = tmp_path_factory.mktemp("motion-analyze")
    out = {}
    for variant in ("baseline", "frozen-lm"):
        cfg = load_config("motion-demo", [f"block.variant={variant}", f"block.source={tiny_llama}", *TINY,
                                          f"out_dir={tmp / 'runs'}"])
        out[variant] = Path(train(cfg)["run_dir"])
    return out


def test_scene_top1_by_hand():
    # scene 0: the focal polyline (9) is ignored; the top other one (5) is relevant -> 1.
    # scene 1: the top other one (3) is not relevant -> 0. scene 2: nothing irrelevant -> NaN.
    scores = torch.tensor([[9.0, 5.0, 3.0], [9.0, 1.0, 3.0], [0.0, 1.0, 2.0]])
    relevant = torch.tensor([[False, True, False], [False, True, False], [False, True, True]])
    real = torch.ones(3, 3, dtype=torch.bool)
    out = scene_top1(scores, relevant, real)
    assert out[:2].tolist() == [1.0, 0.0] and math.isnan(out[2].item())


def test_polyline_layout_joins_batches_and_measures_proximity():
    from lm4vis.data.motion.vectorize import FEATURES

    x, y = FEATURES.index("x_end"), FEATURES.index("y_end")
    vectors = torch.zeros(1, 3, 2, len(FEATURES))
    vectors[0, 1, :, [x, y]] = torch.tensor([[3.0, 4.0], [30.0, 40.0]])  # nearest end 5 m away
    vectors[0, 2, 0, [x, y]] = torch.tensor([6.0, 8.0])  # 10 m; its second vector is padding
    vector_mask = torch.tensor([[[False, False], [False, False], [False, True]]])
    lay = PolylineLayout(torch.tensor([[False, False, False]]), vector_mask)
    name, ref = lay.reference(vectors)
    assert name == FOCAL_PROXIMITY and ref[0, 1:].tolist() == [-5.0, -10.0]
    other = PolylineLayout(torch.tensor([[False, False, False, False, True]]), torch.zeros(1, 5, 3, dtype=torch.bool))
    both = PolylineLayout.concat([lay, other])
    assert both.polyline_mask.shape == (2, 5) and both.polyline_mask[0, 3:].all()  # padded as padding
    assert both.vector_mask.shape == (2, 5, 3) and both.vector_mask[0, :, 2].all()
    assert both.take(1).num_patches == 5
    assert both.coverage(torch.ones(2, 5, dtype=torch.bool))[1].tolist() == [1, 1, 1, 1, 0]


@pytest.mark.slow
def test_analyze_a_motion_run_against_its_baseline(runs, tmp_path, capsys):
    from lm4vis.train.loading import load_run

    out = tmp_path / "an"
    rc = main(["analyze", str(runs["frozen-lm"]), "--against", str(runs["baseline"]),
               "--num-images", "24", "--batch-size", "8", "--num-examples", "2", "--out", str(out)])
    assert rc == 0
    for name in ("analysis.md", "analysis.json", "scenes.png"):
        assert (out / name).stat().st_size > 1000, name
    result = json.loads((out / "analysis.json").read_text())
    assert result["meta"]["split"] == "val" and result["meta"]["num_scenes"] == 24
    assert result["meta"]["grid_map"] == "l2@post_lm" and result["meta"]["ground_truth"] is True
    rows = {(r["model"], r["map"]): r for r in result["rows"]}
    assert {("frozen-lm", "l2@post_lm"), ("frozen-lm", "focal-attn@lm_attn.0"), ("baseline", "l2@last_block"),
            ("reference", FOCAL_PROXIMITY), ("reference", "random")} <= set(rows)
    for r in result["rows"]:
        assert 0 < r["auroc"]["n"] <= 24 and 0.0 <= r["auroc"]["mean"] <= 1.0 and 0.0 <= r["top1"]["mean"] <= 1.0
    # The simulator's deciding polylines lie near the focal agent: geometry alone beats chance.
    assert rows[("reference", FOCAL_PROXIMITY)]["auroc"]["mean"] > 0.6
    assert rows[("reference", "random")]["auroc"]["mean"] == 0.5
    delta = {(d["map"], d["against"]): d for d in result["deltas"]}[("l2@post_lm", "l2@last_block")]
    gap = rows[("frozen-lm", "l2@post_lm")]["auroc"]["mean"] - rows[("baseline", "l2@last_block")]["auroc"]["mean"]
    assert delta["auroc"]["mean"] == pytest.approx(gap)  # paired over the same scenes
    printed = capsys.readouterr().out
    assert "| frozen-lm | l2@post_lm |" in printed and f"wrote {out}" in printed
    # The layout the analysis drew with is the host's registered one.
    model, _ = load_run(runs["baseline"])
    from lm4vis.data.motion import SimTraffic, SimTrafficDataConfig

    sim = SimTraffic(SimTrafficDataConfig(num_val=2, cache=False), "val")
    assert isinstance(layout_of(model, sim.collate([sim[0], sim[1]])), PolylineLayout)


@pytest.mark.slow
def test_analyze_a_motion_run_alone(runs, tmp_path):
    out = tmp_path / "alone"
    assert main(["analyze", str(runs["baseline"]), "--num-images", "8", "--num-examples", "1", "--out", str(out)]) == 0
    result = json.loads((out / "analysis.json").read_text())
    assert result["meta"]["grid_map"] == "l2@last_block" and result["deltas"] == []
    assert {r["model"] for r in result["rows"]} == {"baseline", "reference"}
