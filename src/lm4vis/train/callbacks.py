"""Lightning pieces of a run: NaN stop, safe stop on a signal, step timing, atomic checkpoints,
an appending CSV log, progress."""

from __future__ import annotations

import csv
import logging
import os
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.exceptions import SIGTERMException

from .files import atomic_write
from .interrupt import STOP_SIGNALS

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message says what to lower."""


class NonFiniteLossStop(L.Callback):
    """Stops the run at the first non-finite loss, before its gradients touch the weights.

    The check runs before backward; every rank takes part so that all of them stop together.

    Args:
        precision: the trainer's precision (the advice depends on it).
    """

    def __init__(self, precision: str) -> None:
        self.precision = precision

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise NonFiniteLossError(self.message(trainer, loss))

    def message(self, trainer: L.Trainer, loss: torch.Tensor) -> str:
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        if self.precision.startswith("16"):
            fix = "or switch trainer.precision to bf16-mixed or 32 (fp16 overflows)"
        elif self.precision.startswith("bf16"):
            fix = "or try trainer.precision=32 to rule out bf16 rounding"
        else:
            fix = "or set optim.grad_clip (precision is fp32 already, so it is not the cause)"
        return (
            f"non-finite training loss ({float(loss.detach().float().mean())}) at step "
            f"{trainer.global_step}, epoch {trainer.current_epoch}: lower optim.lr (now {lr:.3g}) "
            f"or lengthen optim.warmup_epochs, {fix}. The paper's small OPT models also went NaN "
            "at DeiT's learning rate and needed a lower one."
        )


class SafeStop(L.Callback):
    """Routes SIGTERM and SIGINT to Lightning's stop at the next safe point (see
    `lm4vis.train.interrupt`).

    Args:
        checkpoint: the run's ``last.ckpt``, written when the stop falls inside an epoch.
    """

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.signum: int | None = None  # the first stop signal received
        self.saved_mid_epoch = False
        self._handed_over = False
        self._lightning: Any = None  # Lightning's SIGTERM handler
        self._previous: dict[int, Any] = {}

    # -- signals ---------------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registers its SIGTERM handler just before the loop starts; ours wraps it.
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only
        self._lightning = signal.getsignal(signal.SIGTERM)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            return
        self.signum = signum
        # Written straight to the terminal: a logging call inside a signal handler can deadlock.
        os.write(2, f"\nlm4vis: received {signal.Signals(signum).name}: saving at the next safe point"
                    f"{' (Ctrl-C again stops at once)' if signum == signal.SIGINT else ''}\n".encode())

    def _hand_over(self) -> None:
        if self.signum is None or self._handed_over:
            return
        self._handed_over = True
        if callable(self._lightning):
            self._lightning(signal.SIGTERM, None)  # sets trainer.received_sigterm

    # -- safe points -----------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        stepped = (batch_idx + 1) % trainer.accumulate_grad_batches == 0
        # After the epoch's last batch comes validation, which must not be cut: wait for the
        # epoch's end there.
        last = batch_idx + 1 >= trainer.num_training_batches
        if stepped and not last:
            self._hand_over()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        finished = trainer.current_epoch + 1 >= trainer.max_epochs or (
            trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps)
        if finished:  # nothing is left to save: let the run complete
            if self.signum is not None:
                log.warning("received %s in the run's last epoch: it completes instead of stopping",
                            signal.Signals(self.signum).name)
            return
        self._hand_over()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        if 0 < done < trainer.num_training_batches:
            # Inside an epoch: last.ckpt still holds the previous epoch's end, save this point.
            trainer.save_checkpoint(self.checkpoint, weights_only=False)  # the whole training state
            self.saved_mid_epoch = True

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._on_signal:
                signal.signal(signum, previous)
        self._previous = {}


class PlateauStop(L.Callback):
    """End training at the first epoch the plateau rule holds (`lm4vis.train.plateau`).

    It reads the validated history the module keeps (restored from checkpoints, so a resumed
    run judges the epochs before the stop too) at the end of each training epoch, after that
    epoch's validation.

    Args:
        key: the monitor metric's key (``val/acc``).
        window, tolerance, min_epochs: the rule.
    """

    def __init__(self, key: str, window: int, tolerance: float, min_epochs: int = 0) -> None:
        self.key, self.window, self.tolerance, self.min_epochs = key, window, tolerance, min_epochs
        self.stopped_at: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from .plateau import plateau_status

        status = plateau_status(getattr(pl_module, "history", []), self.key, self.window, self.tolerance,
                                min_epochs=self.min_epochs)
        if status["reached"] and trainer.current_epoch + 1 < trainer.max_epochs:
            trainer.should_stop = True
            self.stopped_at = trainer.current_epoch + 1
            log.info("the monitor metric moved %.4g < %.4g over the last %d epochs: plateau at epoch "
                     "%d; stopping (trainer.stop_at_plateau)", status["moved"], self.tolerance,
                     self.window, self.stopped_at)


class StepTimer(L.Callback):
    """Wall and CPU time per training step, data loading included (medians over the run).

    The first ``skip`` steps of every fit are left out: they pay for warm-up (allocations,
    worker start-up) and would bias short runs. CPU time (this process, all its threads) is
    kept beside wall time because on a shared machine wall time mostly measures the neighbours.
    """

    def __init__(self, skip: int = 2) -> None:
        self.skip = skip
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        self._last: float | None = None
        self._last_cpu = 0.0
        self._seen = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None  # the gap across validation is not a step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self._last is not None and self._seen >= self.skip:
            self.times.append(now - self._last)
            self.cpu_times.append(cpu - self._last_cpu)
        self._last, self._last_cpu = now, cpu
        self._seen += 1

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_times) if self.cpu_times else None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then renames it into place.

    Lightning's own save writes through fsspec, whose local "transaction" stages the file in
    the system temp folder and then *moves* it: across file systems that is a copy, and a kill
    during the copy leaves a truncated ``last.ckpt``. A same-folder ``os.replace`` cannot.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(Path(path), lambda f: torch.save(checkpoint, f))


class _AppendingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if os.path.isfile(self.metrics_file_path):
            # Start from the file's columns, so that rows already there stay writable when a
            # rewrite adds a column.
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))

    def _check_log_dir_exists(self) -> None:
        # Lightning deletes an existing metrics.csv here; a resumed run must append to it.
        pass


class RunCSVLogger(CSVLogger):
    """`CSVLogger` writing ``metrics.csv`` straight into the run folder and appending on resume."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        super().__init__(save_dir=os.fspath(run_dir), name="", version="")

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def truncate_metrics(path: Path, completed_epochs: int, partial: tuple[int, int] | None = None) -> None:
    """Drop rows that a resumed run will log again (logged after its checkpoint).

    Args:
        path: ``metrics.csv``.
        completed_epochs: whole epochs the checkpoint holds; rows of later epochs go.
        partial: ``(epoch, step)`` of a checkpoint saved inside ``epoch`` after ``step``
            optimizer steps: that epoch's rows logged before it stay.
    """
    if not path.is_file():
        return

    def kept(row: dict[str, str]) -> bool:
        if row.get("epoch") in ("", None):
            return True
        epoch = int(float(row["epoch"]))
        if epoch < completed_epochs:
            return True
        return partial is not None and epoch == partial[0] and int(float(row.get("step") or 0)) < partial[1]

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = [r for r in reader if kept(r)]

    def write(f: Any) -> None:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write, mode="w")


