"""End to end on a model whose LM block is known to amplify exactly the foreground tokens."""

import pytest
import torch
from analysis_helpers import SIZES, indicator_inputs, indicator_model, patch_aligned_masks

from lm4vis.analysis import AnalysisConfig, collect, compare, evaluate, layout_of
from lm4vis.analysis.runner import ALL_FG, RANDOM, REFERENCE
from lm4vis.hosts import detach


def analyse(model, img, patch, n=24):
    cfg = AnalysisConfig(num_boot=500)
    layout = layout_of(model)
    ev_masks = patch_aligned_masks(n, img, patch, seed=0)
    cal_masks = patch_aligned_masks(n, img, patch, seed=1)
    ev = collect(model, [(indicator_inputs(ev_masks, 0), ev_masks)], layout, cfg)
    cal = collect(model, [(indicator_inputs(cal_masks, 1), cal_masks)], layout, cfg)
    return evaluate("model", ev, cal, cfg), cfg


@pytest.mark.parametrize("img,patch", SIZES)
def test_amplified_tokens_give_perfect_pseudo_masks(img, patch):
    rows, _ = analyse(indicator_model(img, patch), img, patch)
    by_map = {r.map: r for r in rows}
    post = by_map["l2@post_lm"]
    assert post.best.mean == 1.0 and post.fixed.mean == 1.0 and post.best.lo == 1.0
    assert post.auroc == 1.0
    # before the block the indicator is drowned by the noise channels: far from perfect
    assert by_map["l2@pre_proj_in"].best.mean < 0.5
    assert by_map["l2@pre_proj_in"].auroc < 0.7
    # the reference rows are there and below the amplified map
    refs = {r.map: r for r in rows if r.model == REFERENCE}
    assert refs[RANDOM].fixed.mean < 0.4 and refs[ALL_FG].best.mean < 0.4


def test_paired_difference_against_the_host_without_block():
    img, patch = 32, 4
    model = indicator_model(img, patch)
    rows, cfg = analyse(model, img, patch)
    detach(model)  # the same host, no block: the baseline
    base_rows, _ = analyse(model, img, patch)
    deltas = {(d.map, d.protocol): d for d in compare(rows, base_rows, cfg)}
    d = deltas[("l2@post_lm", "fixed")]
    assert d.against == "l2@last_block"
    base_iou = {r.map: r for r in base_rows}["l2@last_block"].fixed.mean
    assert d.diff.mean == pytest.approx(1.0 - base_iou)
    assert d.diff.lo > 0.3
    assert not any(".h" in m for m, _ in deltas)  # per-head maps have no counterpart


def test_dataset_without_masks_is_a_clear_error():
    from lm4vis.analysis import batches_from

    items = [(torch.zeros(1, 8, 8, dtype=torch.uint8), 0)]
    with pytest.raises(ValueError, match="with_masks=True"):
        list(batches_from(items, lambda x: x.float()))
