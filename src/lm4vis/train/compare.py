"""Variants x seeds on one dataset with one budget, resumable, then one report.

Every run is an ordinary run in ``out_dir/<name>/<variant>-s<seed>/``: a completed one is
kept (after checking its config is the one asked for), a killed one resumes from its last
checkpoint, a failed one (NaN) is reported as failed while its config is the one asked for,
and moved aside to ``<folder>.failed-N`` and trained again once the config changed (the
user fixed what made it fail). Seeds form the outer loop so that the variants of one seed
are trained close together in time on a shared machine.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..hosts.configs import VARIANTS
from .config import ConfigError, RunConfig, load_run_config
from .report import write_report
from .folders import read_summary
from .run import train

log = logging.getLogger(__name__)


def run_name(label: str, seed: int) -> str:
    """Folder name of one run of a comparison: the cell label made path-safe, and the seed."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or "run"
    return f"{safe}-s{seed}"


def compare(
    cfg: RunConfig,
    variants: Iterable[str] = ("baseline", "frozen-lm", "mlp"),
    seeds: Iterable[int] = (0, 1, 2),
    name: str | None = None,
    title: str | None = None,
    on_run_done: Any = None,
    reading: Any = None,
) -> dict[str, Any]:
    """Train every variant with every seed and write ``report.md``, ``curves.png``, ``results.json``.

    Args:
        cfg: the shared config; ``block.variant``, ``seed`` and ``run_name`` are set per run.
        variants: names from `lm4vis.hosts.VARIANTS`.
        seeds: run seeds; each gives every variant the same host initialisation and batches.
        name: folder under ``cfg.out_dir`` (default: the dataset name).
        title: heading of the report.
        on_run_done: called with each run's summary as it finishes (progress output).
        reading: ``reading(runs, summary) -> str``, a paragraph for the report's end.

    Returns:
        The results dict (as in ``results.json``), with ``out_dir`` added.
    """
    variants = list(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"unknown variant(s) {unknown or '(none given)'}; choose from {', '.join(VARIANTS)}")
    cells = [(v, {"block.variant": v}) for v in variants]
    return run_grid(cfg, cells, seeds, name or cfg.data.name, title=title or f"Variants on {cfg.data.name}",
                    on_run_done=on_run_done, reading=reading)


def run_grid(
    cfg: RunConfig,
    cells: list[tuple[str, dict[str, Any]]],
    seeds: Iterable[int],
    name: str,
    title: str | None = None,
    on_run_done: Any = None,
    reading: Any = None,
) -> dict[str, Any]:
    """Train every cell (a labelled set of config overrides) with every seed, then report.

    `compare` is the grid whose cells are block variants; sweeps (layers, placements, LMs)
    are grids too. Runs go to ``cfg.out_dir/name/<label>-s<seed>/``.

    Args:
        cfg: the shared config.
        cells: ``(label, overrides)`` per row of the report, e.g. ``("layer 3", {"block.layers": "3"})``.
        seeds: run seeds.
        name: folder under ``cfg.out_dir``.
        title: heading of the report.
        on_run_done: called with each run's summary as it finishes.
        reading: ``reading(runs, summary) -> str``, a paragraph for the report's end.

    Returns:
        The results dict (as in ``results.json``), with ``out_dir`` added. Each run's summary
        carries its row label as ``cell``.
    """
    seeds = [int(s) for s in seeds]
    labels = [label for label, _ in cells]
    if not cells:
        raise ConfigError("nothing to run: give at least one variant (or cell)")
    if not seeds:
        raise ConfigError("give at least one seed")
    folders = [run_name(label, 0) for label in labels]
    if len(set(seeds)) != len(seeds) or len(set(folders)) != len(folders):
        raise ConfigError("variants (cells) and seeds must not repeat")
    out_dir = Path(cfg.out_dir) / name
    runs: list[dict[str, Any]] = []
    total, trained = len(seeds) * len(cells), []
    start = time.perf_counter()
    for seed in seeds:
        for label, overrides in cells:
            folder = run_name(label, seed)
            run_cfg = cfg.replace({**overrides, "seed": seed, "out_dir": os.fspath(out_dir),
                                   "run_name": folder})
            place = f"[{len(runs) + 1}/{total}] {label} seed {seed}"
            begun = time.perf_counter()
            summary = _one(run_cfg, out_dir / folder, place)
            runs.append({**summary, "cell": label})
            if time.perf_counter() - begun > 1.0:  # trained now, not reused: it counts for the estimate
                trained.append(time.perf_counter() - begun)
            left = total - len(runs)
            if left and trained:
                eta = left * sum(trained) / len(trained)
                log.info("%s: %s; about %.0f min left (%d runs)", place, summary.get("status"),
                         eta / 60, left)
            if on_run_done is not None:
                on_run_done(runs[-1])
    log.debug("grid %s took %.0f s", name, time.perf_counter() - start)
    meta = {
        "title": title or f"Comparison on {cfg.data.name}",
        "dataset": _dataset_line(cfg),
        "host": _host_line(cfg),
        "lm": f"{cfg.block.source}, layers {cfg.block.layers} (where: {cfg.block.where})",
        "budget": _budget_line(cfg),
        "seeds": ", ".join(map(str, seeds)),
        "variants": labels,
        "cells": [{"label": label, "overrides": overrides} for label, overrides in cells],
        "config": cfg.to_dict(),
    }
    results = write_report(out_dir, runs, labels, meta, reading)
    results["out_dir"] = str(out_dir)
    return results


