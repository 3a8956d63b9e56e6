"""`analyze_runs` on point-cloud runs: tiny Point-BERT runs on shapes3d, scored against its
per-point object masks, with the point layout's reference map and a scatter grid."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lm4vis.analysis import AnalyzeOptions
from lm4vis.analysis.api import analyze_runs
from lm4vis.analysis.layout import PointGroupLayout, concat_layouts, layout_of, take_layout
from lm4vis.analysis.runner import ALL_FG, CENTRE, INTENSITY, RANDOM, REFERENCE, collect
from lm4vis.cli import main

# Two 1-step trainings in the fixture: about 25 s on the shared 2-core machine.
pytestmark = pytest.mark.slow

TINY = [
    "host.num_groups=8", "host.group_size=8", "host.tokenizer_dims=[8,16,16]", "host.encoder_dim=16",
    "host.embed_dim=16", "host.depth=1", "host.num_heads=2", "host.pos_hidden_dim=8", "host.head_hidden_dim=16",
    "data.num_points=32", "data.batch_size=8", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
    "data.limit_train=16", "data.limit_val=16", "trainer.max_steps=1", "trainer.limit_val_batches=1",
]


@pytest.fixture(scope="module")
def point_runs(tmp_path_factory, tiny_llama):
    out = tmp_path_factory.mktemp("point_runs")
    for variant in ("frozen-lm", "baseline"):
        argv = ["train", "--config", "points-demo", *TINY, f"block.variant={variant}",
                f"block.source={tiny_llama}", "--out", str(out), "--run-name", variant]
        assert main(argv) == 0
    return out / "frozen-lm", out / "baseline"


def test_analyze_point_runs_scores_l2_maps_against_object_masks(point_runs, tmp_path):
    run, base = point_runs
    opts = AnalyzeOptions(num_images=12, batch_size=5, num_examples=3, out=str(tmp_path / "a"))
    result = analyze_runs(run, base, opts)
    rows = {(r.model, r.map): r for r in result["rows"]}
    for key in (("frozen-lm", "l2@post_lm"), ("frozen-lm", "l2@post_norm"), ("baseline", "l2@last_block")):
        r = rows[key]
        for est in (r.best, r.fixed):
            assert math.isfinite(est.mean) and 0.0 <= est.mean <= 1.0 and est.n == 12
    refs = {m for model, m in rows if model == REFERENCE}
    assert refs == {RANDOM, ALL_FG, CENTRE}  # patch intensity is an image reference
    assert 0.0 <= rows[(REFERENCE, RANDOM)].best.mean <= 1.0
    assert result["deltas"] and any(d.map == "l2@post_lm" for d in result["deltas"])
    out = result["out"]
    assert (out / "grid.png").stat().st_size > 0 and (out / "activation_hist.png").stat().st_size > 0
    md = (out / "analysis.md").read_text()
    assert f"`{CENTRE}`" in md and f"it replaces `{INTENSITY}`" in md and "shapes3d" in md
    assert json.loads((out / "analysis.json").read_text())["meta"]["num_images"] == 12


def test_each_batch_keeps_its_own_groups(point_runs):
    """FPS groups change from cloud to cloud: the joined layout holds every batch's assignment,
    so coverage and rendering use each cloud's own groups."""
    from lm4vis.train.loading import load_run
    from lm4vis.train.datamodule import build_source

    model, cfg = load_run(point_runs[0], "last.ckpt")
    source = build_source(cfg)
    batches = list(source.analysis_batches("test", 7, 3))
    c = collect(model, batches, lambda x: layout_of(model, x))
    assert isinstance(c.layout, PointGroupLayout) and c.layout.assignment.shape == (7, 32)
    points = torch.cat([p for p, _ in batches])
    whole = layout_of(model, points)  # FPS per cloud: the same groups as batch by batch
    assert torch.equal(c.layout.assignment, whole.assignment)
    assert torch.allclose(c.coverage, whole.coverage(c.masks))
    assert c.reference_name == CENTRE and c.reference.shape == (7, 8)
    assert take_layout(c.layout, 2).assignment.shape == (2, 32)
    with pytest.raises(ValueError, match="different numbers of groups"):
        concat_layouts([whole, PointGroupLayout(1, whole.assignment, 4)])
