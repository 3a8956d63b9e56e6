"""Tasks: what the engine needs to know about a problem, and nothing about the host.

A task turns a batch into model outputs and targets, says how big a batch is and how to
collate samples, computes the loss, and declares its metrics (name, direction, unit, scale).
Each task is registered (`lm4vis.register_task`) with a typed config.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "Task": ".base", "Metric": ".base", "build_task": ".base",
    "ClassificationTask": ".classification", "ForecastingTask": ".forecasting",
    "TaskConfig": ".configs", "ClassificationConfig": ".configs", "ForecastingConfig": ".configs",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
