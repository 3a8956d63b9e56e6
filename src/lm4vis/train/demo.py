"""`lm4vis demo`: baseline vs frozen SmolLM2 layer vs parameter-matched MLP, on the CPU.

``--task`` picks the kind of data (`DEMO_TASKS`): ``images`` (a small ViT on Fashion-MNIST; the
budget in ``configs/demo.yaml``, ``demo-quick.yaml`` for the smoke version) or ``video`` (a
small VideoMAE on the generated motion-mnist; ``configs/video-demo.yaml`` and
``video-demo-quick.yaml``). A new host adds its line to the table. The demo is an ordinary
`compare` plus a plain-language reading of what it measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import RunConfig, load_config
from .report import paired_difference, run_metric

log = logging.getLogger(__name__)

VARIANTS = ("baseline", "frozen-lm", "mlp")
DATASETS = ("fashion-mnist", "animal-mnist")


@dataclass(frozen=True)
class DemoTask:
    """One kind of data `lm4vis demo --task` runs the three variants on.

    Args:
        preset: the demo's budget (a preset under ``configs/``).
        quick_preset: the smoke budget of ``--quick``.
        summary: what it trains, for ``--help``.
        datasets: embedded datasets ``--dataset`` may choose, in order of preference; the
            first one installed is taken. Empty: the preset's own dataset, which needs no files.
    """

    preset: str
    quick_preset: str
    summary: str
    datasets: tuple[str, ...] = ()


#: ``--task`` -> what the demo trains. The default is the first.
DEMO_TASKS: dict[str, DemoTask] = {
    "images": DemoTask("demo", "demo-quick", "a small ViT on Fashion-MNIST (else Animal-MNIST)", DATASETS),
    "video": DemoTask("video-demo", "video-demo-quick", "a small VideoMAE on the generated motion-mnist"),
}
DEFAULT_TASK = next(iter(DEMO_TASKS))


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


def demo_config(quick: bool = False, out: str = "runs", dataset: str | None = None,
                threads: int | None = None, preset: str | None = None,
                overrides: list[str] | None = None, plugins: list[str] | None = None,
                task: str = DEFAULT_TASK) -> RunConfig:
    """The demo's config: the task's demo preset (its quick one with ``quick``) on an installed
    dataset, or any other preset (a user's own parts included) with overrides.

    Args:
        quick: the smoke budget (the task's ``quick_preset``).
        out: parent folder of the demo's runs.
        dataset: force one of the task's embedded datasets; None takes the first installed.
        threads: torch threads (``trainer.threads``); None keeps the preset's, which is the
            machine's cores unless the preset says otherwise.
        preset: another preset to run the demo's three variants on (``--config``).
        overrides: ``key=value`` overrides of that preset.
        plugins: modules registering a user's parts (``--plugin``).
        task: a key of `DEMO_TASKS` (``images``, ``video``); ignored with ``preset``.
    """
    extra = [f"out_dir={out}", *([f"trainer.threads={threads}"] if threads is not None else [])]
    if preset is not None:
        return load_config(preset, [*(overrides or []), *extra], plugins=plugins or ())
    if task not in DEMO_TASKS:
        raise ValueError(f"--task {task!r} is unknown; choose one of {', '.join(DEMO_TASKS)}")
    demo = DEMO_TASKS[task]
    if dataset is not None and dataset not in demo.datasets:
        choices = ", ".join(demo.datasets) or f"none: it runs on {demo.preset}'s own data"
        raise ValueError(f"--dataset {dataset} is not an embedded dataset of --task {task} ({choices})")
    data = [f"data.name={dataset or pick_dataset(demo.datasets)}"] if demo.datasets else []
    return load_config(demo.quick_preset if quick else demo.preset, [*data, *(overrides or []), *extra],
                       plugins=plugins or ())


def run_demo(
    seeds: list[int], quick: bool = False, out: str = "runs", dataset: str | None = None,
    on_run_done: Callable[[dict[str, Any]], None] | None = None, threads: int | None = None,
    preset: str | None = None, overrides: list[str] | None = None, plugins: list[str] | None = None,
    task: str = DEFAULT_TASK,
) -> dict[str, Any]:
    """Train the three variants with every seed and write the report with its reading.

    Args:
        seeds: run seeds.
        quick: the smoke budget.
        out: parent folder; runs go to ``out/demo[-quick]-<dataset>/<variant>-s<seed>``.
        dataset: force a dataset.
        on_run_done: progress callback, called with each run's summary.
        threads: torch threads (see `demo_config`).
        preset, overrides, plugins: run the three variants on another preset (see `demo_config`).
        task: the kind of data (a key of `DEMO_TASKS`).

    Returns:
        The results dict of `compare`, with ``reading`` and ``wall_time_s`` added.
    """
    from .compare import compare

    cfg = demo_config(quick, out, dataset, threads, preset, overrides, plugins, task)
    name = f"demo{'-quick' if quick else ''}-{cfg.data.name}"
    start = time.perf_counter()
    results = compare(cfg, VARIANTS, seeds, name=name, title=f"lm4vis demo on {cfg.data.name}",
                      on_run_done=on_run_done, reading=lambda runs, summary: reading(runs, summary, cfg, quick))
    results["wall_time_s"] = time.perf_counter() - start
    return results


def _verdict(runs: list[dict[str, Any]], a: str, b: str) -> str:
    """One sentence on (a - b), paired by seed, in the direction of the runs' metric."""
    metric = run_metric(runs)
    stats = paired_difference(runs, a, b, metric["key"])["diff"]
    unit = "points" if metric["unit"] == "%" else metric["unit"] or "units"
    if stats["mean"] is None:
        return f"{a} and {b} cannot be compared (no completed pair of runs)"
    k, d = metric["scale"], metric["digits"]
    diff = f"{k * stats['mean']:+.{d}f} {unit}"
    if stats["ci_low"] is None:
        return (f"{a} is {diff} from {b} on a single seed, which gives no interval: "
                "run more seeds before reading anything into it")
    ci = f"95% CI [{k * stats['ci_low']:+.{d}f}, {k * stats['ci_high']:+.{d}f}]"
    up = metric["higher_is_better"]
    if stats["ci_low"] > 0 or stats["ci_high"] < 0:
        better = (stats["ci_low"] > 0) == up
        return (f"{a} {'beats' if better else 'trails'} {b} by {diff} on {metric['label']} ({ci}, "
                "paired by seed), beyond the interval")
    return f"{a} differs from {b} by {diff} on {metric['label']} ({ci}, paired by seed), within the noise"


def _chance(cfg: RunConfig, metric: dict[str, Any]) -> str:
    """`` (chance: 7.1%)`` for a top-1 accuracy over a host's classes; empty otherwise."""
    classes = getattr(cfg.host, "num_classes", None)
    if metric.get("name") != "acc" or not classes:
        return ""
    return f" (chance: {metric['scale'] / classes:.1f}{metric['unit']} for {classes} balanced classes)"


def reading(runs: list[dict[str, Any]], summary: dict[str, Any], cfg: RunConfig, quick: bool) -> str:
    """One paragraph saying what the demo measured, whichever way it came out.

    Args:
        runs: every run's summary.
        summary: `lm4vis.train.report.summarize` of them.
        cfg: the demo's config (for the budget).
        quick: the smoke budget (its numbers mean nothing).
    """
    rows = {r["variant"]: r for r in summary["rows"]}
    metric = summary["metric"]
    parts = []
    if quick:
        parts.append("This was the --quick smoke budget: it checks that everything runs, and its "
                     "accuracies say nothing about the method.")

    def acc(v: str) -> str:
        m = rows.get(v, {}).get("metric", {}).get("mean")
        return "n/a" if m is None else f"{metric['scale'] * m:.1f}{metric['unit']}"

    n_seeds = max((len(r["seeds"]) for r in rows.values()), default=0)
    parts.append(
        f"With {cfg.data.limit_train or 'all'} training samples of {cfg.data.name}, "
        f"{cfg.trainer.max_epochs} epoch(s) and {n_seeds} seed(s), the final validation {metric['label']} was "
        f"{acc('frozen-lm')} with the frozen layer of {cfg.block.source}, {acc('baseline')} for the "
        f"plain host and {acc('mlp')} for the trainable MLP of the same parameter count"
        + _chance(cfg, metric) + "."
    )
    first = _verdict(runs, "frozen-lm", "baseline")
    parts.append(first[0].upper() + first[1:] + ";")
    parts[-1] += " " + _verdict(runs, "frozen-lm", "mlp") + "."
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
