"""Tasks: what the engine needs to know about a problem, and nothing about the host.

The Lightning module (`lm4vis.train.module`) is generic; a task supplies how to unpack a
batch, batch-level augmentation, the loss, and metrics as *sums* (so that epoch metrics are
exact across batches of unequal size and across ranks). Point-cloud, video, trajectory or VQA
hosts reuse the same engine by writing another `Task`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import OptimConfig, RunConfig


class Task(ABC):
    """The problem-specific part of training.

    ``batch_sums`` returns additive statistics (counts, summed losses); the engine adds them up
    over an epoch and every rank, then ``epoch_metrics`` turns the totals into metrics.
    """

    #: the validation metric that says "better" (for reports).
    monitor: str = "val/loss"
    monitor_mode: str = "min"

    @abstractmethod
    def unpack(self, batch: Any) -> tuple[Any, Any]:
        """(model inputs, targets) of a batch."""

    def augment_batch(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        """Batch-level training augmentation (mixup, ...); identity by default."""
        return inputs, targets

    @property
    def mixes_targets(self) -> bool:
        """True when ``augment_batch`` changes the targets (metrics then mean nothing)."""
        return False

    @abstractmethod
    def loss(self, outputs: Any, targets: Any, train: bool) -> Tensor:
        """Mean loss of a batch; ``train`` targets may come from ``augment_batch``."""

    @abstractmethod
    def batch_sums(self, outputs: Any, targets: Any) -> dict[str, Tensor]:
        """Additive statistics of a batch, including ``count``."""

    @abstractmethod
    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        """Metrics from the summed statistics of an epoch."""

    def batch_size(self, batch: Any) -> int:
        inputs, _ = self.unpack(batch)
        return len(inputs)


class ClassificationTask(Task):
    """Images -> one of ``num_classes`` labels: cross-entropy, top-1 and top-5 accuracy.

    Args:
        num_classes: number of labels.
        label_smoothing: cross-entropy smoothing when labels are not mixed.
        mixup, cutmix, mixup_prob, mixup_switch_prob: timm `Mixup` settings (0 alphas: off).
    """

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        mixup: float = 0.0,
        cutmix: float = 0.0,
        mixup_prob: float = 1.0,
        mixup_switch_prob: float = 0.5,
    ) -> None:
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.mixup = None
        if (mixup > 0 or cutmix > 0) and mixup_prob > 0:
            from timm.data import Mixup

            # Mixup builds the smoothed soft targets itself.
            self.mixup = Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, prob=mixup_prob,
                               switch_prob=mixup_switch_prob, label_smoothing=label_smoothing,
                               num_classes=num_classes)

    @classmethod
    def from_config(cls, num_classes: int, optim: OptimConfig) -> ClassificationTask:
        return cls(num_classes, optim.label_smoothing, optim.mixup, optim.cutmix, optim.mixup_prob,
                   optim.mixup_switch_prob)

    def unpack(self, batch: Any) -> tuple[Tensor, Tensor]:
        return batch[0], batch[1]

    @property
    def mixes_targets(self) -> bool:
        return self.mixup is not None

    def augment_batch(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if self.mixup is None:
            return inputs, targets
        return self.mixup(inputs, targets)

    def loss(self, outputs: Tensor, targets: Tensor, train: bool) -> Tensor:
        logits = outputs.float()
        if targets.dim() == 2:  # soft targets from mixup
            return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing if train else 0.0)

    def batch_sums(self, outputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        logits = outputs.detach().float()
        k = min(5, self.num_classes)
        topk = logits.topk(k, dim=-1).indices
        hit = topk == targets[:, None]
        sums = {
            "count": torch.tensor(float(len(targets)), device=logits.device),
            "loss": F.cross_entropy(logits, targets, reduction="sum"),
            "correct": hit[:, 0].sum().float(),
        }
        if self.num_classes > 5:
            sums["correct5"] = hit.any(-1).sum().float()
        return sums

    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        n = max(float(sums["count"]), 1.0)
        out = {"loss": float(sums["loss"]) / n, "acc": float(sums["correct"]) / n}
        if "correct5" in sums:
            out["acc5"] = float(sums["correct5"]) / n
        return out


def build_task(cfg: RunConfig) -> Task:
    """The task a run config names.

    Args:
        cfg: the run config (``task``, ``host.num_classes``, ``optim``).
    """
    if cfg.task == "classification":
        return ClassificationTask.from_config(cfg.host.num_classes, cfg.optim)
    raise ValueError(f"task={cfg.task!r} is unknown; lm4vis.train knows: classification")
