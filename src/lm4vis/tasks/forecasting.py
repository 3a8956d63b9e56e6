"""Forecasting: K trajectories of the focal agent; winner-takes-all loss, Argoverse metrics.

Batches are `lm4vis.data.motion` batches (``vectors``, ``vector_mask``, ``polyline_mask``,
``future``, ``has_future``, ...), padded by the motion collate, which also counts scenes a
dataset skipped and tracks left out by ``max_agents`` in ``batch["skipped"]``. The model is a
host that takes ``(vectors, vector_mask, polyline_mask)`` and returns ``trajectories``
(B, M, T, 2) and ``logits`` (B, M) in the focal frame, as `lm4vis.hosts.vectornet.VectorNet`
does.

Every metric is summed per scene (`ForecastingMetrics`), so the engine's sums over batches and
ranks give the exact mean over the split; every one is an error, declared lower-is-better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..data.motion.vectorize import FEATURES, collate
from ..hosts.vectornet import forecasting_loss
from .base import LOSS, Metric, Task
from .configs import ForecastingConfig
from .forecasting_metrics import ForecastingMetrics

#: Display of each metric family: label, unit, scale, digits.
_DISPLAY: dict[str, tuple[str, str, float, int]] = {
    "minADE": ("minADE", "m", 1.0, 3),
    "minFDE": ("minFDE", "m", 1.0, 3),
    "MR": ("MR", "%", 100.0, 1),
    "brier-minFDE": ("brier-minFDE", "m", 1.0, 3),
}
#: Inputs of the host, in its forward's order.
MODEL_INPUTS: tuple[str, ...] = ("vectors", "vector_mask", "polyline_mask")


def forecasting_metric(name: str) -> Metric:
    """The declaration of ``<family>@<K>`` (e.g. ``minFDE@6``): an error, lower is better."""
    family, _, k = name.partition("@")
    label, unit, scale, digits = _DISPLAY[family]
    return Metric(name, f"{label}@{k}", higher_is_better=False, unit=unit, scale=scale, digits=digits)


class ForecastingTask(Task):
    """Motion batches -> K forecasts; see the module docstring.

    Args:
        ks: numbers of most-confident modes scored.
        miss_threshold: metres above which a final displacement is a miss.
        monitor: the metric that decides (``minFDE@6``).
        regression: ``smooth_l1`` or ``l2``.
        classification_weight: weight of the confidences' cross-entropy.
    """

    def __init__(self, ks: Sequence[int] = (1, 6), miss_threshold: float = 2.0, monitor: str = "minFDE@6",
                 regression: str = "smooth_l1", classification_weight: float = 1.0) -> None:
        cfg = ForecastingConfig(ks=list(ks), miss_threshold=miss_threshold, monitor=monitor,
                                regression=regression, classification_weight=classification_weight)
        self.scorer = ForecastingMetrics(tuple(cfg.ks), cfg.miss_threshold)
        self.regression, self.classification_weight = cfg.regression, cfg.classification_weight
        self.metrics = tuple(forecasting_metric(n) if n != "loss" else LOSS for n in cfg.metric_names)
        self.monitor = cfg.monitor

    @classmethod
    def from_config(cls, cfg: ForecastingConfig, info: Any = None) -> ForecastingTask:
        """Args: cfg: the task config; info: the dataset's `MotionInfo` (unused: the horizon
        is the host's, and `check_data` compared it with the data)."""
        return cls(cfg.ks, cfg.miss_threshold, cfg.monitor, cfg.regression, cfg.classification_weight)

    # -- batches ---------------------------------------------------------------------------------
    def collate(self, items: Sequence[Any]) -> dict[str, Any]:
        """The motion collate: padding polylines and vectors (masked), skipped scenes counted."""
        return collate(list(items))

    def batch_size(self, batch: dict[str, Any]) -> int:
        return int(batch["future"].shape[0]) if "future" in batch else 0

    def forward(self, model: nn.Module, batch: dict[str, Any], train: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        if "future" not in batch:
            # Every scene of this batch was skipped (the collate kept only the counts). A zero
            # loss that still reaches the trainable weights keeps the step (and, across ranks,
            # the gradient all-reduce) going without learning anything from it.
            anchor = sum(p.flatten()[0] * 0.0 for p in model.parameters() if p.requires_grad)
            return {"empty": torch.as_tensor(anchor)}, {}
        out = model(*(batch[key] for key in MODEL_INPUTS))
        return out, {"future": batch["future"], "has_future": batch["has_future"]}

    # -- objective and metrics -------------------------------------------------------------------
    def loss(self, outputs: dict[str, Tensor], targets: dict[str, Tensor], train: bool) -> Tensor:
        if "empty" in outputs:
            return outputs["empty"]
        return forecasting_loss(outputs["trajectories"].float(), outputs["logits"].float(), targets["future"],
                                targets["has_future"], self.regression, self.classification_weight)["loss"]

    def batch_sums(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        if "empty" in outputs:
            device = outputs["empty"].device
            return {"count": torch.zeros((), device=device), "loss": torch.zeros((), device=device)}
        trajectories = outputs["trajectories"].detach().float()
        logits = outputs["logits"].detach().float()
        per_scene = self.scorer(trajectories, logits.softmax(-1), targets["future"], targets["has_future"])
        sums = {name: value.sum() for name, value in per_scene.items()}
        loss = forecasting_loss(trajectories, logits, targets["future"], targets["has_future"],
                                self.regression, self.classification_weight)["loss"]
        sums["loss"] = loss * sums["count"]  # the mean over scored scenes, back to a sum
        return sums

    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        count = float(sums["count"])
        if count == 0:
            return {}  # nothing with ground truth was scored (the datasets refuse such a split)
        means = self.scorer.reduce(sums)
        out = {m.name: means[m.name] for m in self.metrics if m.name in means}
        out["loss"] = float(sums["loss"]) / count
        return out


# -- a reference without learning -------------------------------------------------------------------
_X0, _Y0, _X1, _Y1, _TIME = (FEATURES.index(n) for n in ("x_start", "y_start", "x_end", "y_end", "time"))


def constant_velocity(batch: dict[str, Any], pred_len: int, hz: float, window_s: float = 1.0) -> Tensor:
    """The focal agent's future if it kept its mean velocity of the last ``window_s`` seconds.

    The velocity is measured over a window, not the last step: observations carry noise, and
    at 10 Hz 5 cm of noise is 0.7 m/s on a single step's displacement.

    Args:
        batch: a motion batch (polyline 0 of every scene is the focal agent).
        pred_len: future steps.
        hz: steps per second.
        window_s: seconds of observed motion the velocity is averaged over.

    Returns:
        (B, 1, pred_len, 2) forecasts in the focal frame.
    """
    vectors, pad = batch["vectors"][:, 0].double(), batch["vector_mask"][:, 0]
    real = (~pad).sum(1)  # the focal agent's vectors, contiguous from the first
    last = (real - 1).clamp_min(0)
    first = (real - max(1, round(window_s * hz))).clamp_min(0)
    rows = torch.arange(len(vectors))
    end, start = vectors[rows, last][:, [_X1, _Y1]], vectors[rows, first][:, [_X0, _Y0]]
    # A vector's time is its end's; its start was one step earlier for the focal agent.
    span = vectors[rows, last, _TIME] - (vectors[rows, first, _TIME] - 1.0 / hz)
    velocity = (end - start) / span.clamp_min(1.0 / hz)[:, None]
    steps = torch.arange(1, pred_len + 1, dtype=torch.float64) / hz
    return (end[:, None] + steps[None, :, None] * velocity[:, None])[:, None].float()


def constant_velocity_reference(cfg: Any, limit: int | None = None) -> dict[str, Any]:
    """The Argoverse metrics of `constant_velocity` on a run's validation split.

    Args:
        cfg: the run config (its ``data`` and ``task`` sections).
        limit: at most this many scenes (``data.limit_val`` when None).

    Returns:
        ``{"label", "note", "metrics": {"val/<name>": value}, "scenes"}``, the metrics at the
        smallest K scored: one forecast per scene scores the same at every K.
    """
    from ..tasks.base import build_task
    from ..train.datamodule import build_source

    source = build_source(cfg)
    task = build_task(cfg, source.info)
    val = source.dataset(cfg.data.val_split, train=False)
    n = len(val) if limit is None else min(limit, len(val))
    sums: dict[str, Tensor] = {}
    info = source.info
    for begin in range(0, n, cfg.data.eval_batch_size):
        batch = task.collate([val[i] for i in range(begin, min(n, begin + cfg.data.eval_batch_size))])
        if "future" not in batch:
            continue
        forecast = constant_velocity(batch, info.pred_len, info.hz)
        scores = task.scorer(forecast, torch.ones(len(forecast), 1), batch["future"], batch["has_future"])
        for key, value in scores.items():
            sums[key] = sums.get(key, 0.0) + value.sum()
    means = task.scorer.reduce(sums)
    k = min(task.scorer.ks)
    return {"label": "constant-velocity extrapolation of the last 1 s", "scenes": int(float(sums["count"])),
            "note": f"a single forecast per scene, to be read against the K={k} rows",
            "metrics": {f"val/{m.name}": means[m.name] for m in task.metrics if m.name.endswith(f"@{k}")}}


__all__ = ["ForecastingTask", "forecasting_metric", "constant_velocity", "constant_velocity_reference",
           "MODEL_INPUTS"]
