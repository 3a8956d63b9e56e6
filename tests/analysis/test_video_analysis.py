"""`analyze_runs` on video runs: tiny VideoMAE runs on motion-mnist, scored against the
object's mask in every frame, with the frames x grid layout and frames drawn side by side."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lm4vis.analysis import AnalyzeOptions
from lm4vis.analysis.api import analyze_runs
from lm4vis.analysis.layout import GridLayout, _frames_side_by_side
from lm4vis.analysis.runner import INTENSITY, REFERENCE, collect
from lm4vis.cli import main

# Two 1-step trainings in the fixture.
pytestmark = pytest.mark.slow

TINY = ["host.num_frames=4", "host.image_size=16", "host.patch_size=8", "host.tubelet_size=2",
        "host.embed_dim=16", "host.depth=1", "host.num_heads=2", "data.batch_size=4", "data.source=shapes",
        "data.num_train=8", "data.num_val=12", "trainer.max_epochs=1", "trainer.max_steps=1",
        "trainer.limit_val_batches=1", "trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def video_runs(tmp_path_factory, tiny_llama):
    out = tmp_path_factory.mktemp("video_runs")
    for variant in ("frozen-lm", "baseline"):
        argv = ["train", "--config", "video-demo", *TINY, f"block.variant={variant}",
                f"block.source={tiny_llama}", "--out", str(out), "--run-name", variant]
        assert main(argv) == 0
    return out / "frozen-lm", out / "baseline"


def test_analyze_video_runs_scores_token_maps_against_per_frame_masks(video_runs, tmp_path):
    run, base = video_runs
    opts = AnalyzeOptions(num_images=12, batch_size=5, num_examples=2, out=str(tmp_path / "a"))
    result = analyze_runs(run, base, opts)
    rows = {(r.model, r.map): r for r in result["rows"]}
    for key in (("frozen-lm", "l2@post_lm"), ("baseline", "l2@last_block"), (REFERENCE, INTENSITY)):
        for est in (rows[key].best, rows[key].fixed):
            assert math.isfinite(est.mean) and 0.0 <= est.mean <= 1.0 and est.n == 12
    assert any(d.map == "l2@post_lm" for d in result["deltas"])
    out = result["out"]
    assert (out / "grid.png").stat().st_size > 0 and (out / "activation_hist.png").stat().st_size > 0
    assert json.loads((out / "analysis.json").read_text())["meta"]["data"] == "motion-mnist"


def test_video_batches_carry_a_mask_per_frame_and_a_frames_by_grid_layout(video_runs):
    from lm4vis.train.datamodule import build_source
    from lm4vis.train.loading import load_run

    model, cfg = load_run(video_runs[0], "last.ckpt")
    source = build_source(cfg)
    batches = list(source.analysis_batches("test", 6, 4))
    clips, masks = batches[0]
    assert clips.shape == (4, 1, 4, 16, 16) and masks.shape == (4, 4, 16, 16) and masks.dtype == torch.bool
    c = collect(model, batches, lambda x: GridLayout(0, tuple(model.grid)))
    assert c.layout.grid == (2, 2, 2) and c.coverage.shape == (6, 8)
    # A token's coverage is its tubelet's share of mask pixels, over its frames and patch.
    first = masks[0, 0:2, 0:8, 0:8].float().mean()
    assert torch.isclose(c.coverage[0, 0], first)
    with pytest.raises(ValueError, match="no per-frame object masks"):
        source.analysis_batches("test", 6, 4, name="ssv2")


def test_frames_are_drawn_side_by_side():
    video = torch.arange(3 * 2 * 5, dtype=torch.float32).reshape(3, 2, 5)  # T=3 frames of 2 x 5
    wide = _frames_side_by_side(video)
    assert wide.shape == (2, 3 * 5 + 2)
    assert torch.equal(wide[:, 6:11], video[1]) and (wide[:, 5] == video.max()).all()
    image = torch.rand(4, 4)
    assert _frames_side_by_side(image) is image
