"""`lm4vis demo`: baseline vs frozen SmolLM2 layer vs parameter-matched MLP, on the CPU.

The budget lives in ``configs/demo.yaml`` (and ``demo-quick.yaml`` for the smoke version).
The demo is an ordinary `compare` plus a plain-language reading of what it measured.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from .config import RunConfig, load_config
from .report import mean_ci, row_label

log = logging.getLogger(__name__)

VARIANTS = ("baseline", "frozen-lm", "mlp")
DATASETS = ("fashion-mnist", "animal-mnist")


def pick_threads() -> int:
    """Torch threads for the cores no other process is using (at least one).

    Two OpenMP threads on two cores, one of which another process keeps busy, wait on each
    other at every parallel region: on the development machine that made a training step
    ~15x slower than one thread alone.
    """
    import torch

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return torch.get_num_threads()
    return max(1, min(torch.get_num_threads(), cores - int(load + 0.5)))


def pick_dataset(candidates: tuple[str, ...] = DATASETS) -> str:
    """The first embedded dataset that is installed on this machine.

    Args:
        candidates: dataset names in order of preference.
    """
    from ..data import DatasetNotFoundError, build_dataset

    reasons = []
    for name in candidates:
        try:
            build_dataset(name, split="train", limit=1)
            return name
        except DatasetNotFoundError as e:
            reasons.append(str(e))
    raise FileNotFoundError("no demo dataset is installed: " + " | ".join(reasons))


def demo_config(quick: bool = False, out: str = "runs", dataset: str | None = None) -> RunConfig:
    """The demo's config: the ``demo`` (or ``demo-quick``) preset on an installed dataset.

    Args:
        quick: the one-minute smoke budget.
        out: parent folder of the demo's runs.
        dataset: force a dataset; None takes Fashion-MNIST, else Animal-MNIST.
    """
    name = dataset or pick_dataset()
    return load_config("demo-quick" if quick else "demo", {"data.name": name, "out_dir": out})


def run_demo(
    seeds: list[int], quick: bool = False, out: str = "runs", dataset: str | None = None,
    on_run_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train the three variants with every seed and write the report with its reading.

    Args:
        seeds: run seeds.
        quick: the smoke budget.
        out: parent folder; runs go to ``out/demo[-quick]-<dataset>/<variant>-s<seed>``.
        dataset: force a dataset.
        on_run_done: progress callback, called with each run's summary.

    Returns:
        The results dict of `compare`, with ``reading`` and ``wall_time_s`` added.
    """
    from .compare import compare

    cfg = demo_config(quick, out, dataset)
    name = f"demo{'-quick' if quick else ''}-{cfg.data.name}"
    start = time.perf_counter()
    results = compare(cfg, VARIANTS, seeds, name=name, title=f"lm4vis demo on {cfg.data.name}",
                      on_run_done=on_run_done, reading=lambda runs, summary: reading(runs, summary, cfg, quick))
    results["wall_time_s"] = time.perf_counter() - start
    return results


def _paired(runs: list[dict[str, Any]], a: str, b: str) -> dict[str, Any]:
    def accs(v: str) -> dict[int, float]:
        return {int(r["seed"]): float(r["final"]["val/acc"]) for r in runs
                if row_label(r) == v and r.get("status") == "completed" and "val/acc" in (r.get("final") or {})}

    x, y = accs(a), accs(b)
    common = sorted(set(x) & set(y))
    return mean_ci([x[s] - y[s] for s in common])


def _verdict(stats: dict[str, Any], a: str, b: str) -> str:
    if stats["mean"] is None:
        return f"{a} and {b} cannot be compared (no completed pair of runs)"
    pts = 100 * stats["mean"]
    if stats["ci_low"] is None:
        return (f"{a} is {pts:+.2f} points from {b} on a single seed, which gives no interval: "
                "run more seeds before reading anything into it")
    ci = f"95% CI [{100 * stats['ci_low']:+.2f}, {100 * stats['ci_high']:+.2f}]"
    if stats["ci_low"] > 0:
        return f"{a} beats {b} by {pts:+.2f} points ({ci}, paired by seed), beyond the interval"
    if stats["ci_high"] < 0:
        return f"{a} trails {b} by {pts:+.2f} points ({ci}, paired by seed), beyond the interval"
    return f"{a} differs from {b} by {pts:+.2f} points ({ci}, paired by seed), within the noise"


def reading(runs: list[dict[str, Any]], summary: dict[str, Any], cfg: RunConfig, quick: bool) -> str:
    """One paragraph saying what the demo measured, whichever way it came out.

    Args:
        runs: every run's summary.
        summary: `lm4vis.train.report.summarize` of them.
        cfg: the demo's config (for the budget).
        quick: the smoke budget (its numbers mean nothing).
    """
    rows = {r["variant"]: r for r in summary["rows"]}
    parts = []
    if quick:
        parts.append("This was the --quick smoke budget: it checks that everything runs, and its "
                     "accuracies say nothing about the method.")

    def acc(v: str) -> str:
        m = rows.get(v, {}).get("top1", {}).get("mean")
        return "n/a" if m is None else f"{100 * m:.1f}%"

    n_seeds = max((len(r["seeds"]) for r in rows.values()), default=0)
    parts.append(
        f"With {cfg.data.limit_train or 'all'} training images of {cfg.data.name}, "
        f"{cfg.trainer.max_epochs} epoch(s) and {n_seeds} seed(s), the final validation top-1 was "
        f"{acc('frozen-lm')} with the frozen SmolLM2-135M layer, {acc('baseline')} for the plain "
        f"ViT and {acc('mlp')} for the trainable MLP of the same parameter count."
    )
    first = _verdict(_paired(runs, "frozen-lm", "baseline"), "frozen-lm", "baseline")
    parts.append(first[0].upper() + first[1:] + ";")
    parts[-1] += " " + _verdict(_paired(runs, "frozen-lm", "mlp"), "frozen-lm", "mlp") + "."
    fl, base = rows.get("frozen-lm", {}), rows.get("baseline", {})
    if fl.get("time_per_step_s") and base.get("time_per_step_s"):
        parts.append(
            f"The frozen layer adds {fl.get('frozen_params') or 0:,} frozen parameters and makes a "
            f"training step {fl['time_per_step_s'] / base['time_per_step_s']:.1f}x as long as the baseline's."
        )
    parts.append(
        "Pang et al. report gains with LLaMA-7B's layer and saw none from OPT models below about "
        "1.3B parameters; SmolLM2-135M is far below that scale and this budget is tiny, so the "
        "absence of a gain here would be the expected outcome, and a gain would need more seeds "
        "and a longer schedule before it is trusted."
    )
    return " ".join(parts)
