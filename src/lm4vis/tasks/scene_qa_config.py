"""The ``scene-qa`` task's typed config and its registration (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import register_task
from .configs import TaskConfig


@dataclass
class SceneQAConfig(TaskConfig):
    """Single-answer question answering over a fixed answer vocabulary, scored by EM@1 (the
    top-1 answer is one of the normalised reference answers), overall and per question type:
    SQA3D's metric (`lm4vis.tasks.scene_qa`).

    Args:
        label_smoothing: of the answers' cross-entropy in training.
        aux_weight: weight of the auxiliary situation losses (position: mean squared error in
            metres; orientation: 1 - |cos| of the angle between quaternions); 0 leaves them off,
            and anything above needs ``host.aux_heads: true``.
    """

    name: str = "scene-qa"
    label_smoothing: float = 0.0
    aux_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"task.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.aux_weight < 0:
            raise ValueError(f"task.aux_weight={self.aux_weight} must be >= 0")

    def check_run(self, run: Any) -> None:
        if self.aux_weight > 0 and not getattr(run.host, "aux_heads", False):
            raise ValueError(f"task.aux_weight={self.aux_weight} trains the situation heads, but the host has none; "
                             "set host.aux_heads=true (or task.aux_weight=0)")


register_task("scene-qa", config=SceneQAConfig, builder="lm4vis.tasks.scene_qa:SceneQATask.from_config")

__all__ = ["SceneQAConfig"]
