"""The plateau rule: a run has plateaued once its monitor metric moved less than a tolerance
over its last ``window`` validated epochs.

Light (no torch): the callback that stops a run there (`lm4vis.train.callbacks.PlateauStop`),
the run summary and the reports all judge with `plateau_status`, so "reached the plateau" means
one thing everywhere. The tolerance is in the metric's own units (0.005 of a top-1 fraction is
half a point; 0.02 of a minFDE in metres is 2 cm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def moved(values: Sequence[float]) -> float:
    """How far a metric moved over some epochs: max - min."""
    return max(values) - min(values)


def plateau_epoch(values: Sequence[float], window: int, tolerance: float, min_epochs: int = 0) -> int | None:
    """Index (0-based, into ``values``) of the first epoch at which the last ``window`` values
    moved less than ``tolerance``, or None if that never held.

    Args:
        values: the monitor metric at each validated epoch, in order.
        window: epochs the rule looks back over (at least 2).
        tolerance: the largest movement (max - min over the window) that counts as flat,
            exclusive.
        min_epochs: the rule is not judged before this many validated epochs. A flat stretch
            early in the schedule, while the learning rate is still high, is a pause and not the
            plateau: measured on the image demo, the MLP control sat within 0.8 points for
            epochs 4-6 of 16 at 65%, then climbed on past 72%.
    """
    if window < 2:
        raise ValueError(f"a plateau window must span at least 2 epochs, got {window}")
    if min_epochs < 0:
        raise ValueError(f"min_epochs must be 0 or more, got {min_epochs}")
    for end in range(max(window, min_epochs), len(values) + 1):
        if moved(values[end - window:end]) < tolerance:
            return end - 1
    return None


def plateau_status(history: Sequence[Mapping[str, Any]], key: str, window: int, tolerance: float,
                   stop: bool = False, min_epochs: int = 0) -> dict[str, Any]:
    """Whether a run's history reached the plateau, for its summary and the reports.

    Args:
        history: the run's per-epoch entries (``{"epoch", key: value, ...}``).
        key: the monitor metric's key (``val/acc``).
        window, tolerance: the rule (see `plateau_epoch`).
        stop: whether the run was set to stop there (``trainer.stop_at_plateau``).
        min_epochs: validated epochs before the rule is judged (see `plateau_epoch`).

    Returns:
        ``{"reached", "epoch" (1-based, or None), "window", "tolerance", "min_epochs", "moved"
        (over the last window, or None with fewer epochs), "stop"}``.
    """
    scored = [h for h in history if key in h]
    values = [float(h[key]) for h in scored]
    at = plateau_epoch(values, window, tolerance, min_epochs) if len(values) >= window else None
    return {
        "reached": at is not None,
        "epoch": None if at is None else int(scored[at]["epoch"]) + 1,
        "window": window,
        "tolerance": tolerance,
        "min_epochs": min_epochs,
        "moved": moved(values[-window:]) if len(values) >= window else None,
        "stop": stop,
    }


__all__ = ["moved", "plateau_epoch", "plateau_status"]
