"""Visual question answering: soft binary cross-entropy on the VQA scores, the official
accuracy overall and per answer (or question) type, as additive batch sums.

Batches are `lm4vis.data.vl.collate_vl`'s: ``image`` float [B, 3, S, S], ``input_ids`` and
``text_padding_mask`` [B, L], ``target`` and ``accuracy`` float [B, A] (the soft scores trained
on, and the official accuracy of predicting each answer), ``answer_type`` and, for generated
data, ``question_type`` int64 [B]. The model is called as ``model(image, input_ids,
text_padding_mask)`` and returns answer logits [B, A].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .base import LOSS, Metric, Task, count
from .vqa_config import VQAConfig

ACCURACY = Metric("acc", "VQA accuracy", higher_is_better=True, unit="%", scale=100.0)
#: The model's inputs, in its forward's order.
MODEL_INPUTS: tuple[str, ...] = ("image", "input_ids", "text_padding_mask")


def type_metric(group: str) -> Metric:
    """The accuracy of one answer or question type (``yes/no`` -> ``acc/yes-no``)."""
    return Metric(f"acc/{group.replace('/', '-')}", group, higher_is_better=True, unit="%", scale=100.0)


class VQATask(Task):
    """Answers as classes, trained on soft scores, scored by the official accuracy.

    Args:
        pad_id: the tokeniser's padding id (`collate` pads questions with it).
        groups: names of the per-type accuracies (the indices of ``group_key``).
        group_key: the batch key that holds each question's type index (``answer_type`` or
            ``question_type``).
    """

    monitor = "acc"

    def __init__(self, pad_id: int, groups: Sequence[str], group_key: str = "answer_type") -> None:
        self.pad_id, self.groups, self.group_key = pad_id, tuple(groups), group_key
        self.metrics = (ACCURACY, *(type_metric(g) for g in self.groups), LOSS)

    @classmethod
    def from_config(cls, cfg: VQAConfig, info: Any) -> VQATask:
        """Args: cfg: the task config; info: the dataset's `lm4vis.data.vl.VQAInfo`."""
        by = cfg.by
        if by == "auto":
            by = "question_type" if info.question_types else "answer_type"
        groups = info.question_types if by == "question_type" else info.answer_types
        if not groups:
            raise ValueError(f"task.by={cfg.by}: dataset {info.name!r} has no {by.replace('_', ' ')}s; "
                             "use task.by=answer_type")
        return cls(info.pad_id, groups, by)

    def collate(self, items: Sequence[Any]) -> dict[str, Any]:
        from ..data.vl.items import collate_vl

        return collate_vl(list(items), self.pad_id)

    def forward(self, model: nn.Module, batch: dict[str, Any], train: bool) -> tuple[Tensor, dict[str, Any]]:
        return model(*(batch[k] for k in MODEL_INPUTS)), batch

    def batch_size(self, batch: dict[str, Any]) -> int:
        return int(batch["input_ids"].shape[0]) if "input_ids" in batch else 0

    def loss(self, outputs: Tensor, targets: dict[str, Any], train: bool) -> Tensor:
        logits = outputs.float()
        # Summed over answers, averaged over questions: METER's BCE mean x num_answers.
        return F.binary_cross_entropy_with_logits(logits, targets["target"], reduction="sum") / len(logits)

    def scores(self, outputs: Tensor, targets: dict[str, Any]) -> Tensor:
        """The official accuracy of each question's top answer, float [B]."""
        top = outputs.detach().argmax(dim=-1, keepdim=True)
        return targets["accuracy"].gather(1, top)[:, 0].float()

    def batch_sums(self, outputs: Tensor, targets: dict[str, Any]) -> dict[str, Tensor]:
        logits = outputs.detach().float()
        scores = self.scores(logits, targets)
        kind = targets[self.group_key]
        sums = {"count": count(len(scores), logits.device),
                "loss": F.binary_cross_entropy_with_logits(logits, targets["target"], reduction="sum"),
                "score": scores.sum()}
        for index, group in enumerate(self.groups):
            of_type = kind == index
            sums[f"count/{group}"] = of_type.sum().float()
            sums[f"score/{group}"] = scores[of_type].sum()
        return sums

    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        n = max(float(sums["count"]), 1.0)
        out = {"loss": float(sums["loss"]) / n, "acc": float(sums["score"]) / n}
        for group in self.groups:
            seen = float(sums.get(f"count/{group}", 0.0))
            if seen > 0:
                out[type_metric(group).name] = float(sums[f"score/{group}"]) / seen
        return out


def blind_prior_reference(cfg: Any) -> dict[str, Any] | None:
    """The accuracy of the best model that never sees the image (`blind_prior`: the most
    frequent training answer of each question text) on a shapes-vqa run's validation split,
    in the task's metric keys; None for other datasets.

    Args:
        cfg: the run config.
    """
    from ..data.vl.shapes_vqa import blind_prior
    from ..train.datamodule import build_source

    if cfg.data.name != "shapes-vqa":
        return None
    source = build_source(cfg)
    train = source.dataset("train", train=False).raw
    val = source.dataset(cfg.data.val_split, train=False).raw
    prior = blind_prior(train, val)
    metrics = {f"val/{ACCURACY.name}": prior["accuracy"]}
    metrics |= {f"val/{type_metric(k.split('/', 1)[1]).name}": v for k, v in prior.items() if k != "accuracy"}
    return {"label": "the blind prior (each question text's most frequent training answer)",
            "scenes": len(val), "metrics": metrics,
            "note": "no image: what the question alone gives"}


__all__ = ["VQATask", "ACCURACY", "MODEL_INPUTS", "type_metric", "blind_prior_reference"]
