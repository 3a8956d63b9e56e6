"""Classification: one label per sample; cross-entropy, top-1 and top-5 accuracy."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import LOSS, Metric, Task, count
from .configs import ClassificationConfig

ACC = Metric("acc", "top-1", higher_is_better=True, unit="%", scale=100.0)
ACC5 = Metric("acc5", "top-5", higher_is_better=True, unit="%", scale=100.0)


class ClassificationTask(Task):
    """Inputs -> one of ``num_classes`` labels.

    Batches are ``(inputs, labels, ...)`` as the image datasets give them, or dicts with the
    keys ``inputs_key`` and ``label``.

    Args:
        num_classes: number of labels.
        label_smoothing: cross-entropy smoothing when labels are not mixed.
        mixup, cutmix, mixup_prob, mixup_switch_prob: timm `Mixup` settings (0 alphas: off).
        inputs_key: the model input of a dict batch (``points``, ``video``, ...).
    """

    metrics = (ACC, ACC5, LOSS)
    monitor = "acc"

    def __init__(
        self,
        num_classes: int,
        label_smoothing: float = 0.0,
        mixup: float = 0.0,
        cutmix: float = 0.0,
        mixup_prob: float = 1.0,
        mixup_switch_prob: float = 0.5,
        inputs_key: str = "inputs",
    ) -> None:
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.inputs_key = inputs_key
        self.mixup = None
        if (mixup > 0 or cutmix > 0) and mixup_prob > 0:
            from timm.data import Mixup

            # Mixup builds the smoothed soft targets itself.
            self.mixup = Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, prob=mixup_prob,
                               switch_prob=mixup_switch_prob, label_smoothing=label_smoothing,
                               num_classes=num_classes)

    @classmethod
    def from_config(cls, cfg: ClassificationConfig, info: Any) -> ClassificationTask:
        """Args: cfg: the task config; info: the dataset's description (its ``num_classes``)."""
        return cls(info.num_classes, cfg.label_smoothing, cfg.mixup, cfg.cutmix, cfg.mixup_prob,
                   cfg.mixup_switch_prob, getattr(info, "inputs_key", "inputs"))

    def _unpack(self, batch: Any) -> tuple[Tensor, Tensor]:
        if isinstance(batch, dict):
            return batch[self.inputs_key], batch["label"]
        return batch[0], batch[1]

    def forward(self, model: nn.Module, batch: Any, train: bool) -> tuple[Tensor, Tensor]:
        inputs, targets = self._unpack(batch)
        if train and self.mixup is not None:
            inputs, targets = self.mixup(inputs, targets)
        return model(inputs), targets

    @property
    def mixes_targets(self) -> bool:
        return self.mixup is not None

    def loss(self, outputs: Tensor, targets: Tensor, train: bool) -> Tensor:
        logits = outputs.float()
        if targets.dim() == 2:  # soft targets from mixup
            return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing if train else 0.0)

    def batch_sums(self, outputs: Tensor, targets: Tensor) -> dict[str, Tensor]:
        logits = outputs.detach().float()
        k = min(5, self.num_classes)
        hit = logits.topk(k, dim=-1).indices == targets[:, None]
        sums = {
            "count": count(len(targets), logits.device),
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


__all__ = ["ClassificationTask", "ACC", "ACC5"]
