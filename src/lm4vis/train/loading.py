"""Loading a finished run: its model rebuilt from ``config.yaml``, its weights from a checkpoint.

Checkpoints are read with ``weights_only=True``: a run folder may come from someone else, and
unpickling a checkpoint must never run its code. Only the plain types lm4vis itself writes
(tensors, numbers, strings, lists and dicts of them) are accepted; anything else is refused
with an error that says so.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import RunConfig, load_run_config
from .folders import CONFIG_FILE, LAST_CKPT


class UnsafeCheckpointError(ValueError):
    """A checkpoint that holds more than tensors and plain values; it was not unpickled."""


def read_checkpoint(path: str | os.PathLike, mmap: bool = False) -> dict[str, Any]:
    """A Lightning checkpoint, unpickled with ``weights_only=True``.

    Args:
        path: the ``.ckpt`` file.
        mmap: map the tensors instead of reading them (to look at metadata cheaply).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"{path} holds objects other than tensors and plain values, so it was not loaded "
            f"(loading it could run code it carries): {str(e).splitlines()[0]}. lm4vis writes "
            "only plain checkpoints; if you trust the file, load it yourself with torch.load"
        ) from None


@dataclass(frozen=True)
class CheckpointPosition:
    """Where in training a ``last.ckpt`` stands.

    Attributes:
        epoch: the epoch it was saved in, from 0 as Lightning counts.
        step: optimizer steps done.
        batches: training batches of ``epoch`` done.
        mid_epoch: saved inside the epoch (a stop signal), not at its end.
    """

    epoch: int
    step: int
    batches: int
    mid_epoch: bool

    @property
    def epochs_done(self) -> int:
        return self.epoch if self.mid_epoch else self.epoch + 1

    def describe(self, max_epochs: int) -> str:
        if self.mid_epoch:
            return (f"epoch {self.epoch + 1}/{max_epochs} after {self.batches} of its batches, "
                    f"step {self.step}")
        return f"the end of epoch {self.epoch + 1}/{max_epochs}, step {self.step}"


def checkpoint_position(path: str | os.PathLike) -> CheckpointPosition:
    """Read where a Lightning checkpoint stands (cheaply: its tensors are mapped, not read)."""
    ckpt = read_checkpoint(path, mmap=True)
    fit = ckpt.get("loops", {}).get("fit_loop", {})
    epochs = fit.get("epoch_progress", {}).get("current", {})
    batches = fit.get("epoch_loop.batch_progress", {}).get("current", {})
    # Lightning counts an epoch as started at its beginning and processed at its end.
    mid = int(epochs.get("started", 0)) > int(epochs.get("processed", 0))
    return CheckpointPosition(epoch=int(ckpt.get("epoch", -1)), step=int(ckpt.get("global_step", 0)),
                              batches=int(batches.get("completed", 0)), mid_epoch=mid)


def load_run(run_dir: str | os.PathLike, checkpoint: str = LAST_CKPT) -> tuple[nn.Module, RunConfig]:
    """Rebuild a trained model from its run folder.

    The model is built from ``config.yaml`` (frozen LM layers re-read from their source) and
    the checkpoint's weights loaded strictly; `FrozenLMBlock` checks that the re-read layers
    have the content hash the run was trained with.

    Args:
        run_dir: the run folder.
        checkpoint: file name under ``checkpoints/`` (``last.ckpt``, ``epoch002.ckpt``).

    Returns:
        (model in eval mode, the run's config). The run's data source
        (``lm4vis.train.datamodule.build_source(cfg, run_dir)``) gives its splits with their transforms;
        for images, ``lm4vis.data.image_source.build_transform(cfg)`` preprocesses new ones.
    """
    run_dir = Path(run_dir)
    config_file = run_dir / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it holds no {CONFIG_FILE}")
    path = run_dir / "checkpoints" / checkpoint
    if not path.is_file():
        have = sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt"))
        raise FileNotFoundError(
            f"{path} does not exist; checkpoints in this run: {', '.join(have) or 'none (it never finished an epoch)'}"
        )
    cfg = load_run_config(config_file)
    from ..hosts import build_model
    from .datamodule import build_source

    model = build_model(cfg.host, cfg.block, seed=cfg.seed, info=build_source(cfg, run_dir).info)
    state = read_checkpoint(path)["state_dict"]
    prefix = "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return model.eval(), cfg


__all__ = ["load_run", "read_checkpoint", "checkpoint_position", "CheckpointPosition",
           "UnsafeCheckpointError"]
