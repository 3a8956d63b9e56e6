"""The `Task` protocol and the `Metric` declaration the engine and the reports read.

The Lightning module (`lm4vis.train.module`) is generic: a task turns a batch into outputs and
targets (``forward``), says how big a batch is and how samples are collated (padding, with a
boolean key-padding mask where True means padding), computes the loss, and reports metrics in
one of two ways:

- **sums** (the fast path): ``batch_sums`` returns additive statistics (counts, summed losses,
  hits), which the engine adds up over an epoch and every rank before ``epoch_metrics`` turns
  the totals into metrics: exact across batches of unequal size and across ranks;
- **gathered outputs**, for metrics that are not sums (retrieval R@K over the whole similarity
  matrix): ``batch_outputs`` returns per-sample tensors, which the engine concatenates over the
  epoch and gathers from every rank before ``gathered_metrics`` sees them all.

Each metric is declared (`Metric`): its name, direction, unit and display scale. The task's
``monitor`` metric decides the best epoch and the verdicts of `compare`, `sweep` and `demo`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from ..data.skips import drop_skipped


@dataclass(frozen=True)
class Metric:
    """How a metric is named, judged and shown.

    Args:
        name: key in the epoch metrics (logged as ``val/<name>``).
        label: what a table calls it (``top-1``, ``minADE``).
        higher_is_better: its direction; decides "best" and the verdicts.
        unit: shown after display values (``%``, ``m``, or empty).
        scale: display value = scale x value (100 for a fraction shown in %).
        digits: decimals shown.
    """

    name: str
    label: str
    higher_is_better: bool = True
    unit: str = ""
    scale: float = 1.0
    digits: int = 2

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"

    @property
    def key(self) -> str:
        return f"val/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key, "mode": self.mode}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Metric:
        return Metric(d["name"], d["label"], d["higher_is_better"], d.get("unit", ""),
                      d.get("scale", 1.0), d.get("digits", 2))


LOSS = Metric("loss", "loss", higher_is_better=False, digits=4)


class Task(ABC):
    """The problem-specific part of training; see the module docstring.

    Subclasses set ``metrics`` (every `Metric` their epoch metrics may contain) and
    ``monitor`` (the name of the one that decides).
    """

    metrics: tuple[Metric, ...] = (LOSS,)
    monitor: str = "loss"

    # -- batches ---------------------------------------------------------------------------------
    def collate(self, items: Sequence[Any]) -> Any:
        """Samples -> a batch. The default stacks fixed-size samples; `Skipped` markers from
        unreadable samples are dropped and counted in ``batch["skipped"]`` (dict batches)."""
        kept, skipped = drop_skipped(list(items))
        batch = default_collate(kept)
        if skipped and isinstance(batch, dict):
            batch["skipped"] = skipped
        return batch

    @abstractmethod
    def forward(self, model: nn.Module, batch: Any, train: bool) -> tuple[Any, Any]:
        """(model outputs, targets) of a batch; ``train`` may apply batch-level augmentation
        (mixup), which may change the targets."""

    def batch_size(self, batch: Any) -> int:
        """Samples in a batch: the length of its first tensor."""
        first = _first_tensor(batch)
        if first is None:
            raise TypeError(f"cannot tell the size of a {type(batch).__name__} batch; override batch_size")
        return int(first.shape[0])

    @property
    def mixes_targets(self) -> bool:
        """True when ``forward(train=True)`` changes the targets (training metrics then mean nothing)."""
        return False

    # -- objective and metrics -------------------------------------------------------------------
    @abstractmethod
    def loss(self, outputs: Any, targets: Any, train: bool) -> Tensor:
        """Mean loss of a batch."""

    @abstractmethod
    def batch_sums(self, outputs: Any, targets: Any) -> dict[str, Tensor]:
        """Additive statistics of a batch, including ``count``."""

    @abstractmethod
    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        """Metrics from the summed statistics of an epoch."""

    def batch_outputs(self, outputs: Any, targets: Any) -> dict[str, Tensor] | None:
        """Per-sample tensors to gather over the epoch (first dim = samples); None: no gather."""
        return None

    def gathered_metrics(self, gathered: dict[str, Tensor]) -> dict[str, float]:
        """Metrics from the outputs of every sample of the epoch, from every rank."""
        return {}

    # -- declarations ----------------------------------------------------------------------------
    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{type(self).__name__} declares no metric {name!r}; it has "
                       f"{', '.join(m.name for m in self.metrics)}")

    @property
    def monitor_metric(self) -> Metric:
        return self.metric(self.monitor)

    def describe(self) -> dict[str, Any]:
        """What run summaries record, so reports judge runs without the task at hand."""
        return {"monitor": self.monitor_metric.to_dict(), "metrics": [m.to_dict() for m in self.metrics]}


def _first_tensor(batch: Any) -> Tensor | None:
    if isinstance(batch, Tensor):
        return batch
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for v in values:
        found = _first_tensor(v)
        if found is not None:
            return found
    return None


def count(batch_size: int, device: torch.device | None = None) -> Tensor:
    """The ``count`` entry of ``batch_sums``."""
    return torch.tensor(float(batch_size), device=device)


def build_task(run: Any, info: Any = None) -> Task:
    """The task a run config names (``task.name``), built by its registered builder.

    Args:
        run: the run config.
        info: the dataset's description (class count, vocabulary, ...).
    """
    from ..registry import TASKS

    return TASKS.get(run.task.name).build(run.task, info)


__all__ = ["Task", "Metric", "LOSS", "build_task", "count"]
