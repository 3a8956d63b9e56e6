"""From a model and masked images to the table of pseudo-mask mIoU: the analysis itself.

`collect` runs the model once over the images with `capture` on and keeps every map's raw
per-token scores (they are small: images x tokens). `evaluate` turns the maps of an evaluation
set and of a held-out calibration set into rows (map x protocol), with the chance and
all-foreground baselines; `compare` gives paired differences against a baseline model's maps
at the same depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .hooks import capture
from .layout import CENTRE_PROXIMITY, PATCH_INTENSITY, Layout, concat_layouts, reference_map
from .maps import MAP_KINDS, split_name, token_maps
from .metrics import (
    THRESHOLDS, Estimate, all_foreground_iou, auroc, choose_threshold, iou_table, mean_ci,
    protocol_values, random_scores,
)

RANDOM = "random"  # the chance map
ALL_FG = "all-foreground"  # every pixel foreground
INTENSITY = PATCH_INTENSITY  # mean input value of each patch: what an image map must beat
CENTRE = CENTRE_PROXIMITY  # closeness of a point group to its cloud's centre: the points' reference
REFERENCE = "reference"  # the model label of the rows above


@dataclass
class AnalysisConfig:
    """How maps are made and scored.

    Args:
        kinds: map kinds (``l2``, ``freq``, ``attn``).
        top: fraction of tokens a channel marks in the ``freq`` map.
        per_head: also score each attention head.
        thresholds: pseudo-mask thresholds on min-max normalised maps.
        fg_coverage: a token is foreground when the mask covers at least this fraction of it.
        num_boot: bootstrap resamples of the confidence intervals.
        seed: seed of the bootstrap and of the random (chance) map.
        keep: images kept whole for the example grid.
    """

    kinds: tuple[str, ...] = MAP_KINDS
    top: float = 0.1
    per_head: bool = True
    thresholds: tuple[float, ...] = THRESHOLDS
    fg_coverage: float = 0.5
    num_boot: int = 2000
    seed: int = 0
    keep: int = 8

    def __post_init__(self) -> None:
        if not self.thresholds or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds={self.thresholds} must be non-empty and in [0, 1]")
        if not 0.0 < self.fg_coverage <= 1.0:
            raise ValueError(f"fg_coverage={self.fg_coverage} must be in (0, 1]")


@dataclass
class Collected:
    """Maps of one model on one set of images.

    Attributes:
        scores: map name -> raw per-token scores ``(B, P)``.
        masks: ground truth ``(B, *S)`` bool.
        coverage: fraction of each token inside the mask ``(B, P)``.
        images: the first ``keep`` model inputs, e.g. ``(K, C, *S)`` or clouds ``(K, N, C)``
            (for figures).
        layout: the layout the maps were made with, for all examples in order (the batches'
            layouts joined by `concat_layouts`).
        reference: the layout's input-only reference map ``(B, P)`` (`reference_map`: patch
            intensity for grids, centre proximity for point groups), or None.
        reference_name: its row name (``patch-intensity``, ``centre-proximity``), or None.
    """

    scores: dict[str, Tensor]
    masks: Tensor
    coverage: Tensor
    images: Tensor
    layout: Layout
    reference: Tensor | None = None
    reference_name: str | None = None

    @property
    def intensity(self) -> Tensor | None:
        """The reference map of an image run (patch intensity); kept for older callers."""
        return self.reference if self.reference_name == INTENSITY else None

    @property
    def num_images(self) -> int:
        return self.masks.shape[0]

    def foreground(self, fg_coverage: float) -> Tensor:
        return self.coverage >= fg_coverage


@torch.no_grad()
def collect(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    layout: Layout | Callable[[Tensor], Layout],
    cfg: AnalysisConfig | None = None,
) -> Collected:
    """Run ``model`` over ``batches`` of ``(inputs, masks)`` and keep every map.

    Args:
        model: a host with or without an LM block (put in eval mode here).
        batches: model-ready inputs ``(B, C, *S)`` and foreground masks ``(B, *S)``.
        layout: the host's token layout (`layout_of(model)` for timm ViTs), or, for hosts
            whose layout depends on the batch (point groups from farthest-point sampling), a
            function of the batch's inputs, called after the model has seen them.
        cfg: map options.
    """
    cfg = cfg or AnalysisConfig()
    model.eval()
    device = next(model.parameters()).device
    scores: dict[str, list[Tensor]] = {}
    masks, images, reference, coverage, layouts = [], [], [], [], []
    reference_name = None
    kept = 0
    with capture(model, attention="attn" in cfg.kinds) as cap:
        for inputs, mask in batches:
            cap.clear()
            model(inputs.to(device))
            batch_layout = layout if isinstance(layout, Layout) else layout(inputs)
            layouts.append(batch_layout)
            for name, s in token_maps(cap, batch_layout, cfg.kinds, cfg.top, cfg.per_head).items():
                scores.setdefault(name, []).append(s)
            masks.append(mask.bool().cpu())
            coverage.append(batch_layout.coverage(masks[-1]))
            ref = reference_map(batch_layout, inputs)
            if ref is not None:
                reference_name = ref[0]
                reference.append(ref[1])
            if kept < cfg.keep:
                images.append(inputs[: cfg.keep - kept].detach().float().cpu())
                kept += images[-1].shape[0]
    if not masks:
        raise ValueError("no images to analyse: the dataset or --num-images gave none")
    return Collected(
        scores={k: torch.cat(v) for k, v in scores.items()},
        masks=torch.cat(masks),
        coverage=torch.cat(coverage),
        images=torch.cat(images),
        layout=concat_layouts(layouts),
        reference=torch.cat(reference) if reference and len(reference) == len(masks) else None,
        reference_name=reference_name if reference and len(reference) == len(masks) else None,
    )


@dataclass
class Row:
    """One map of one model: mIoU under both protocols and its foreground/background AUROC."""

    model: str
    map: str
    best: Estimate
    fixed: Estimate
    threshold: float | None  # the calibrated threshold of the fixed protocol
    auroc: float  # foreground vs background tokens, threshold-free
    per_image: dict[str, Tensor] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return split_name(self.map)[0] if "@" in self.map else self.map

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "map": self.map,
            "best": self.best.to_dict(), "fixed": self.fixed.to_dict(),
            "threshold": self.threshold, "auroc": None if math.isnan(self.auroc) else self.auroc,
        }


def _row(model: str, name: str, ev: Tensor, cal: Tensor, fg_auroc: float,
         cfg: AnalysisConfig) -> Row:
    t_idx = choose_threshold(cal)
    best = protocol_values(ev, "best")
    fixed = protocol_values(ev, "fixed", t_idx)
    return Row(
        model, name,
        mean_ci(best, num_boot=cfg.num_boot, seed=cfg.seed),
        mean_ci(fixed, num_boot=cfg.num_boot, seed=cfg.seed),
        cfg.thresholds[t_idx], fg_auroc, {"best": best, "fixed": fixed},
    )


def evaluate(model_name: str, ev: Collected, cal: Collected, cfg: AnalysisConfig | None = None,
             baselines: bool = True) -> list[Row]:
    """Score every map of ``ev``, with thresholds for the fixed protocol chosen on ``cal``.

    Args:
        model_name: label of the model in the table.
        ev: maps on the evaluation images.
        cal: maps of the same model on held-out calibration images.
        cfg: scoring options.
        baselines: append the reference rows (random map, all-foreground, and the layout's
            input-only reference: patch intensity for images, centre proximity for points).
    """
    cfg = cfg or AnalysisConfig()
    missing = set(ev.scores) ^ set(cal.scores)
    if missing:
        raise ValueError(f"evaluation and calibration maps differ: {sorted(missing)}")
    fg = ev.foreground(cfg.fg_coverage)
    rows = []
    for name in ev.scores:
        rows.append(_row(
            model_name, name,
            iou_table(ev.scores[name], ev.masks, ev.layout, cfg.thresholds),
            iou_table(cal.scores[name], cal.masks, cal.layout, cfg.thresholds),
            auroc(ev.scores[name], fg), cfg,
        ))
    if baselines:
        rows += baseline_rows(ev, cal, cfg)
    return rows


def baseline_rows(ev: Collected, cal: Collected, cfg: AnalysisConfig | None = None) -> list[Row]:
    """Reference rows, scored like every map: a uniform random map (chance), the
    all-foreground mask, and the layout's input-only reference map when it has one (each
    patch's mean input value for images; each point group's closeness to the cloud's centre
    for point clouds)."""
    cfg = cfg or AnalysisConfig()
    p = ev.layout.num_patches
    fg = ev.foreground(cfg.fg_coverage)
    rand_ev = random_scores(ev.num_images, p, cfg.seed)
    rand_cal = random_scores(cal.num_images, p, cfg.seed + 1)
    rows = []
    refs = [(RANDOM, rand_ev, rand_cal)]
    if ev.reference is not None and cal.reference is not None and ev.reference_name == cal.reference_name:
        refs.append((ev.reference_name, ev.reference, cal.reference))
    for name, s_ev, s_cal in refs:
        rows.append(_row(
            REFERENCE, name,
            iou_table(s_ev, ev.masks, ev.layout, cfg.thresholds),
            iou_table(s_cal, cal.masks, cal.layout, cfg.thresholds),
            auroc(s_ev, fg), cfg,
        ))
    full = all_foreground_iou(ev.masks)
    est = mean_ci(full, num_boot=cfg.num_boot, seed=cfg.seed)
    rows.append(Row(REFERENCE, ALL_FG, est, est, None, float("nan"), {"best": full, "fixed": full}))
    return rows


#: For paired differences: the baseline stage at the same depth as each stage of an LM model.
COUNTERPART: dict[str, str] = {
    "pre_proj_in": "last_block", "post_lm": "last_block", "post_proj_out": "last_block",
    "last_block": "last_block", "post_norm": "post_norm", "host_attn": "host_attn",
}


def counterpart(name: str) -> str:
    """The baseline map a map of an LM model is compared with (same kind, same depth)."""
    kind, stage = split_name(name)
    if stage.startswith("lm_attn."):
        return f"{kind}@host_attn"
    return f"{kind}@{COUNTERPART.get(stage, stage)}"


@dataclass
class Delta:
    """Paired difference (run - baseline) of per-image IoU, with its bootstrap interval."""

    map: str
    against: str
    protocol: str
    diff: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {"map": self.map, "against": self.against, "protocol": self.protocol,
                "diff": self.diff.to_dict()}


def compare(rows: list[Row], base_rows: list[Row], cfg: AnalysisConfig | None = None) -> list[Delta]:
    """Paired mIoU differences of each head-mean map against its baseline counterpart.

    Args:
        rows: the analysed model's rows (from `evaluate` on the same images as ``base_rows``).
        base_rows: the baseline model's rows.
        cfg: bootstrap options.
    """
    cfg = cfg or AnalysisConfig()
    base = {r.map: r for r in base_rows if r.model != REFERENCE}
    out = []
    for r in rows:
        if r.model == REFERENCE or ".h" in r.kind:
            continue
        other = base.get(counterpart(r.map))
        if other is None:
            continue
        for protocol in ("best", "fixed"):
            d = r.per_image[protocol] - other.per_image[protocol]
            out.append(Delta(r.map, other.map, protocol,
                             mean_ci(d, num_boot=cfg.num_boot, seed=cfg.seed)))
    return out


def batches_from(
    dataset: Any,
    preprocess: Callable[[Tensor], Tensor],
    batch_size: int = 32,
    num_images: int | None = None,
) -> Iterable[tuple[Tensor, Tensor]]:
    """``(inputs, masks)`` batches from any dataset of ``(image, label, mask)`` items.

    Args:
        dataset: items ``(image [C,*S], label, mask [*S])``, e.g. an `lm4vis.data` dataset
            built with ``with_masks=True``.
        preprocess: batch of images -> model input (e.g. uint8 -> normalised float).
        batch_size: images per forward pass.
        num_images: stop after this many images (None: all).
    """
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, n))]
        if len(items[0]) < 3:
            raise ValueError(
                "dataset items carry no mask: the analysis needs (image, label, mask) items; "
                "build an lm4vis dataset with with_masks=True (cluttered-* or masks-folder)"
            )
        images = torch.stack([torch.as_tensor(it[0]) for it in items])
        masks = torch.stack([torch.as_tensor(it[2]) for it in items]).bool()
        yield preprocess(images), masks


__all__ = ["AnalysisConfig", "Collected", "collect", "Row", "evaluate", "baseline_rows",
           "Delta", "compare", "counterpart", "COUNTERPART", "batches_from", "RANDOM", "ALL_FG", "INTENSITY", "CENTRE", "REFERENCE"]