def _one(cfg: RunConfig, run_dir: Path, label: str) -> dict[str, Any]:
    if run_dir.exists():
        done = read_summary(run_dir)
        # A non-finite loss repeats with the same config; a run that failed on an error (or was
        # stopped) continues from its checkpoint like a killed one.
        if done is not None and done.get("status") == "failed" and not done.get("resumable"):
            if not _config_changed(run_dir, cfg):
                log.warning("%s failed before with this config (%s); change the config (e.g. a "
                            "lower optim.lr) to train it again", run_dir, done.get("error"))
                return done
            aside = _move_aside(run_dir)
            log.warning("%s had failed (%s) with another config; kept as %s and trained again",
                        run_dir, done.get("error"), aside.name)
            return train(cfg, label=label)
        # Completed runs are returned as they are, killed ones continue; both only if the
        # folder holds this very config.
        return train(cfg, resume=run_dir, label=label, interface="compare")
    return train(cfg, label=label)


def _config_changed(run_dir: Path, cfg: RunConfig) -> bool:
    from .datamodule import prepare_config
    from .folders import CONFIG_FILE, LOCATION_KEYS

    saved = load_run_config(run_dir / CONFIG_FILE)
    keys = saved.diff(prepare_config(cfg))
    return any(k not in LOCATION_KEYS for k in keys)


def _move_aside(run_dir: Path) -> Path:
    """Rename a stale folder to the first free ``<name>.failed-N``: nothing is deleted."""
    k = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.failed-{k}")).exists():
        k += 1
    run_dir.rename(aside)
    return aside


def _dataset_line(cfg: RunConfig) -> str:
    d = cfg.data
    size = getattr(d, "image_size", None)
    sizes = f"train {d.limit_train or 'all'} / {d.val_split} {d.limit_val or 'all'} samples"
    return f"{d.name}{f' at {size} px' if size else ''}, {sizes}"


def _host_line(cfg: RunConfig) -> str:
    from ..registry import HOSTS

    describe = HOSTS.get(cfg.host.kind).get("describe")
    return describe(cfg.host) if describe is not None else cfg.host.kind


def _budget_line(cfg: RunConfig) -> str:
    t, o = cfg.trainer, cfg.optim
    steps = f", at most {t.max_steps} steps" if t.max_steps != -1 else ""
    return (f"{t.max_epochs} epochs{steps}, batch {cfg.data.batch_size}, AdamW lr {o.lr:g} "
            f"wd {o.weight_decay:g}, precision {t.precision}, {t.threads or 'all'} threads")
