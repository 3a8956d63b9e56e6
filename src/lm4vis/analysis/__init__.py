"""Information filtering made visible and measurable (Pang et al., ICLR 2024, Sec. 5).

``hooks`` reads tokens and attention at named stages, ``layout`` maps tokens back to the input,
``maps`` turns tokens into per-token scores, ``metrics`` turns scores into pseudo-masks and
mIoU with confidence intervals, ``runner`` puts these together over a dataset, ``report`` and
``plots`` write the results. ``lm4vis analyze`` is the command-line front end.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    'STAGES': '.hooks',
    'Capture': '.hooks',
    'attention_points': '.hooks',
    'available_stages': '.hooks',
    'capture': '.hooks',
    'feature_points': '.hooks',
    'GridLayout': '.layout',
    'Layout': '.layout',
    'PointGroupLayout': '.layout',
    'PolylineLayout': '.layout',
    'layout_of': '.layout',
    'patch_tokens': '.layout',
    'MAP_KINDS': '.maps',
    'attention_map': '.maps',
    'freq_map': '.maps',
    'l2_map': '.maps',
    'token_maps': '.maps',
    'PROTOCOLS': '.metrics',
    'THRESHOLDS': '.metrics',
    'Estimate': '.metrics',
    'all_foreground_iou': '.metrics',
    'auroc': '.metrics',
    'choose_threshold': '.metrics',
    'iou': '.metrics',
    'iou_table': '.metrics',
    'mean_ci': '.metrics',
    'normalize': '.metrics',
    'protocol_values': '.metrics',
    'pseudo_masks': '.metrics',
    'random_scores': '.metrics',
    'AnalysisConfig': '.runner',
    'Collected': '.runner',
    'Row': '.runner',
    'baseline_rows': '.runner',
    'batches_from': '.runner',
    'collect': '.runner',
    'compare': '.runner',
    'evaluate': '.runner',
    'analyze_runs': '.api',
    'AnalyzeOptions': '.options',
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
