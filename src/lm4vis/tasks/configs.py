"""Typed configs of the built-in tasks and their registrations (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_task


@dataclass
class TaskConfig:
    """Base of every task's config: ``name`` names the registered task.

    Args:
        name: a registered task (``classification``; see ``lm4vis.registry.TASKS.names()``).
    """

    name: str = "classification"

    def check_run(self, run: Any) -> None:
        """Cross-section checks against the whole run config (override where needed)."""


@dataclass
class ClassificationConfig(TaskConfig):
    """One label per sample: cross-entropy, top-1 and top-5 accuracy.

    Args:
        label_smoothing: of the cross-entropy (ignored when mixup/cutmix mix the labels,
            which then carry the smoothing themselves).
        mixup, cutmix: Beta alphas of timm's Mixup (images); 0 switches each off.
        mixup_prob: probability of mixing a batch at all.
        mixup_switch_prob: probability of cutmix instead of mixup when both are on.
    """

    name: str = "classification"
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5

    def __post_init__(self) -> None:
        for key in ("label_smoothing", "mixup_prob", "mixup_switch_prob"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"task.{key}={getattr(self, key)} must be in [0, 1]")
        for key in ("mixup", "cutmix"):
            if getattr(self, key) < 0:
                raise ValueError(f"task.{key}={getattr(self, key)} must be >= 0")

    @property
    def mixes_labels(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.mixup_prob > 0

    def check_run(self, run: Any) -> None:
        if self.mixes_labels and run.data.batch_size % 2:
            raise ValueError(
                f"data.batch_size={run.data.batch_size} must be even when task.mixup/cutmix are on "
                "(timm's Mixup pairs each image with its mirror in the batch)"
            )


#: Regression losses of the forecasting task (`lm4vis.hosts.vectornet.REGRESSIONS`; a test keeps the two equal).
FORECASTING_REGRESSIONS: tuple[str, ...] = ("smooth_l1", "l2")
#: Metric families of the forecasting task; each is declared per K as ``<family>@<K>``.
FORECASTING_FAMILIES: tuple[str, ...] = ("minADE", "minFDE", "MR", "brier-minFDE")


@dataclass
class ForecastingConfig(TaskConfig):
    """Multi-modal trajectory forecasting, scored as the Argoverse 1 leaderboard scores it.

    The loss is winner-takes-all (`lm4vis.hosts.vectornet.forecasting_loss`): the mode that
    ends nearest the truth is regressed, and cross-entropy teaches the confidences to pick it.
    The metrics (`lm4vis.tasks.forecasting_metrics`) are minADE, minFDE and miss rate at every
    K of ``ks`` and brier-minFDE at every K above 1 (at K=1 it equals minFDE), all errors:
    lower is better. They are summed per scene, so the epoch means are exact over batches of
    any size and over ranks.

    Args:
        ks: the numbers of most-confident modes scored (Argoverse: 1 and 6).
        miss_threshold: metres of final displacement above which a forecast misses.
        monitor: the metric that picks the best epoch and decides the verdicts of
            ``compare`` and ``demo``: ``minFDE@K`` or ``minADE@K`` (or any declared metric).
        regression: ``smooth_l1`` or ``l2`` on the winning mode.
        classification_weight: weight of the confidences' cross-entropy.
    """

    name: str = "forecasting"
    ks: list[int] = field(default_factory=lambda: [1, 6])
    miss_threshold: float = 2.0
    monitor: str = "minFDE@6"
    regression: str = "smooth_l1"
    classification_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise ValueError(f"task.ks={self.ks} must be distinct positive mode counts, e.g. [1, 6]")
        self.ks = sorted(self.ks)
        if not self.miss_threshold > 0:
            raise ValueError(f"task.miss_threshold={self.miss_threshold} must be positive (metres)")
        if self.regression not in FORECASTING_REGRESSIONS:
            raise ValueError(f"task.regression={self.regression!r} is unknown; choose one of "
                             f"{', '.join(FORECASTING_REGRESSIONS)}")
        if self.classification_weight < 0:
            raise ValueError(f"task.classification_weight={self.classification_weight} must be >= 0")
        if self.monitor not in self.metric_names:
            raise ValueError(f"task.monitor={self.monitor!r} is not a metric of task.ks={self.ks}; "
                             f"choose one of {', '.join(self.metric_names)}")

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Declared metric names in report order, e.g. ``minADE@1`` ... ``brier-minFDE@6``."""
        return tuple(f"{family}@{k}" for k in self.ks for family in FORECASTING_FAMILIES
                     if not (family == "brier-minFDE" and k == 1)) + ("loss",)


register_task("classification", config=ClassificationConfig,
              builder="lm4vis.tasks.classification:ClassificationTask.from_config")
register_task("forecasting", config=ForecastingConfig,
              builder="lm4vis.tasks.forecasting:ForecastingTask.from_config")

__all__ = ["TaskConfig", "ClassificationConfig", "ForecastingConfig", "FORECASTING_FAMILIES",
           "FORECASTING_REGRESSIONS"]
