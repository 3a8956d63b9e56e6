"""Pseudo-masks from maps, IoU against ground-truth masks, and honest summaries of it.

A map becomes a pseudo-mask the way Pang et al. describe (Sec. 5): normalise it to [0, 1] over
the image's patch tokens (min-max), keep the tokens ``>= t`` for t in 0.1, ..., 0.9, paint them
onto the mask's resolution (nearest), and compare with the foreground mask.

Two protocols turn the (image x threshold) IoU table into one number:

- ``best``: the best threshold *per image* (the paper's protocol; optimistic, because the
  threshold is chosen with the ground truth of the image it is scored on);
- ``fixed``: one threshold per map, chosen on a held-out calibration set (honest).

mIoU comes with a 95% percentile-bootstrap interval over images (fixed seed), and is read
against two baselines: a uniform random map (chance, under the same protocol) and the
"everything is foreground" mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .layout import Layout

THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
PROTOCOLS: tuple[str, ...] = ("best", "fixed")


def normalize(scores: Tensor) -> Tensor:
    """Min-max normalise each row of ``(B, P)`` to [0, 1]; a constant row becomes all 0
    (an uninformative map then predicts nothing rather than everything).

    Args:
        scores: per-token scores of each image.
    """
    scores = scores.float()
    lo = scores.min(dim=1, keepdim=True).values
    span = scores.max(dim=1, keepdim=True).values - lo
    return torch.where(span > 0, (scores - lo) / span.clamp_min(1e-12), torch.zeros_like(scores))


def pseudo_masks(
    scores: Tensor, layout: Layout, size: tuple[int, ...], thresholds: tuple[float, ...] = THRESHOLDS
) -> Tensor:
    """Binary masks ``(T, B, *size)``: normalised scores ``>= t`` rendered to ``size``.

    Args:
        scores: raw per-token scores ``(B, P)`` (normalised here).
        layout: renders tokens to the input's space.
        size: spatial shape of the ground-truth masks.
        thresholds: the T thresholds.
    """
    dense = layout.render(normalize(scores), tuple(size))
    t = torch.tensor(thresholds, dtype=dense.dtype).view(-1, *([1] * dense.dim()))
    return dense.unsqueeze(0) >= t


def iou(pred: Tensor, gt: Tensor) -> Tensor:
    """IoU over the trailing spatial axes; two empty masks count as a perfect match (1.0).

    Args:
        pred: bool ``(..., B, *S)``.
        gt: bool ``(B, *S)``, broadcast against ``pred``.
    """
    spatial = tuple(range(-(gt.dim() - 1), 0))
    inter = (pred & gt).sum(dim=spatial).float()
    union = (pred | gt).sum(dim=spatial).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def iou_table(
    scores: Tensor, masks: Tensor, layout: Layout, thresholds: tuple[float, ...] = THRESHOLDS
) -> Tensor:
    """IoU of every image at every threshold, ``(B, T)``.

    Args:
        scores: raw per-token scores ``(B, P)``.
        masks: ground-truth foreground ``(B, *S)`` (bool).
        layout: the host's token layout.
        thresholds: the T thresholds.
    """
    masks = masks.bool()
    pred = pseudo_masks(scores, layout, tuple(masks.shape[1:]), thresholds)
    return iou(pred, masks).transpose(0, 1)


def all_foreground_iou(masks: Tensor) -> Tensor:
    """IoU of the "everything is foreground" mask, per image ``(B,)``: the mask's area."""
    return masks.bool().flatten(1).float().mean(dim=1)


def random_scores(batch: int, num_patches: int, seed: int) -> Tensor:
    """Uniform random per-token scores ``(B, P)`` from a fixed seed: the chance map."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, num_patches, generator=g)


def choose_threshold(calib_ious: Tensor) -> int:
    """Index of the threshold with the highest mean IoU on the calibration images (the lowest
    threshold wins a tie).

    Args:
        calib_ious: ``(B, T)`` from `iou_table` on held-out images.
    """
    if calib_ious.numel() == 0:
        raise ValueError("no calibration images: cannot choose a fixed threshold")
    means = calib_ious.float().mean(dim=0)
    return int(torch.nonzero(means == means.max())[0, 0])


@dataclass(frozen=True)
class Estimate:
    """A mean over images with its confidence interval."""

    mean: float
    lo: float
    hi: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


def mean_ci(values: Tensor, level: float = 0.95, num_boot: int = 2000, seed: int = 0) -> Estimate:
    """Mean with a percentile-bootstrap interval over the values (images).

    Args:
        values: one number per image ``(B,)``.
        level: coverage of the interval.
        num_boot: bootstrap resamples.
        seed: resampling seed, fixed so reports are reproducible.
    """
    v = values.double().flatten()
    n = v.numel()
    if n == 0:
        raise ValueError("no values to average")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (num_boot, n), generator=g)
    boots = v[idx].mean(dim=1)
    alpha = (1.0 - level) / 2
    lo, hi = torch.quantile(boots, torch.tensor([alpha, 1.0 - alpha], dtype=boots.dtype)).tolist()
    return Estimate(float(v.mean()), float(lo), float(hi), n)


def protocol_values(ious: Tensor, protocol: str, threshold_index: int | None = None) -> Tensor:
    """Per-image IoU under a protocol, ``(B,)``.

    Args:
        ious: ``(B, T)`` table.
        protocol: ``best`` (max over thresholds per image) or ``fixed``.
        threshold_index: the calibrated threshold (``fixed`` only).
    """
    if protocol == "best":
        return ious.max(dim=1).values
    if protocol == "fixed":
        if threshold_index is None:
            raise ValueError("the fixed protocol needs a threshold_index from choose_threshold")
        return ious[:, threshold_index]
    raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``scores`` separating ``labels`` (True = positive): the
    probability that a random positive token scores above a random negative one (ties 1/2).

    Args:
        scores: any shape, flattened.
        labels: bool, same shape.
    """
    s, y = scores.double().flatten(), labels.bool().flatten()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Mann-Whitney U from average ranks, so ties count one half.
    order = s.argsort()
    ranks = torch.empty_like(s)
    ranks[order] = torch.arange(1, s.numel() + 1, dtype=s.dtype)
    uniq, inverse = torch.unique(s, return_inverse=True)
    sums = torch.zeros(uniq.numel(), dtype=s.dtype).scatter_add_(0, inverse, ranks)
    counts = torch.zeros(uniq.numel(), dtype=s.dtype).scatter_add_(0, inverse, torch.ones_like(s))
    avg = (sums / counts)[inverse]
    u = avg[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


__all__ = ["THRESHOLDS", "PROTOCOLS", "normalize", "pseudo_masks", "iou", "iou_table",
           "all_foreground_iou", "random_scores", "choose_threshold", "Estimate", "mean_ci",
           "protocol_values", "auroc"]
