"""Run folders: their layout, names, summaries, and the rules for resuming one.

A run lives in ``out_dir/run_name/``::

    config.yaml          the resolved RunConfig (what `load_run` rebuilds the model from)
    checkpoints/         last.ckpt and the best epoch(s), each written atomically
    metrics.csv          Lightning's CSV log (appended to on resume)
    tensorboard/         TensorBoard events
    summary.json         status, final and best metrics, parameter counts, time per step

An existing folder is never overwritten: it is refused unless resumed, and resuming with a
different config is refused with the differing keys named.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .files import atomic_write
from .config import ConfigError, RunConfig

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
LAST_CKPT = "last.ckpt"
#: Set by the launching process so that DDP worker processes find the run folder it chose.
RUN_DIR_ENV = "LM4VIS_RUN_DIR"
#: Keys that say where a run lives, not what it computes: they may differ on resume.
LOCATION_KEYS = ("out_dir", "run_name")
#: Keys that change how a run executes, not what it learns: a resume may change them.
EXECUTION_KEYS = ("trainer.progress_bar", "trainer.compile", "trainer.threads",
                  "trainer.accelerator", "trainer.devices", "trainer.strategy",
                  "trainer.precision", "trainer.fast", "trainer.fast_compile",
                  "trainer.fast_autocast")


class RunExistsError(FileExistsError, ValueError):
    """The run folder is taken; the message says how to resume or pick another name.

    Also a ValueError: a refused command line, which the CLI reports in one line."""


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


#: What to do about a resume with another config, in the words of each interface.
RESUME_FIX = {
    "train": "Resume without --config (the run's own config.yaml is used), or start a new run with --run-name",
    "compare": "Give compare another --name (or --out) for this config, or move that folder away",
    "python": "Call train(None, resume=...) to use the run's own config, or set run_name for a new run",
}


def check_resume_config(saved: RunConfig, given: RunConfig, run_dir: Path, interface: str = "train") -> None:
    """Refuse to resume ``run_dir`` with a config that computes something else.

    Args:
        saved: the run's ``config.yaml``.
        given: the config asked for now (already resolved by `prepare_config`).
        run_dir: for the message.
        interface: whose words the fix is given in (``train``, ``compare``, ``python``).
    """
    a, b = saved.to_dict(), given.to_dict()
    for key in LOCATION_KEYS:
        a.pop(key, None)
        b.pop(key, None)
    differing = [k for k in RunConfig.from_dict(a).diff(RunConfig.from_dict(b)) if k not in EXECUTION_KEYS]
    if differing:
        flat_a, flat_b = _flat(a), _flat(b)
        details = "; ".join(f"{k}: run has {flat_a.get(k)!r}, given {flat_b.get(k)!r}" for k in differing)
        raise ConfigError(f"cannot resume {run_dir} with a different config ({details}). {RESUME_FIX[interface]}")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out
