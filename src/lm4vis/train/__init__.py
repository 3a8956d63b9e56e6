"""Training: typed run configs, one Lightning engine generic over tasks, runs and comparisons."""

from .._lazy import lazy_exports

_EXPORTS = {
    name: ".config" for name in (
        "RunConfig", "HostConfig", "BlockConfig", "DataConfig", "OptimConfig", "TrainerConfig",
        "TaskConfig", "ConfigError", "load_config", "load_run_config")
}
# `compare` and `sweep` are submodules of the same name: import them from there.
_EXPORTS.update({"train": ".run", "load_run": ".loading", "RunInterrupted": ".interrupt"})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
