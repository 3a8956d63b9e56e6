"""Situated 3D question answering: one answer out of the training vocabulary, scored by EM@1.

EM@1 (SQA3D's metric, Ma et al., ICLR 2023): a question is right when the model's top-1 answer
equals one of its reference answers, both normalised with the VQA evaluation's rules
(`lm4vis.tasks.vqa_metrics.normalize_answer`: case, punctuation, articles, number words).
The datasets normalise the references once and mark, per sample, every reference that is in
the vocabulary (``answer_mask``); a sample none of whose references is in it can never be
right: it is counted by the dataset and scored wrong here. The metric is reported overall
(``em1``) and per question type (``em1/<type>``), all summed per sample so the epoch values are
exact over batches and ranks.

Batches are `lm4vis.data.vqa3d` batches; the model is a host called as
``model(points, question_ids, question_padding_mask, situation_ids, situation_padding_mask)``
that returns ``{"logits", ["position", "orientation"]}`` (`lm4vis.hosts.scene_vqa.SceneVQA`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.vqa3d.base import collate_scene_qa
from .base import LOSS, Metric, Task
from .scene_qa_config import SceneQAConfig
from .vqa_metrics import normalize_answer

EM = Metric("em1", "EM@1", higher_is_better=True, unit="%", scale=100.0)
#: Inputs of the host, in its forward's order.
MODEL_INPUTS: tuple[str, ...] = ("points", "question_ids", "question_padding_mask", "situation_ids",
                                 "situation_padding_mask")


def exact_match(prediction: str, references: Sequence[str]) -> bool:
    """EM@1 of one answer: the normalised prediction equals a normalised reference.

    Args:
        prediction: the model's answer.
        references: the question's reference answers, as written.
    """
    predicted = normalize_answer(prediction)
    return any(predicted == normalize_answer(r) for r in references)


def type_metric(question_type: str) -> Metric:
    """The declaration of ``em1/<type>``."""
    return Metric(f"em1/{question_type}", f"EM@1 {question_type}", higher_is_better=True, unit="%", scale=100.0)


class SceneQATask(Task):
    """Scene-QA batches -> answer logits; see the module docstring.

    Args:
        question_types: names of the ``question_type`` indices (the dataset's).
        pad_id: the text padding id (the dataset's), for the collate.
        label_smoothing: of the training cross-entropy.
        aux_weight: weight of the situation losses (needs a host with aux heads).
    """

    monitor = "em1"

    def __init__(self, question_types: Sequence[str], pad_id: int = 0, label_smoothing: float = 0.0,
                 aux_weight: float = 0.0) -> None:
        self.question_types = tuple(question_types)
        self.pad_id, self.label_smoothing, self.aux_weight = pad_id, label_smoothing, aux_weight
        self.metrics = (EM, *(type_metric(t) for t in self.question_types), LOSS)

    @classmethod
    def from_config(cls, cfg: SceneQAConfig, info: Any) -> SceneQATask:
        """Args: cfg: the task config; info: the dataset's `SceneQAInfo`."""
        if not hasattr(info, "question_types") or not hasattr(info, "num_answers"):
            raise ValueError(f"task.name=scene-qa needs a question-answering dataset (rooms3d-qa, sqa3d); "
                             f"{getattr(info, 'name', info)!r} is not one")
        return cls(info.question_types, info.pad_id, cfg.label_smoothing, cfg.aux_weight)

    # -- batches ---------------------------------------------------------------------------------
    def collate(self, items: Sequence[Any]) -> dict[str, Any]:
        return collate_scene_qa(list(items), self.pad_id)

    def batch_size(self, batch: dict[str, Any]) -> int:
        return int(batch["answer"].shape[0]) if "answer" in batch else 0

    def forward(self, model: nn.Module, batch: dict[str, Any], train: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        out = model(*(batch[key] for key in MODEL_INPUTS))
        if isinstance(out, Tensor):
            out = {"logits": out}
        keys = ("answer", "answer_mask", "question_type", "position", "orientation")
        return out, {k: batch[k] for k in keys}

    # -- objective and metrics -------------------------------------------------------------------
    def _answer_loss(self, logits: Tensor, answer: Tensor, smoothing: float, reduction: str) -> Tensor:
        # Samples whose answers are all outside the vocabulary (-1) teach nothing.
        return F.cross_entropy(logits.float(), answer.masked_fill(answer < 0, -100),
                               ignore_index=-100, label_smoothing=smoothing, reduction=reduction)

    def loss(self, outputs: dict[str, Tensor], targets: dict[str, Tensor], train: bool) -> Tensor:
        answer = targets["answer"]
        if (answer >= 0).any():
            loss = self._answer_loss(outputs["logits"], answer, self.label_smoothing if train else 0.0, "mean")
        else:
            loss = outputs["logits"].float().sum() * 0.0  # keeps the step (and a DDP all-reduce) going
        if self.aux_weight > 0:
            if "position" not in outputs:
                raise ValueError("task.aux_weight > 0 but the model returned no position/orientation; "
                                 "build the host with aux_heads=true")
            loss = loss + self.aux_weight * self.situation_loss(outputs, targets)
        return loss

    @staticmethod
    def situation_loss(outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> Tensor:
        """Mean squared position error plus 1 - |cos| between predicted and true quaternions (q and
        -q are one rotation)."""
        position = F.mse_loss(outputs["position"].float(), targets["position"])
        cos = (F.normalize(outputs["orientation"].float(), dim=-1) * F.normalize(targets["orientation"], dim=-1)).sum(-1)
        return position + (1 - cos.abs()).mean()

    def batch_sums(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        logits = outputs["logits"].detach().float()
        answer, types = targets["answer"], targets["question_type"]
        top1 = logits.argmax(dim=-1)
        correct = targets["answer_mask"].gather(1, top1[:, None]).squeeze(1).float()
        scored = answer >= 0
        sums = {"count": torch.tensor(float(len(answer)), device=logits.device), "correct": correct.sum(),
                "loss": self._answer_loss(logits, answer, 0.0, "sum"), "scored": scored.sum().float()}
        for index, name in enumerate(self.question_types):
            of_type = types == index
            sums[f"count/{name}"] = of_type.sum().float()
            sums[f"correct/{name}"] = correct[of_type].sum()
        return sums

    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        count = float(sums["count"])
        if count == 0:
            return {}
        # The engine rewrites a training batch's "loss" as mean x count; validation sums the
        # cross-entropy of the samples that have an in-vocabulary answer.
        scored = float(sums.get("scored", sums["count"])) or 1.0
        out = {"em1": float(sums["correct"]) / count, "loss": float(sums["loss"]) / scored}
        for name in self.question_types:
            n = float(sums.get(f"count/{name}", 0.0))
            if n > 0:
                out[f"em1/{name}"] = float(sums[f"correct/{name}"]) / n
        return out


def answer_prior_reference(cfg: Any, limit: int | None = None) -> dict[str, Any]:
    """EM@1 of answering every question with its type's most frequent training answer, on a
    run's validation split: what a model that reads only the question's type can reach.

    Args:
        cfg: the run config.
        limit: at most this many validation samples (``data.limit_val`` when None).
    """
    from collections import Counter

    from ..train.datamodule import build_source

    source = build_source(cfg)
    train, val = source.dataset("train", train=True), source.dataset(cfg.data.val_split, train=False)
    prior: dict[str, Counter] = {}
    for r in train.records:
        prior.setdefault(r.question_type, Counter())[r.answers[0]] += 1
    guess = {t: c.most_common(1)[0][0] for t, c in prior.items()}
    records = list(val.records)[: limit or len(val.records)]
    hits: dict[str, list[bool]] = {}
    for r in records:
        hits.setdefault(r.question_type, []).append(guess.get(r.question_type) in r.answers)
    every = [h for v in hits.values() for h in v]
    metrics = {EM.key: sum(every) / max(len(every), 1)}
    metrics.update({type_metric(t).key: sum(v) / len(v) for t, v in hits.items()})
    return {"label": "the most frequent training answer of each question type", "scenes": len(records),
            "note": "no scene, no situation, no training", "metrics": metrics}


__all__ = ["SceneQATask", "EM", "MODEL_INPUTS", "exact_match", "type_metric", "answer_prior_reference"]
