"""The ``vqa`` task's typed config and its registration (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import register_task
from .configs import TaskConfig

#: What the per-type accuracies are grouped by: VQAv2's answer types (yes/no, number, other),
#: the generator's question types (shapes-vqa), or ``auto``: question types where the dataset
#: has them, answer types otherwise.
GROUP_BY: tuple[str, ...] = ("auto", "answer_type", "question_type")


@dataclass
class VQAConfig(TaskConfig):
    """Visual question answering as a classification over the answer vocabulary, scored with
    the official VQA accuracy (`lm4vis.tasks.vqa_metrics`).

    The loss is binary cross-entropy of every answer's logit against its soft score (the
    accuracy the evaluator would give that answer), summed over answers and averaged over
    questions: ViLT's and METER's objective (their ``binary_cross_entropy_with_logits(...) *
    num_answers``). A question's accuracy is the official accuracy of its top answer, so a
    question none of whose answers is in the vocabulary scores 0, as on the server.

    Args:
        by: per-type accuracies grouped by ``answer_type``, ``question_type`` or ``auto``.
    """

    name: str = "vqa"
    by: str = "auto"

    def __post_init__(self) -> None:
        if self.by not in GROUP_BY:
            raise ValueError(f"task.by={self.by!r} is unknown; choose one of {', '.join(GROUP_BY)}")


register_task("vqa", config=VQAConfig, builder="lm4vis.tasks.vqa:VQATask.from_config")

__all__ = ["VQAConfig", "GROUP_BY"]
