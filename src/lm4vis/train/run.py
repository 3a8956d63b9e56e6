"""One training run: a folder, a Lightning Trainer, a summary; resuming; loading a result.

A run lives in ``out_dir/run_name/``::

    config.yaml          the resolved RunConfig (what `load_run` rebuilds the model from)
    checkpoints/         epochNNN.ckpt per epoch and last.ckpt, each written atomically
    metrics.csv          Lightning's CSV log (appended to on resume)
    tensorboard/         TensorBoard events
    summary.json         status, final and best metrics, parameter counts, time per step

An existing folder is never overwritten: it is refused unless resumed, and resuming with a
different config is refused with the differing keys named.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .callbacks import (AtomicCheckpointIO, NonFiniteLossError, NonFiniteLossStop, RunCSVLogger,
                        StepTimer, atomic_write, truncate_metrics)
from .config import ConfigError, RunConfig, load_run_config
from .datamodule import DatasetFactory, ImageDataModule, prepare_config

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
LAST_CKPT = "last.ckpt"
#: Set by the launching process so that DDP worker processes find the run folder it chose.
RUN_DIR_ENV = "LM4VIS_RUN_DIR"
#: Keys that say where a run lives, not what it computes: they may differ on resume.
LOCATION_KEYS = ("out_dir", "run_name")
#: Keys that change how a run executes, not what it computes: a resume may change them.
EXECUTION_KEYS = ("trainer.progress_bar", "trainer.compile")


#: Lightning warnings that describe intended behaviour here, not a problem.
_EXPECTED_WARNINGS = (
    r".*module\(s\) in eval mode.*",  # the frozen LM stays in eval mode by design
    r".*Checkpoint directory .* exists and is not empty.*",  # a resumed run's own folder
    r".*does not have many workers.*",  # workers are a per-preset choice (tiny images: 0)
    r".*LeafSpec.*",  # a torch deprecation inside Lightning
    r".*smaller than the logging interval.*",  # short runs log every step they have
    # Epoch metrics are summed over ranks by the module itself before they are logged.
    r".*It is recommended to use `self.log\(.*sync_dist=True.*",
)


class RunExistsError(FileExistsError, ValueError):
    """The run folder is taken; the message says how to resume or pick another name.

    Also a ValueError: a refused command line, which the CLI reports in one line."""


# -- run folders -----------------------------------------------------------------------------------
def is_secondary_process() -> bool:
    """True in a DDP worker that Lightning (or torchrun, SLURM) started beside the main one."""
    return any(int(os.environ.get(v, "0") or 0) > 0 for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def run_name_for(cfg: RunConfig, out_dir: Path, auto: bool) -> str:
    """The folder name of a new run; ``auto`` appends ``-2``, ``-3``, ... until one is free.

    Args:
        cfg: the config (its ``run_name``, else the derived default).
        out_dir: the parent folder.
        auto: add a suffix instead of refusing a taken name.
    """
    base = cfg.run_name or cfg.default_run_name
    if not auto or not (out_dir / base).exists():
        return base
    k = 2
    while (out_dir / f"{base}-{k}").exists():
        k += 1
    return f"{base}-{k}"


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """A run's ``summary.json``, or None if it has none yet.

    Args:
        run_dir: the run folder.
    """
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` atomically (a reader never sees half a file).

    Args:
        run_dir: the run folder.
        summary: JSON-serialisable facts of the run.
    """
    atomic_write(run_dir / SUMMARY_FILE, lambda f: json.dump(summary, f, indent=2, default=str), mode="w")


def check_resume_config(saved: RunConfig, given: RunConfig, run_dir: Path) -> None:
    """Refuse to resume ``run_dir`` with a config that computes something else.

    Args:
        saved: the run's ``config.yaml``.
        given: the config asked for now (already resolved by `prepare_config`).
        run_dir: for the message.
    """
    a, b = saved.to_dict(), given.to_dict()
    for key in LOCATION_KEYS:
        a.pop(key, None)
        b.pop(key, None)
    differing = [k for k in RunConfig.from_dict(a).diff(RunConfig.from_dict(b)) if k not in EXECUTION_KEYS]
    if differing:
        flat_a, flat_b = _flat(a), _flat(b)
        details = "; ".join(f"{k}: run has {flat_a.get(k)!r}, given {flat_b.get(k)!r}" for k in differing)
        raise ConfigError(
            f"cannot resume {run_dir} with a different config ({details}). Resume without "
            "--config (the run's own config.yaml is used), or start a new run with --run-name"
        )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


