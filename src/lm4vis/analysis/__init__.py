"""Information filtering made visible and measurable (Pang et al., ICLR 2024, Sec. 5).

``hooks`` reads tokens and attention at named stages, ``layout`` maps tokens back to the input,
``maps`` turns tokens into per-token scores, ``metrics`` turns scores into pseudo-masks and
mIoU with confidence intervals, ``runner`` puts these together over a dataset, ``report`` and
``plots`` write the results. ``lm4vis analyze`` is the command-line front end.
"""

from .hooks import STAGES, Capture, attention_points, available_stages, capture, feature_points
from .layout import GridLayout, Layout, PointGroupLayout, layout_of, patch_tokens
from .maps import MAP_KINDS, attention_map, freq_map, l2_map, token_maps
from .metrics import (
    PROTOCOLS, THRESHOLDS, Estimate, all_foreground_iou, auroc, choose_threshold, iou, iou_table,
    mean_ci, normalize, protocol_values, pseudo_masks, random_scores,
)
from .runner import AnalysisConfig, Collected, Row, baseline_rows, batches_from, collect, compare, evaluate

__all__ = [
    "capture", "Capture", "STAGES", "feature_points", "attention_points", "available_stages",
    "Layout", "GridLayout", "PointGroupLayout", "layout_of", "patch_tokens",
    "MAP_KINDS", "l2_map", "freq_map", "attention_map", "token_maps",
    "THRESHOLDS", "PROTOCOLS", "normalize", "pseudo_masks", "iou", "iou_table", "mean_ci",
    "Estimate", "choose_threshold", "protocol_values", "random_scores", "all_foreground_iou", "auroc",
    "AnalysisConfig", "Collected", "Row", "collect", "evaluate", "baseline_rows", "compare",
    "batches_from",
]