class LabelledProgressBar(TQDMProgressBar):
    """Lightning's bar, named by what it trains: ``[4/9] frozen-lm seed 1 · epoch 2``.

    Args:
        label: what this run is within its grid (None: the run folder's name).
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if trainer.fit_loop.restarting:  # resumed inside an epoch: its start hook is skipped
            self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self.train_progress_bar.set_description(f"{self.label} · epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


class EpochLines(L.Callback):
    """One line per epoch where a bar does not suit (output is not a terminal, or the preset
    turned the bar off): a long run never goes silent.

    Args:
        label: what this run is within its grid.
        monitor: the key of the task's monitor metric (``val/acc``).
    """

    def __init__(self, label: str, monitor: str) -> None:
        self.label, self.monitor = label, monitor
        self._start = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()  # a run resumed inside an epoch skips its start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        parts = [f"{k}={float(m[k]):.4g}" for k in ("train/epoch_loss", self.monitor) if k in m]
        print(f"{self.label} · epoch {trainer.current_epoch + 1}/{trainer.max_epochs} "
              f"({time.perf_counter() - self._start:.0f} s): {'  '.join(parts)}", flush=True)


class BestCheckpoints(L.Callback):
    """Keep the best ``keep`` epochs' checkpoints by the task's monitor metric, as
    ``epochNNN.ckpt``, beside the ``last.ckpt`` that resuming needs.

    Saved at the end of each training epoch (after that epoch's validation) with
    ``trainer.save_checkpoint``. A monitor-driven ModelCheckpoint is not used for this: with
    one, a run resumed from ``last.ckpt`` no longer repeated the uninterrupted run exactly.

    Args:
        folder: the run's ``checkpoints/``.
        keep: how many to keep.
        key: the monitor metric's key (``val/acc``); mode: ``max`` or ``min``.
    """

    def __init__(self, folder: Path, keep: int, key: str, mode: str) -> None:
        self.folder, self.keep, self.key, self.mode = Path(folder), keep, key, mode
        self.best: list[tuple[float, str]] = []  # (score, file name), best first

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.key)
        if score is None:  # no validation this epoch
            return
        name = f"epoch{trainer.current_epoch:03d}.ckpt"
        ranked = sorted([*self.best, (float(score), name)], key=lambda sn: sn[0],
                        reverse=self.mode == "max")
        kept = ranked[: self.keep]
        if (float(score), name) in kept:
            trainer.save_checkpoint(self.folder / name, weights_only=False)  # optimiser too
        if trainer.is_global_zero:
            for _, dropped in ranked[self.keep:]:
                (self.folder / dropped).unlink(missing_ok=True)
        self.best = kept

    def state_dict(self) -> dict[str, Any]:
        return {"best": [list(x) for x in self.best]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = [(float(s), str(n)) for s, n in state.get("best", [])]
