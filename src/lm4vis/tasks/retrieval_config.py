"""The ``retrieval`` task's typed config and its registration (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ..registry import register_task
from .configs import TaskConfig

#: Directions of retrieval: image -> text (text retrieval) and text -> image (image retrieval).
DIRECTIONS: tuple[str, ...] = ("i2t", "t2i")


@dataclass
class RetrievalConfig(TaskConfig):
    """Image-text retrieval: symmetric InfoNCE with the host's learned temperature; Recall@K
    in both directions over the whole validation split (`lm4vis.tasks.retrieval`).

    Args:
        ks: the cut-offs of Recall@K (the Flickr30k / COCO protocol: 1, 5, 10).
        monitor: the metric that picks the best epoch and decides the verdicts of
            ``compare`` and ``demo``: ``rmean`` (the mean of the six recalls, in %), ``rsum``
            (their sum, ViLT's and METER's number), or any declared ``i2t_r<K>`` / ``t2i_r<K>``.
        same_image_negatives: count two captions of one image in a training batch as each
            other's negatives (False, the default: they are left out of each other's softmax).
    """

    name: str = "retrieval"
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    monitor: str = "rmean"
    same_image_negatives: bool = False

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise ValueError(f"task.ks={self.ks} must be distinct positive cut-offs, e.g. [1, 5, 10]")
        self.ks = sorted(self.ks)
        if self.monitor not in self.metric_names:
            raise ValueError(f"task.monitor={self.monitor!r} is not a metric of task.ks={self.ks}; "
                             f"choose one of {', '.join(self.metric_names)}")

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Declared metric names in report order: ``rmean``, ``i2t_r1`` ... ``t2i_r10``, ``rsum``, ``loss``."""
        return ("rmean", *(f"{d}_r{k}" for d in DIRECTIONS for k in self.ks), "rsum", "loss")


register_task("retrieval", config=RetrievalConfig, builder="lm4vis.tasks.retrieval:RetrievalTask.from_config")

__all__ = ["RetrievalConfig", "DIRECTIONS"]
