"""One training run: resolve and check everything, make the folder, fit, summarise.

The folder's layout and the resume rules are in `lm4vis.train.folders`; loading a finished
run is `lm4vis.train.loading`. Everything that can be checked is checked before the run
folder exists: the config, the data (host against data), the model and the placement.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .callbacks import (AtomicCheckpointIO, NonFiniteLossError, NonFiniteLossStop, PlateauStop,
                        RunCSVLogger, SafeStop, StepTimer, atomic_write, truncate_metrics)
from .fastpath import fast_path_notes
from .plateau import plateau_status
from .config import ConfigError, RunConfig, load_run_config, threads_for
from .datamodule import DataSource, RunDataModule, build_source, prepare_config, save_run_files
from .folders import (CONFIG_FILE, EXECUTION_KEYS, LAST_CKPT, RUN_DIR_ENV, RunExistsError,
                      _flat, check_resume_config, is_secondary_process, read_summary, run_name_for,
                      write_summary)
from .interrupt import RunInterrupted

log = logging.getLogger(__name__)


#: Lightning warnings that describe intended behaviour here, not a problem.
_EXPECTED_WARNINGS = (
    r".*module\(s\) in eval mode.*",  # the frozen LM stays in eval mode by design
    r".*Checkpoint directory .* exists and is not empty.*",  # a resumed run's own folder
    r".*does not have many workers.*",  # workers are a per-preset choice (tiny images: 0)
    r".*LeafSpec.*",  # a torch deprecation inside Lightning
    r".*smaller than the logging interval.*",  # short runs log every step they have
    # Epoch metrics are summed over ranks by the module itself before they are logged.
    r".*It is recommended to use `self.log\(.*sync_dist=True.*",
    # A run stopped inside an epoch resumes exactly: `EpochSampler` skips the batches done.
    r".*resuming from a checkpoint that ended before the epoch ended.*",
)


# -- training --------------------------------------------------------------------------------------
def train(
    cfg: RunConfig | None = None,
    *,
    resume: str | os.PathLike | None = None,
    auto_name: bool = False,
    callbacks: Iterable[Any] = (),
    label: str | None = None,
    interface: str = "train",
) -> dict[str, Any]:
    """Train one run and return its summary (also written as ``summary.json``).

    Args:
        cfg: the run config; may be None when resuming (the run's own config is used).
        resume: a run folder to continue from its ``last.ckpt``; a completed run is returned
            as is, a run killed before its first checkpoint starts over in its folder.
        auto_name: take the first free ``<run_name>-N`` folder instead of refusing a taken one.
        callbacks: extra Lightning callbacks (tests use one to simulate a kill).
        label: what the progress output calls this run (``[4/9] frozen-lm seed 1``); the run
            folder's name when None.
        interface: whose words an error's fix is given in (``train``, ``compare``, ``python``).

    Returns:
        The summary dict: ``status`` (``completed`` or ``failed``), ``run_dir``, metrics, ...

    Raises:
        RunExistsError: the folder exists and ``resume`` was not given.
        ConfigError: the config is invalid or differs from the run being resumed.
    """
    secondary = is_secondary_process()
    run_dir, cfg, ckpt, model, source = _resolve_run(cfg, resume, auto_name, secondary, interface)
    if resume is not None:
        # Every process decides alike: DDP workers re-run the same command (and `compare` loop).
        done = read_summary(run_dir)
        if done is not None and done.get("status") == "completed":
            log.info("%s is already complete; nothing to resume", run_dir)
            return done

    if source is None:
        source = build_source(cfg, run_dir)
    if model is None:
        model = _build_model(cfg, source)
    if not secondary:
        os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
        if ckpt is not None:
            from .loading import checkpoint_position

            at = checkpoint_position(ckpt)
            truncate_metrics(run_dir / "metrics.csv", at.epochs_done,
                             (at.epoch, at.step) if at.mid_epoch else None)
            log.info("resuming %s from %s at %s", run_dir, ckpt.name, at.describe(cfg.trainer.max_epochs))
        elif resume is not None:
            (run_dir / "metrics.csv").unlink(missing_ok=True)  # nothing survived: start clean
    return _fit(cfg, model, source, run_dir, ckpt, list(callbacks), label or run_dir.name)


def _resolve_run(
    cfg: RunConfig | None,
    resume: str | os.PathLike | None,
    auto_name: bool,
    secondary: bool,
    interface: str = "train",
) -> tuple[Path, RunConfig, Path | None, nn.Module | None, DataSource | None]:
    """(run folder, resolved config, checkpoint to resume from or None, model and data source
    if built)."""
    if resume is not None:
        run_dir = Path(resume)
        config_file = run_dir / CONFIG_FILE
        if not config_file.is_file():
            raise FileNotFoundError(
                f"cannot resume {run_dir}: it holds no {CONFIG_FILE}; pass the folder of a run "
                "that lm4vis train created"
            )
        saved = load_run_config(config_file)
        if cfg is not None:
            if not secondary:
                check_resume_config(saved, prepare_config(cfg), run_dir, interface)
            # What is allowed to differ is taken from the command, e.g. --compile on a resume.
            given = _flat(cfg.to_dict())
            before = _flat(saved.to_dict())
            saved = saved.replace({k: given[k] for k in EXECUTION_KEYS if k in given})
            changed = [f"{k}: {before.get(k)!r} -> {given[k]!r}" for k in EXECUTION_KEYS
                       if k in given and given[k] != before.get(k)]
            if changed and not secondary:
                log.info("resuming %s with other execution settings (they do not change what is "
                         "learned): %s", run_dir, "; ".join(changed))
        last = run_dir / "checkpoints" / LAST_CKPT
        return run_dir, saved, last if last.is_file() else None, None, None

    if cfg is None:
        raise ValueError("train() needs a config, or resume= a run folder")
    if secondary:
        # The main process chose and created the folder; read what it wrote.
        env = os.environ.get(RUN_DIR_ENV)
        out_dir = Path(cfg.out_dir)
        run_dir = Path(env) if (auto_name or cfg.run_name is None) and env else (
            out_dir / (cfg.run_name or cfg.default_run_name))
        saved = load_run_config(_wait_for(run_dir / CONFIG_FILE))
        last = run_dir / "checkpoints" / LAST_CKPT
        return run_dir, saved, last if last.is_file() else None, None, None

    source = build_source(cfg)
    cfg = prepare_config(cfg, source)  # fills data statistics, checks host against data
    if (fast := fast_path_notes(cfg)) is not None and fast not in _FAST_NOTES_SAID:
        _FAST_NOTES_SAID.add(fast)  # one line per process, not one per run of a demo or sweep
        log.info(fast)
    source = build_source(cfg)  # the resolved config's source (the image transform reads the statistics)
    out_dir = Path(cfg.out_dir)
    name = run_name_for(cfg, out_dir, auto_name)
    run_dir = out_dir / name
    if run_dir.exists():
        raise RunExistsError(
            f"run folder {run_dir} already exists; continue it with --resume {run_dir}, or choose "
            "another --run-name (--run-name auto adds a free suffix). Nothing was overwritten."
        )
    cfg = cfg.replace({"run_name": name})
    _check_strategy(cfg)
    _probe_trainer(cfg)  # a hardware/strategy Lightning refuses leaves no folder behind
    model = _build_model(cfg, source)  # fail on a bad host/block before the folder exists
    run_dir.mkdir(parents=True, exist_ok=False)
    atomic_write(run_dir / CONFIG_FILE, lambda f: f.write(cfg.to_yaml()), mode="w")
    for path in save_run_files(source, run_dir):
        log.info("saved %s with the run", path.name)
    write_summary(run_dir, {"status": "running", "run_dir": str(run_dir)})
    return run_dir, cfg, None, model, source


def _wait_for(path: Path, timeout: float = 600.0) -> Path:
    """A DDP worker may get here before the main process has written the run's config."""
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise FileNotFoundError(f"{path} did not appear within {timeout:.0f} s; did the main process fail?")
        time.sleep(0.2)
    return path


def _build_model(cfg: RunConfig, source: DataSource) -> nn.Module:
    from ..hosts import build_model

    return build_model(cfg.host, cfg.block, seed=cfg.seed, info=source.info)


def _check_strategy(cfg: RunConfig) -> None:
    """Refuse, before any folder exists, a strategy Lightning would only reject in `fit`."""
    t = cfg.trainer
    if t.strategy.startswith("fsdp") and (t.accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(
            f"trainer.strategy={t.strategy} needs CUDA GPUs (Lightning's FSDPStrategy does not run "
            "on the CPU); on CPUs use --strategy ddp, which shards the data across processes"
        )


#: The config keys behind each Trainer argument, to name in an error.
_TRAINER_FLAGS = "--accelerator, --devices, --strategy, --precision (trainer.accelerator, ...)"


def _probe_trainer(cfg: RunConfig) -> None:
    """Build (and drop) a Trainer with the run's hardware settings, so that a combination
    Lightning refuses fails before the run folder exists, in one line instead of a traceback."""
    import lightning as L

    t = cfg.trainer
    try:
        L.Trainer(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
                  strategy=_strategy(t.strategy), precision=t.precision, logger=False,
                  enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"Lightning cannot run trainer.accelerator={t.accelerator!r}, devices={t.devices!r}, "
            f"strategy={t.strategy!r}, precision={t.precision!r} here: {first}. Change it with "
            f"{_TRAINER_FLAGS}; no run folder was made"
        ) from None


def _strategy(name: str) -> Any:
    if name == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        # The frozen LM layers sit beside trainable adapters in one module: FSDP can only
        # shard such a mix with the original parameters kept.
        return FSDPStrategy(use_orig_params=True)
    return name


#: The fast-path lines this process has logged.
_FAST_NOTES_SAID: set[str] = set()


def compile_scope(model: nn.Module) -> str:
    """What `compile_model` compiles on ``model``: ``host`` when no forward hook applies an LM
    block (slot hosts, baselines), else ``block``."""
    from ..hosts import find_attachments

    return "block" if _hooked(find_attachments(model)) else "host"


def _hooked(found: dict[str, Any]) -> list[str]:
    """Names of the attachments ``found`` that a forward hook applies (not a slot)."""
    return sorted(name for name, att in found.items() if att.hook_id != -1)


def compile_model(model: nn.Module) -> str:
    """`torch.compile` the host in place, as much of it as is safe; returns ``host`` or ``block``.

    The whole host when no forward hook applies an LM block: a host with `LMSlot`s calls its
    blocks as modules, which dynamo traces, and a baseline has no block at all. Only the
    blocks when a hook applies one (timm, transformers hosts): dynamo does not guard on
    hooks, so a compiled host could silently reuse a graph traced without its block.
    State-dict keys are unchanged either way. Dynamo's in-memory caches are reset first: each
    variant a `compare` or `sweep` runs in this process adds its own graphs (training,
    validation, a dynamic batch size), and past dynamo's recompile limit it silently runs
    eager. Compiled graphs stay cached on disk, so the reset costs little.
    """
    from ..hosts import find_attachments

    if not torch.cuda.is_available():
        # inductor's C++ toolchain probe warns "No CUDA runtime is found" on every CPU machine
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    torch._dynamo.reset()
    found = find_attachments(model)
    hooked = _hooked(found)
    if not hooked:
        what = f"its LM block{'s' if len(found) > 1 else ''} in slots" if found else "no LM block"
        log.info("trainer.compile: compiling the whole host (%s); the first steps of each shape are slow", what)
        model.compile()
        return "host"
    log.info("trainer.compile: compiling the LM block only (%s reached through a forward hook, which "
             "dynamo does not guard); the first steps of each shape are slow", ", ".join(hooked))
    for att in found.values():
        att.block.compile()
    return "block"


def _bar(cfg: RunConfig) -> bool:
    import sys

    return cfg.trainer.progress_bar and sys.stderr.isatty()


def _progress(cfg: RunConfig, task: Any, label: str) -> list[Any]:
    """A bar named by the run on a terminal; one line per epoch elsewhere (or when the
    preset turns the bar off), so that no run goes silent."""
    from .callbacks import EpochLines, LabelledProgressBar

    if _bar(cfg):
        return [LabelledProgressBar(label)]
    return [EpochLines(label, task.monitor_metric.key)]


def _checkpoint_callbacks(cfg: RunConfig, task: Any, run_dir: Path) -> list[Any]:
    """``last.ckpt`` after every epoch (for resuming), and the best ``keep_checkpoints``
    epochs by the task's monitor metric (`BestCheckpoints`), or every epoch with -1."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .callbacks import BestCheckpoints

    folder, keep = run_dir / "checkpoints", cfg.trainer.keep_checkpoints
    if keep == -1:
        return [ModelCheckpoint(dirpath=folder, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                                save_top_k=-1, every_n_epochs=1, save_last=True, save_on_train_epoch_end=True)]
    # The latest epoch as last.ckpt, overwritten each epoch. (save_top_k=0 with save_last
    # wrote no last.ckpt until fit ended, so a killed run started over.)
    last = ModelCheckpoint(dirpath=folder, filename="last", save_top_k=1, every_n_epochs=1,
                           save_on_train_epoch_end=True, enable_version_counter=False)
    if keep == 0:
        return [last]
    metric = task.monitor_metric
    return [last, BestCheckpoints(folder, keep, metric.key, metric.mode)]

def _fit(
    cfg: RunConfig,
    model: nn.Module,
    source: DataSource,
    run_dir: Path,
    ckpt: Path | None,
    extra_callbacks: list[Any],
    label: str,
) -> dict[str, Any]:
    import lightning as L
    from lightning.pytorch.loggers import TensorBoardLogger

    from ..tasks.base import build_task
    from .module import LitModel

    t = cfg.trainer
    torch.set_num_threads(threads_for(cfg))
    if t.compile:
        compile_model(model)
    task = build_task(cfg, source.info)
    lit = LitModel(model, task, cfg.optim, cfg.seed)
    dm = RunDataModule(cfg, source, collate=task.collate)
    timer = StepTimer()
    stop = SafeStop(run_dir / "checkpoints" / LAST_CKPT)
    plateau = ([PlateauStop(task.monitor_metric.key, t.plateau_window, t.plateau_tolerance,
                            t.plateau_min_epochs)]
               if t.stop_at_plateau else [])
    trainer_kwargs = dict(
        default_root_dir=run_dir,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        precision=t.precision,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=_strategy(t.strategy),
        logger=[RunCSVLogger(run_dir), TensorBoardLogger(save_dir=run_dir, name="tensorboard", version="")],
        callbacks=[*_checkpoint_callbacks(cfg, task, run_dir), NonFiniteLossStop(t.precision), timer,
                   *_progress(cfg, task, label), stop, *plateau, *extra_callbacks],
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        check_val_every_n_epoch=t.val_every_n_epochs,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=cfg.optim.grad_clip,
        gradient_clip_algorithm="norm",
        enable_progress_bar=_bar(cfg),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # EpochSampler splits the data across ranks itself
    )
    try:
        trainer = L.Trainer(**trainer_kwargs)
    except Exception as e:  # Lightning rejects a hardware/strategy combination: say so in the run
        if not is_secondary_process():
            write_summary(run_dir, {"status": "failed", "run_dir": str(run_dir),
                                    "error": f"{type(e).__name__}: {e}"})
        raise
    start = time.perf_counter()
    status, error = "completed", None
    try:
        with warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            # weights_only: resuming never unpickles code, whatever torch's default is.
            trainer.fit(lit, datamodule=dm, ckpt_path=ckpt, weights_only=True)
    except NonFiniteLossError as e:
        status, error = "failed", str(e)
    except BaseException as e:
        # A stop signal, a kill, an exception: record it, keep the checkpoints, let it propagate.
        signum = _stop_signal(e, stop)
        interrupted = None
        if signum is not None:
            interrupted = RunInterrupted(signum, run_dir, trainer.current_epoch + 1, trainer.global_step)
        # An error inside training (a bad file under data.*=fail, a crash in a user's part) fails
        # the run; its checkpoints stay, so once the cause is fixed it continues from the last one.
        status = "interrupted" if interrupted is not None else "failed"
        if trainer.is_global_zero:
            summary = _summary(cfg, lit, trainer, timer, run_dir, status,
                               f"{type(e).__name__}: {e}", time.perf_counter() - start, dm)
            summary["resumable"] = True
            if interrupted is not None:
                summary["error"] = f"stopped by {interrupted.signal_name}"
                summary["interrupted"] = {"signal": interrupted.signal_name, "epoch": interrupted.epoch,
                                          "step": interrupted.step, "mid_epoch_checkpoint": stop.saved_mid_epoch}
            write_summary(run_dir, summary)
            if interrupted is None and not isinstance(e, (KeyboardInterrupt, SystemExit)):
                log.error("%s failed at epoch %d, step %d: %s: %s. Fix the cause, then continue it from "
                          "its last checkpoint with: lm4vis train --resume %s", run_dir,
                          trainer.current_epoch + 1, trainer.global_step, type(e).__name__, e, run_dir)
        if interrupted is not None:
            raise interrupted from None
        raise
    summary = _summary(cfg, lit, trainer, timer, run_dir, status, error, time.perf_counter() - start, dm,
                       every_rank=True)
    if trainer.is_global_zero:
        write_summary(run_dir, summary)
        if status == "failed":
            log.error("%s: %s", run_dir, error)
    return summary


def _stop_signal(error: BaseException, stop: SafeStop) -> int | None:
    """The signal behind a stop, or None for any other exception.

    Lightning raises ``SIGTERMException`` for the safe stop (also when SIGTERM came before
    `SafeStop` was listening), and exits with ``SystemExit(1)`` after a ``KeyboardInterrupt``
    (a second Ctrl-C, or one before the loop started).
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(error, SIGTERMException):
        return stop.signum or signal.SIGTERM
    if isinstance(error, KeyboardInterrupt) or (
            isinstance(error, SystemExit) and isinstance(error.__context__, KeyboardInterrupt)):
        return signal.SIGINT
    return None


def _summary(
    cfg: RunConfig, lit: Any, trainer: Any, timer: StepTimer, run_dir: Path, status: str,
    error: str | None, wall: float, dm: RunDataModule, every_rank: bool = False,
) -> dict[str, Any]:
    """The run summary. ``every_rank``: every process calls this (a completed fit), so the skip
    counts are gathered from all of them; after a failure only rank 0 writes, with its own."""
    import lightning as L

    from ..registry import HOSTS

    model = lit.model
    history = list(lit.history)
    final = {k: v for k, v in (history[-1] if history else {}).items() if k not in ("epoch", "step")}
    metric = lit.task.monitor_metric
    monitor, mode = metric.key, metric.mode
    scored = [h for h in history if monitor in h]
    best = None
    if scored:
        pick = max if mode == "max" else min
        top = pick(scored, key=lambda h: h[monitor])
        best = {"epoch": top["epoch"], monitor: top[monitor]}
    step_time = timer.median
    try:
        global_batch = lit.global_batch_size()
    except Exception:  # the loop never started (an error in setup)
        global_batch = cfg.data.batch_size
    from ..hosts import find_attachments

    blocks = {name: att.block for name, att in find_attachments(model).items()}
    describe = HOSTS.get(cfg.host.kind).get("describe")
    # Each bad item once, by split and reason: while reading (`LitModel.skips`), while indexing.
    skipped = {"pipeline": lit.gathered_skips() if every_rank else lit.skipped, "indexing": dm.skips() if dm.train_set is not None else {}}
    return {
        "status": status,
        "error": error,
        "run_dir": str(run_dir),
        "variant": cfg.block.variant,
        "seed": cfg.seed,
        "dataset": cfg.data.name,
        "host": describe(cfg.host) if describe is not None else cfg.host.kind,
        "host_kind": cfg.host.kind,
        "task": lit.task.describe(),
        "final": final,
        "best": best,
        "history": history,
        "plateau": plateau_status(history, monitor, cfg.trainer.plateau_window, cfg.trainer.plateau_tolerance,
                                  stop=cfg.trainer.stop_at_plateau, min_epochs=cfg.trainer.plateau_min_epochs),
        "params": {
            "total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad),
            "block": ({n: b.param_counts() for n, b in blocks.items()} if len(blocks) > 1 else
                      next(iter(blocks.values())).param_counts() if blocks else None),
            "lm_layers": sum(b.frozen_params for b in blocks.values()) if blocks else None,
        },
        "time_per_step_s": step_time,
        "cpu_time_per_step_s": timer.cpu_median,
        "samples_per_s": global_batch / step_time if step_time else None,
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "global_batch_size": global_batch,
        "peak_lr": lit.peak_lr,
        "world_size": trainer.world_size,
        "precision": cfg.trainer.precision,
        "compiled": cfg.trainer.compile,
        "compiled_scope": compile_scope(lit.model) if cfg.trainer.compile else None,
        "fast_path": fast_path_notes(cfg),
        "threads": torch.get_num_threads(),
        "skipped": skipped,
        "data_notes": list(getattr(dm.source, "notes", None) or []),
        "wall_time_s": wall,
        "versions": {"torch": torch.__version__, "lightning": L.__version__,
                     "python": platform.python_version()},
    }


__all__ = ["train", "compile_model", "compile_scope", "RunExistsError", "RunInterrupted", "read_summary"]
