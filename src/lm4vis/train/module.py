"""The one LightningModule: any host model, any `Task`.

It owns what every task shares: the optimiser and schedule, per-step reseeding (so a resumed
run repeats the uninterrupted one bit for bit), exact epoch metrics summed over batches and
ranks (or computed from per-sample outputs gathered from every rank, for metrics that are not
sums), counts of skipped samples (distinct items by split and reason), and a per-epoch history kept inside the checkpoints. What a
batch is, how it reaches the model and what is measured is the task's (`lm4vis.tasks.Task`).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from ..data.skips import SKIPPED_ITEMS, SkipCounter
from ..tasks.base import Task
from .config import OptimConfig
from .optim import build_optimizer
from .seeding import seed_all, seed_for


class LitModel(L.LightningModule):
    """Trains ``model`` on ``task``.

    Args:
        model: the host with its block attached (or any ``nn.Module`` the task can feed).
        task: loss, metrics and batch handling.
        optim: the optimiser config.
        seed: the run seed (reseeds the generators at every step from (seed, epoch, batch, rank)).
    """

    def __init__(self, model: nn.Module, task: Task, optim: OptimConfig, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.optim_cfg = optim
        self.seed = seed
        self.history: list[dict[str, float]] = []  # one entry per validated epoch
        self.peak_lr: float | None = None
        self._train_sums: dict[str, Tensor] = {}
        self._val_sums: dict[str, Tensor] = {}
        self._val_outputs: dict[str, list[Tensor]] = {}
        #: items the data pipeline skipped (unreadable files...), each counted once by split and reason
        self.skips = SkipCounter()

    def forward(self, x: Any) -> Any:
        return self.model(x)

    # -- training --------------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout, drop-path and mixup draw from the global generators: seed them from the
        # position in the run alone, so resuming or a different variant changes nothing.
        seed_all(seed_for(self.seed, self.current_epoch, batch_idx, self.global_rank, 1))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        self._count_skipped(batch, "train")
        outputs, targets = self.task.forward(self.model, batch, train=True)
        loss = self.task.loss(outputs, targets, train=True)
        n = self.task.batch_size(batch)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, batch_size=n)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False,
                 batch_size=n)
        sums = {"count": torch.tensor(float(n), device=loss.device), "loss": loss.detach().float() * n}
        if not self.task.mixes_targets:
            sums = self.task.batch_sums(outputs, targets)
            sums["loss"] = loss.detach().float() * n  # the loss as optimised (e.g. smoothed)
        _add(self._train_sums, sums)
        return loss

    def _count_skipped(self, batch: Any, split: str) -> None:
        if isinstance(batch, dict) and batch.get("skipped"):
            self.skips.add(split, {str(k): int(v) for k, v in batch["skipped"].items()}, batch.get(SKIPPED_ITEMS))

    @property
    def skipped(self) -> dict[str, dict[str, int]]:
        """Distinct items skipped so far, ``{split: {reason: count}}`` (`SkipCounter.counts`)."""
        return self.skips.counts()

    def gathered_skips(self) -> dict[str, dict[str, int]]:
        """`skipped` over every rank of a distributed run (this rank's alone otherwise).

        A collective: every rank must call it, as `lm4vis.train.run` does after a completed fit.
        """
        dist = torch.distributed
        if self.trainer.world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
            return self.skips.counts()
        states: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(states, self.skips.state_dict())
        total = SkipCounter()
        for state in states:
            total.merge(state)
        return total.counts()

    def on_train_epoch_start(self) -> None:
        self._train_sums = {}

    def on_train_epoch_end(self) -> None:
        self.skips.end_pass("train")
        totals = self._reduce(self._train_sums)
        if not totals:
            return
        n = max(float(totals["count"]), 1.0)
        metrics = {"train/epoch_loss": float(totals["loss"]) / n}
        if not self.task.mixes_targets:
            metrics.update({f"train/epoch_{k}": v for k, v in self.task.epoch_metrics(totals).items()
                            if k != "loss"})
        self.log_dict(metrics, sync_dist=False, rank_zero_only=False)
        if self.history and self.history[-1].get("epoch") == self.current_epoch:
            self.history[-1].update(metrics)
        else:
            self.history.append({"epoch": self.current_epoch, "step": self.global_step, **metrics})

    # -- validation ------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_sums = {}
        self._val_outputs = {}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._count_skipped(batch, "val")
        outputs, targets = self.task.forward(self.model, batch, train=False)
        _add(self._val_sums, self.task.batch_sums(outputs, targets))
        per_sample = self.task.batch_outputs(outputs, targets)
        for k, v in (per_sample or {}).items():
            self._val_outputs.setdefault(k, []).append(v.detach())

    def on_validation_epoch_end(self) -> None:
        self.skips.end_pass("val")
        totals = self._reduce(self._val_sums)
        if not totals or self.trainer.sanity_checking:
            return
        values = self.task.epoch_metrics(totals)
        if self._val_outputs:
            values.update(self.task.gathered_metrics(self._gather(self._val_outputs)))
        metrics = {f"val/{k}": v for k, v in values.items()}
        self.log_dict(metrics, sync_dist=False, prog_bar=True)
        entry = {"epoch": self.current_epoch, "step": self.global_step, **metrics}
        # Validation runs before on_train_epoch_end in Lightning's loop: the train
        # numbers of this epoch join the entry there.
        self.history.append(entry)

    def _reduce(self, sums: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.trainer.world_size <= 1:
            return sums
        # Every rank must join, in the same key order, even one that saw no batch.
        keys = sorted(set(sums) | {"count"})
        local = torch.stack([sums.get(k, torch.zeros((), device=self.device)).float() for k in keys])
        total = self.trainer.strategy.reduce(local.to(self.device), reduce_op="sum")
        return dict(zip(keys, total.cpu()))

    def _gather(self, outputs: dict[str, list[Tensor]]) -> dict[str, Tensor]:
        """Per-sample outputs of the epoch from every rank, concatenated in rank order."""
        local = {k: torch.cat(v) for k, v in outputs.items()}
        if self.trainer.world_size <= 1:
            return local
        # all_gather needs equal shapes: pad each rank's rows to the longest, then cut.
        n = torch.tensor([len(next(iter(local.values())))], device=self.device)
        counts = self.trainer.strategy.all_gather(n).flatten().tolist()
        longest = max(counts)
        out = {}
        for k, v in local.items():
            padded = torch.zeros((longest, *v.shape[1:]), dtype=v.dtype, device=self.device)
            padded[: len(v)] = v
            every = self.trainer.strategy.all_gather(padded)  # (world, longest, ...)
            out[k] = torch.cat([every[r, : counts[r]] for r in range(len(counts))]).cpu()
        return out

    # -- optimiser -------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        trainer = self.trainer
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "batches_per_epoch"):
            # Counted without building the loader: Lightning's estimate creates the training
            # iterator before a checkpoint is restored, and with workers it would prefetch the
            # resumed epoch in epoch 0's order.
            batches = dm.batches_per_epoch(trainer.world_size, trainer.limit_train_batches)
            per_epoch = max(1, math.ceil(batches / trainer.accumulate_grad_batches))
            total = per_epoch * trainer.max_epochs
            if trainer.max_steps != -1:
                total = min(total, trainer.max_steps)
        else:
            total = int(trainer.estimated_stepping_batches)
            per_epoch = max(1, math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches))
        self.peak_lr = peak_lr(self.optim_cfg, self.global_batch_size())
        opt, sched = build_optimizer(self.model, self.optim_cfg, self.peak_lr, total, per_epoch)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def global_batch_size(self) -> int:
        trainer = self.trainer
        dm = trainer.datamodule
        per_device = getattr(dm, "batch_size", None) or getattr(trainer.train_dataloader, "batch_size", 1)
        return int(per_device) * trainer.world_size * trainer.accumulate_grad_batches

    # -- checkpoint extras -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lm4vis_history"] = list(self.history)
        checkpoint["lm4vis_skipped"] = self.skips.state_dict()
        # The epoch's sums so far: a run stopped inside an epoch resumes them (Lightning does
        # not call on_train_epoch_start for the rest of a restarted epoch).
        checkpoint["lm4vis_train_sums"] = {k: v.detach().cpu() for k, v in self._train_sums.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("lm4vis_history", []))
        self.skips = SkipCounter()
        self.skips.load_state_dict(checkpoint.get("lm4vis_skipped", {}))
        self._train_sums = {k: v.to(self.device) for k, v in checkpoint.get("lm4vis_train_sums", {}).items()}


def peak_lr(cfg: OptimConfig, global_batch: int) -> float:
    """The rate after warm-up: ``lr``, or ``lr * global_batch / lr_batch_size`` (DeiT's rule).

    Args:
        cfg: the optimiser config.
        global_batch: images per optimizer step over all devices.
    """
    if cfg.lr_batch_size is None:
        return cfg.lr
    return cfg.lr * global_batch / cfg.lr_batch_size


def _add(into: dict[str, Tensor], sums: dict[str, Tensor]) -> None:
    for k, v in sums.items():
        v = v.detach().float()
        into[k] = into[k] + v if k in into else v