# -- training --------------------------------------------------------------------------------------
def train(
    cfg: RunConfig | None = None,
    *,
    resume: str | os.PathLike | None = None,
    auto_name: bool = False,
    callbacks: Iterable[Any] = (),
    dataset_factory: DatasetFactory | None = None,
) -> dict[str, Any]:
    """Train one run and return its summary (also written as ``summary.json``).

    Args:
        cfg: the run config; may be None when resuming (the run's own config is used).
        resume: a run folder to continue from its ``last.ckpt``; a completed run is returned
            as is, a run killed before its first checkpoint starts over in its folder.
        auto_name: take the first free ``<run_name>-N`` folder instead of refusing a taken one.
        callbacks: extra Lightning callbacks (tests use one to simulate a kill).
        dataset_factory: ``lm4vis.data.build_dataset`` replacement (tests).

    Returns:
        The summary dict: ``status`` (``completed`` or ``failed``), ``run_dir``, metrics, ...

    Raises:
        RunExistsError: the folder exists and ``resume`` was not given.
        ConfigError: the config is invalid or differs from the run being resumed.
    """
    secondary = is_secondary_process()
    run_dir, cfg, ckpt, model = _resolve_run(cfg, resume, auto_name, dataset_factory, secondary)
    if resume is not None:
        # Every process decides alike: DDP workers re-run the same command (and `compare` loop).
        done = read_summary(run_dir)
        if done is not None and done.get("status") == "completed":
            log.info("%s is already complete; nothing to resume", run_dir)
            return done

    if model is None:
        model = _build_model(cfg)
    if not secondary:
        os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
        if ckpt is not None:
            truncate_metrics(run_dir / "metrics.csv", _completed_epochs(ckpt))
        elif resume is not None:
            (run_dir / "metrics.csv").unlink(missing_ok=True)  # nothing survived: start clean
    return _fit(cfg, model, run_dir, ckpt, list(callbacks), dataset_factory)


def _resolve_run(
    cfg: RunConfig | None,
    resume: str | os.PathLike | None,
    auto_name: bool,
    factory: DatasetFactory | None,
    secondary: bool,
) -> tuple[Path, RunConfig, Path | None, nn.Module | None]:
    """(run folder, resolved config, checkpoint to resume from or None, model if built)."""
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
                check_resume_config(saved, prepare_config(cfg, factory), run_dir)
            # What is allowed to differ is taken from the command, e.g. --compile on a resume.
            given = _flat(cfg.to_dict())
            saved = saved.replace({k: given[k] for k in EXECUTION_KEYS if k in given})
        last = run_dir / "checkpoints" / LAST_CKPT
        return run_dir, saved, last if last.is_file() else None, None

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
        return run_dir, saved, last if last.is_file() else None, None

    cfg = prepare_config(cfg, factory)  # fills data statistics, checks host against data
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
    model = _build_model(cfg)  # fail on a bad host/block before the folder exists
    run_dir.mkdir(parents=True, exist_ok=False)
    atomic_write(run_dir / CONFIG_FILE, lambda f: f.write(cfg.to_yaml()), mode="w")
    write_summary(run_dir, {"status": "running", "run_dir": str(run_dir)})
    return run_dir, cfg, None, model


def _wait_for(path: Path, timeout: float = 600.0) -> Path:
    """A DDP worker may get here before the main process has written the run's config."""
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise FileNotFoundError(f"{path} did not appear within {timeout:.0f} s; did the main process fail?")
        time.sleep(0.2)
    return path


def _build_model(cfg: RunConfig) -> nn.Module:
    from ..hosts import build_model

    return build_model(cfg.host, cfg.block, seed=cfg.seed)


def _completed_epochs(ckpt: Path) -> int:
    state = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    return int(state.get("epoch", -1)) + 1


