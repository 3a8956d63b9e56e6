"""Pseudo-masks, IoU and their summaries: definitions, edge cases and the chance level."""

import itertools

import pytest
import torch
from analysis_helpers import patch_aligned_masks

from lm4vis.analysis import (
    THRESHOLDS, GridLayout, all_foreground_iou, auroc, choose_threshold, iou, iou_table, mean_ci,
    normalize, protocol_values, pseudo_masks, random_scores,
)

IOU_CASES = [
    # (pred, gt, expected)
    ([1, 1, 0, 0], [1, 1, 0, 0], 1.0),
    ([1, 0, 0, 0], [1, 1, 0, 0], 0.5),
    ([1, 1, 1, 1], [1, 0, 0, 0], 0.25),
    ([0, 0, 1, 1], [1, 1, 0, 0], 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 1.0),  # nothing to find, nothing found
    ([0, 0, 0, 0], [0, 1, 0, 0], 0.0),
]


@pytest.mark.parametrize("pred,gt,expected", IOU_CASES)
def test_iou(pred, gt, expected):
    p = torch.tensor(pred, dtype=torch.bool).view(1, 2, 2)
    g = torch.tensor(gt, dtype=torch.bool).view(1, 2, 2)
    assert float(iou(p, g)) == expected


def test_normalize_is_min_max_per_image_and_zero_for_constant_maps():
    out = normalize(torch.tensor([[2.0, 4.0, 3.0], [5.0, 5.0, 5.0]]))
    assert torch.equal(out, torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]))


def test_pseudo_masks_threshold_then_upsample():
    layout = GridLayout(0, (2, 2))
    scores = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    masks = pseudo_masks(scores, layout, (4, 4), (0.2, 0.6))
    assert masks.shape == (2, 1, 4, 4)
    assert masks[0].sum() == 12 and masks[1].sum() == 4  # 3 patches >= 0.2, 1 patch >= 0.6
    assert masks[1, 0, 2:, 2:].all()


def test_protocols_and_threshold_choice():
    ious = torch.tensor([[0.1, 0.9, 0.2], [0.8, 0.3, 0.2]])
    assert torch.equal(protocol_values(ious, "best"), torch.tensor([0.9, 0.8]))
    assert choose_threshold(ious) == 1  # column means 0.45, 0.6, 0.2
    assert torch.equal(protocol_values(ious, "fixed", 1), torch.tensor([0.9, 0.3]))
    assert choose_threshold(torch.tensor([[0.5, 0.5, 0.1]])) == 0  # a tie: the lower threshold
    with pytest.raises(ValueError, match="threshold_index"):
        protocol_values(ious, "fixed")


def test_all_foreground_iou_is_the_mask_area():
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, :2] = True
    masks[1, 0, 0] = True
    assert torch.equal(all_foreground_iou(masks), torch.tensor([0.5, 1 / 16]))


def test_bootstrap_interval_is_reproducible_and_brackets_the_mean():
    values = torch.rand(200, generator=torch.Generator().manual_seed(3))
    a, b = mean_ci(values, seed=0), mean_ci(values, seed=0)
    assert a == b
    assert a.lo < a.mean < a.hi and a.n == 200
    # the interval of a mean of U(0,1) over 200 draws: about +-1.96 * 0.289 / sqrt(200) = 0.04
    assert 0.06 < a.hi - a.lo < 0.10
    point = mean_ci(torch.full((10,), 0.3))
    assert point.lo == pytest.approx(0.3) and point.hi == pytest.approx(0.3)


def test_auroc_matches_pairwise_counting():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (40,), generator=g).float()  # many ties
    labels = torch.rand(40, generator=g) < 0.4
    pos, neg = scores[labels], scores[~labels]
    wins = sum(float(p > n) + 0.5 * float(p == n) for p, n in itertools.product(pos, neg))
    assert auroc(scores, labels) == pytest.approx(wins / (len(pos) * len(neg)))
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([False, True])) == 1.0


@pytest.mark.parametrize("t_index", [2, 4, 6])
def test_random_map_scores_chance(t_index):
    """A random map's fixed-threshold mIoU is the expected IoU of a random mask of the same
    foreground rate, measured here by drawing such masks independently."""
    img, patch, n = 32, 4, 600
    layout = GridLayout(1, (8, 8))
    masks = patch_aligned_masks(n, img, patch, seed=0)
    ious = iou_table(random_scores(n, 64, seed=1), masks, layout)
    measured = float(protocol_values(ious, "fixed", t_index).mean())
    # reference: each token foreground with probability 1 - t, independent of the mask
    p = 1.0 - THRESHOLDS[t_index]
    g = torch.Generator().manual_seed(2)
    tokens = torch.rand(n, 64, generator=g) < p
    random_masks = layout.render(tokens.float(), (img, img)) > 0.5
    expected = float(iou(random_masks, masks).mean())
    assert measured == pytest.approx(expected, abs=0.03)
    assert float(protocol_values(ious, "best").mean()) > measured  # best-of-9 is optimistic
