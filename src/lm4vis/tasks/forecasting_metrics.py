"""Argoverse motion-forecasting metrics, per scene, so that sums over batches and ranks are exact.

The definitions follow the argoverse-api, ``argoverse/evaluation/eval_forecasting.py``
(``get_displacement_errors_and_miss_rate``), line for line in what they decide:

- the K modes scored are the K most probable ones, sorted by ``-p`` with a *stable* sort, so
  that of two equally probable modes the one listed first counts (K=1 is the most confident
  mode, not the best one);
- the best of them is the mode with the smallest *final* displacement (FDE); on a tie the first
  in that order (the more probable) wins, as Argoverse's strict ``fde < curr_min_fde`` does;
- minADE is the ADE **of that min-FDE mode**, not the smallest ADE over the modes;
- a miss is ``minFDE > miss_threshold`` (2.0 m), strictly;
- brier-minFDE is ``(1 - p)^2 + minFDE``, with ``p`` the best mode's probability renormalised
  over the K modes kept.

Each value comes back per scene (float64, 0 where a scene has no ground truth) with a
``count`` of the scenes that have one, so the engine sums every key over batches and ranks and
divides by the summed count (`ForecastingMetrics.reduce`): the mean over the split, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

#: The miss threshold of the Argoverse 1 leaderboard, in metres.
MISS_THRESHOLD = 2.0


def displacement_metrics(
    trajectories: Tensor,
    probabilities: Tensor,
    future: Tensor,
    k: int,
    miss_threshold: float = MISS_THRESHOLD,
) -> dict[str, Tensor]:
    """minADE, minFDE, miss and brier-minFDE of every scene, over its ``k`` most probable modes.

    Args:
        trajectories: (B, M, T, 2) forecasts, M modes of T steps.
        probabilities: (B, M) confidence of each mode (need not sum to 1; only the kept
            modes are renormalised, as Argoverse does).
        future: (B, T, 2) ground truth, in the same frame as ``trajectories``.
        k: number of modes scored; ``min(k, M)`` when the forecast has fewer.
        miss_threshold: a scene is a miss when its minFDE exceeds this (metres).

    Returns:
        ``minADE``, ``minFDE``, ``MR`` (1.0 for a miss) and ``brier-minFDE``, each (B,) float64,
        and ``best_mode``, (B,) long: the index into M of the mode they were measured on.
    """
    if trajectories.dim() != 4 or trajectories.shape[-1] != 2:
        raise ValueError(f"trajectories must be (B, modes, T, 2), got {tuple(trajectories.shape)}")
    b, m, t, _ = trajectories.shape
    if future.shape != (b, t, 2):
        raise ValueError(f"future must be (B, T, 2) = {(b, t, 2)}, got {tuple(future.shape)}")
    if probabilities.shape != (b, m):
        raise ValueError(f"probabilities must be (B, modes) = {(b, m)}, got {tuple(probabilities.shape)}")
    if k < 1:
        raise ValueError(f"k must be a positive number of modes, got {k}")
    kept = min(k, m)
    # Float64 throughout: the per-scene values are summed over a whole split.
    trajectories, future = trajectories.double(), future.double()
    probabilities = probabilities.double()
    order = probabilities.argsort(dim=1, descending=True, stable=True)[:, :kept]  # (B, kept)
    modes = trajectories.gather(1, order[:, :, None, None].expand(-1, -1, t, 2))
    p = probabilities.gather(1, order)
    p = p / p.sum(dim=1, keepdim=True)

    errors = torch.linalg.vector_norm(modes - future[:, None], dim=-1)  # (B, kept, T)
    fde = errors[:, :, -1]
    best = fde.argmin(dim=1, keepdim=True)  # the first of equal minima: the more probable mode
    min_fde = fde.gather(1, best)[:, 0]
    min_ade = errors.mean(dim=-1).gather(1, best)[:, 0]
    p_best = p.gather(1, best)[:, 0]
    return {
        "minADE": min_ade,
        "minFDE": min_fde,
        "MR": (min_fde > miss_threshold).double(),
        "brier-minFDE": (1.0 - p_best) ** 2 + min_fde,
        "best_mode": order.gather(1, best)[:, 0],
    }


@dataclass(frozen=True)
class ForecastingMetrics:
    """The Argoverse metrics at several K, as per-scene sums the engine can add up.

    ``metrics(trajectories, probabilities, future, has_future)`` returns ``minADE@K``,
    ``minFDE@K``, ``MR@K``, ``brier-minFDE@K`` for every K in ``ks`` and ``count``, each (B,)
    float64 with 0 for scenes without ground truth (Argoverse's test split); sum each key over
    every batch and rank, then `reduce`.

    Args:
        ks: the numbers of modes scored; Argoverse 1 reports K=1 and K=6.
        miss_threshold: metres of final displacement above which a forecast is a miss.
    """

    ks: tuple[int, ...] = (1, 6)
    miss_threshold: float = MISS_THRESHOLD

    def __post_init__(self) -> None:
        if not self.ks or any(int(k) != k or k < 1 for k in self.ks) or len(set(self.ks)) != len(self.ks):
            raise ValueError(f"ks={self.ks!r} must be distinct positive integers, e.g. (1, 6)")
        if not self.miss_threshold > 0:
            raise ValueError(f"miss_threshold must be positive (metres), got {self.miss_threshold}")

    @property
    def names(self) -> tuple[str, ...]:
        """Metric names in report order, e.g. ``minADE@1`` ... ``brier-minFDE@6``."""
        return tuple(f"{name}@{k}" for k in self.ks for name in ("minADE", "minFDE", "MR", "brier-minFDE"))

    @property
    def directions(self) -> dict[str, str]:
        """``min`` for every metric: all of them are errors."""
        return dict.fromkeys(self.names, "min")

    def __call__(
        self,
        trajectories: Tensor,
        probabilities: Tensor,
        future: Tensor,
        has_future: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Per-scene values of every metric and the ``count`` of scored scenes.

        Args:
            trajectories: (B, M, T, 2) forecasts.
            probabilities: (B, M) mode confidences (softmax of the model's logits).
            future: (B, T, 2) ground truth; ignored where ``has_future`` is False.
            has_future: (B,) bool, False for scenes without ground truth; all True when None.
        """
        scored = (torch.ones(future.shape[0], dtype=torch.bool, device=future.device)
                  if has_future is None else has_future.bool())
        out: dict[str, Tensor] = {}
        for k in self.ks:
            values = displacement_metrics(trajectories, probabilities, future, k, self.miss_threshold)
            for name in ("minADE", "minFDE", "MR", "brier-minFDE"):
                out[f"{name}@{k}"] = torch.where(scored, values[name], 0.0)
        out["count"] = scored.double()
        return out

    def reduce(self, sums: Mapping[str, float | Tensor]) -> dict[str, float]:
        """Means from the summed per-scene values (``sums`` holds every name and ``count``).

        Args:
            sums: each key of `__call__`'s output, summed over all batches and ranks.
        """
        count = float(sums["count"])
        if count == 0:
            raise ValueError("no scene with ground truth was scored; the test split has none, "
                             "submit its forecasts to the leaderboard instead")
        return {name: float(sums[name]) / count for name in self.names}


__all__ = ["MISS_THRESHOLD", "ForecastingMetrics", "displacement_metrics"]