def _check_strategy(cfg: RunConfig) -> None:
    """Refuse, before any folder exists, a strategy Lightning would only reject in `fit`."""
    t = cfg.trainer
    if t.strategy.startswith("fsdp") and (t.accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(
            f"trainer.strategy={t.strategy} needs CUDA GPUs (Lightning's FSDPStrategy does not run "
            "on the CPU); on CPUs use --strategy ddp, which shards the data across processes"
        )


def _strategy(name: str) -> Any:
    if name == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        # The frozen LM layers sit beside trainable adapters in one module: FSDP can only
        # shard such a mix with the original parameters kept.
        return FSDPStrategy(use_orig_params=True)
    return name


def compile_block(model: nn.Module) -> None:
    """`torch.compile` the model's attached LM block in place (state-dict keys unchanged).

    Only the block: the host reaches it through a forward hook, and dynamo does not guard on
    hooks, so a compiled host could silently reuse a graph traced without its block. Dynamo's
    in-memory caches are reset first: each variant a `compare` or `sweep` runs in this process
    adds its own graphs (training, validation, a dynamic batch size; 8 for frozen, finetune and
    mlp together), and past dynamo's recompile limit it silently runs eager. Compiled graphs
    stay cached on disk, so the reset costs little.
    """
    from ..hosts import find_attachment

    found = find_attachment(model)
    if found is None:
        log.info("trainer.compile: this model has no LM block; nothing to compile")
        return
    log.info("trainer.compile: compiling the LM block; the first steps of each shape are slow")
    if not torch.cuda.is_available():
        # inductor's C++ toolchain probe warns "No CUDA runtime is found" on every CPU machine
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    torch._dynamo.reset()
    found.block.compile()


def _fit(
    cfg: RunConfig,
    model: nn.Module,
    run_dir: Path,
    ckpt: Path | None,
    extra_callbacks: list[Any],
    factory: DatasetFactory | None,
) -> dict[str, Any]:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from .module import LitModel
    from .tasks import build_task

    t = cfg.trainer
    if t.compile:
        compile_block(model)
    lit = LitModel(model, build_task(cfg), cfg.optim, cfg.seed)
    dm = ImageDataModule(cfg, factory)
    timer = StepTimer()
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="epoch{epoch:03d}", auto_insert_metric_name=False,
        save_top_k=-1, every_n_epochs=1, save_last=True, save_on_train_epoch_end=True,
    )
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
        callbacks=[checkpoint, NonFiniteLossStop(t.precision), timer, *extra_callbacks],
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        check_val_every_n_epoch=t.val_every_n_epochs,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=cfg.optim.grad_clip,
        gradient_clip_algorithm="norm",
        enable_progress_bar=t.progress_bar,
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
            trainer.fit(lit, datamodule=dm, ckpt_path=ckpt)
    except NonFiniteLossError as e:
        status, error = "failed", str(e)
    except BaseException as e:
        # A kill (Ctrl-C, an exception): record it, keep the checkpoints, let it propagate.
        if trainer.is_global_zero:
            write_summary(run_dir, _summary(cfg, lit, trainer, timer, run_dir, "interrupted",
                                            f"{type(e).__name__}: {e}", time.perf_counter() - start))
        raise
    summary = _summary(cfg, lit, trainer, timer, run_dir, status, error, time.perf_counter() - start)
    if trainer.is_global_zero:
        write_summary(run_dir, summary)
        if status == "failed":
            log.error("%s: %s", run_dir, error)
    return summary


def _summary(
    cfg: RunConfig, lit: Any, trainer: Any, timer: StepTimer, run_dir: Path, status: str,
    error: str | None, wall: float,
) -> dict[str, Any]:
    import lightning as L

    model = lit.model
    history = list(lit.history)
    final = {k: v for k, v in (history[-1] if history else {}).items() if k not in ("epoch", "step")}
    monitor, mode = lit.task.monitor, lit.task.monitor_mode
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
    lm_block = getattr(model, "lm_block", None)
    return {
        "status": status,
        "error": error,
        "run_dir": str(run_dir),
        "variant": cfg.block.variant,
        "seed": cfg.seed,
        "dataset": cfg.data.name,
        "host": cfg.host.name,
        "final": final,
        "best": best,
        "history": history,
        "params": {
            "total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad),
            "block": lm_block.param_counts() if lm_block is not None else None,
            "lm_layers": getattr(lm_block, "frozen_params", None),
        },
        "time_per_step_s": step_time,
        "cpu_time_per_step_s": timer.cpu_median,
        "images_per_s": global_batch / step_time if step_time else None,
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "global_batch_size": global_batch,
        "peak_lr": lit.peak_lr,
        "world_size": trainer.world_size,
        "precision": cfg.trainer.precision,
        "wall_time_s": wall,
        "versions": {"torch": torch.__version__, "lightning": L.__version__,
                     "python": platform.python_version()},
    }


# -- loading a result -----------------------------------------------------------------------------
def load_run(run_dir: str | os.PathLike, checkpoint: str = LAST_CKPT) -> tuple[nn.Module, RunConfig]:
    """Rebuild a trained model from its run folder.

    The model is built from ``config.yaml`` (frozen LM layers re-read from their source) and
    the checkpoint's weights loaded strictly; `FrozenLMBlock` checks that the re-read layers
    have the content hash the run was trained with.

    Args:
        run_dir: the run folder.
        checkpoint: file name under ``checkpoints/`` (``last.ckpt``, ``epoch002.ckpt``).

    Returns:
        (model in eval mode, the run's config). Preprocess images with
        ``lm4vis.train.datamodule.build_transform(cfg)``.
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
    model = _build_model(cfg)
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    prefix = "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return model.eval(), cfg
