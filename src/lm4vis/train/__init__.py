"""Training: typed run configs, one Lightning engine generic over tasks, runs and comparisons."""

from .config import (BlockConfig, ConfigError, DataConfig, HostConfig, OptimConfig, RunConfig,
                     TrainerConfig, load_config, load_run_config)

__all__ = ["RunConfig", "HostConfig", "BlockConfig", "DataConfig", "OptimConfig", "TrainerConfig",
           "ConfigError", "load_config", "load_run_config", "train", "load_run", "compare"]


def __getattr__(name: str):
    # Lightning is a heavy import: pull the engine in only when it is used.
    if name in ("train", "load_run"):
        from . import run
        return getattr(run, name)
    if name == "compare":
        from .compare import compare
        return compare
    raise AttributeError(f"module 'lm4vis.train' has no attribute {name!r}")
