"""Typed configs of the built-in tasks and their registrations (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass
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


register_task("classification", config=ClassificationConfig,
              builder="lm4vis.tasks.classification:ClassificationTask.from_config")

__all__ = ["TaskConfig", "ClassificationConfig"]
