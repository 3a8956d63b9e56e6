"""`lm4vis demo`: baseline vs frozen SmolLM2 layer vs parameter-matched MLP, on the CPU.

``--task`` picks the kind of data, a row of `DEMO_TASKS`: ``images`` (a small ViT on
Fashion-MNIST; the budget in ``configs/demo.yaml``, ``demo-quick.yaml`` for the smoke version),
``points`` (a small Point-BERT on the generated shapes3d), ``video`` (a small VideoMAE on the
generated motion-mnist) or ``motion`` (a small VectorNet on the sim-traffic simulator). A row
names its presets, the metrics its reading reports beside the monitor, and optionally a
reference that needs no training; a new host adds its row. The demo is an ordinary `compare`
plus a plain-language reading of what it measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..registry import resolve
from .config import ConfigError, RunConfig, load_config
from .demo_tasks import DATASETS, DEFAULT_TASK, DEMO_TASKS, VARIANTS, Control, DemoTask, demo_folder  # noqa: F401 (re-exported)
from .report import paired_difference, plateau_total, run_metric, run_metrics

log = logging.getLogger(__name__)


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


def demo_task(task: str) -> DemoTask:
    """The `DEMO_TASKS` row of ``task``; an unknown name lists the known ones."""
    if task not in DEMO_TASKS:
        raise ConfigError(f"--task {task!r} is unknown; choose one of {', '.join(DEMO_TASKS)}")
    return DEMO_TASKS[task]


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
        task: a key of `DEMO_TASKS` (``images``, ``points``, ``video``, ``motion``); ignored with
            ``preset``.
    """
    extra = [f"out_dir={out}", *([f"trainer.threads={threads}"] if threads is not None else [])]
    if preset is not None:
        return load_config(preset, [*(overrides or []), *extra], plugins=plugins or ())
    demo = demo_task(task)
    if dataset is not None and dataset not in demo.datasets:
        choices = ", ".join(demo.datasets) or f"none: it runs on {demo.preset}'s own data"
        raise ConfigError(f"--dataset {dataset} is not an embedded dataset of --task {task} ({choices})")
    data = [f"data.name={dataset or pick_dataset(demo.datasets)}"] if demo.datasets else []
    return load_config(demo.quick_preset if quick else demo.preset, [*data, *(overrides or []), *extra],
                       plugins=plugins or ())


def run_demo(
    seeds: list[int], quick: bool = False, out: str = "runs", dataset: str | None = None,
    on_run_done: Callable[[dict[str, Any]], None] | None = None, threads: int | None = None,
    preset: str | None = None, overrides: list[str] | None = None, plugins: list[str] | None = None,
    task: str = DEFAULT_TASK, controls: bool = True,
) -> dict[str, Any]:
    """Train the three variants (and the task's controls) with every seed and write the report
    with its reading.

    Args:
        seeds: run seeds.
        quick: the smoke budget.
        out: parent folder; runs go to ``out/demo[-quick]-<dataset>/<variant>-s<seed>``.
        dataset: force a dataset.
        on_run_done: progress callback, called with each run's summary.
        threads: torch threads (see `demo_config`).
        preset, overrides, plugins: run the three variants on another preset (see `demo_config`).
        task: the kind of data (a key of `DEMO_TASKS`).
        controls: also train the task's `Control` rows (an input taken away).

    Returns:
        The results dict of `compare`, with ``reading``, ``wall_time_s`` and, where the task
        has one, ``reference`` added.
    """
    from .compare import run_grid

    cfg = demo_config(quick, out, dataset, threads, preset, overrides, plugins, task)
    row = demo_task(task) if preset is None else DemoTask(preset, preset, preset)
    extra = row.controls if controls else ()
    cells = [(v, {"block.variant": v}) for v in VARIANTS] + [c.cell() for c in extra]
    name = demo_folder(cfg.data.name, quick)
    start = time.perf_counter()
    ref = resolve(row.reference)(cfg) if row.reference else None
    results = run_grid(cfg, cells, seeds, name, title=f"lm4vis demo on {cfg.data.name}",
                       on_run_done=on_run_done,
                       reading=lambda runs, summary: reading(runs, summary, cfg, quick, row.metrics, ref,
                                                             extra))
    results["wall_time_s"] = time.perf_counter() - start
    if ref is not None:
        results["reference"] = ref
        _add_to_results_file(Path(results["out_dir"]) / "results.json", "reference", ref)
    return results


def _add_to_results_file(path: Path, key: str, value: Any) -> None:
    """Store one more entry in a written ``results.json`` (atomically, as it was written)."""
    import json

    from .files import atomic_write

    data = json.loads(path.read_text())
    data[key] = value
    atomic_write(path, lambda f: json.dump(data, f, indent=2, default=str), mode="w")


def _verdict(runs: list[dict[str, Any]], a: str, b: str, metric: dict[str, Any] | None = None) -> str:
    """One sentence on (a - b), paired by seed, in the direction of the metric (the runs'
    monitor metric when None)."""
    metric = metric or run_metric(runs)
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


def reading(runs: list[dict[str, Any]], summary: dict[str, Any], cfg: RunConfig, quick: bool,
            metrics: tuple[str, ...] = (), reference: dict[str, Any] | None = None,
            controls: tuple[Control, ...] = ()) -> str:
    """One paragraph saying what the demo measured, whichever way it came out.

    Args:
        runs: every run's summary.
        summary: `lm4vis.train.report.summarize` of them.
        cfg: the demo's config (for the budget).
        quick: the smoke budget (its numbers mean nothing).
        metrics: further declared metrics to give the frozen layer's verdicts on.
        reference: a no-learning reference on the same validation split (`DemoTask.reference`).
        controls: the task's `Control` rows that were trained.
    """
    rows = {r["variant"]: r for r in summary["rows"]}
    metric = summary["metric"]
    parts = []
    if quick:
        parts.append("This was the --quick smoke budget: it checks that everything runs, and its "
                     "numbers say nothing about the method.")

    def acc(v: str) -> str:
        m = rows.get(v, {}).get("metric", {}).get("mean")
        return "n/a" if m is None else f"{metric['scale'] * m:.1f}{metric['unit']}"

    n_seeds = max((len(r["seeds"]) for r in rows.values()), default=0)
    epochs = f"{cfg.trainer.max_epochs} epoch(s)"
    if cfg.trainer.stop_at_plateau:
        epochs = f"up to {cfg.trainer.max_epochs} epochs (stopping at the plateau rule)"
    parts.append(
        f"With {cfg.data.limit_train or 'all'} training samples of {cfg.data.name}, "
        f"{epochs} and {n_seeds} seed(s), the final validation {metric['label']} was "
        f"{acc('frozen-lm')} with the frozen layer of {cfg.block.source}, {acc('baseline')} for the "
        f"plain host and {acc('mlp')} for the trainable MLP of the same parameter count"
        + _chance(cfg, metric) + "."
    )
    if (rule := plateau_total(summary["rows"])) is not None:
        parts.append(f"{rule['reached']} of {rule['runs']} runs reached the plateau ({metric['label']} moving "
                     f"less than {metric['scale'] * rule['tolerance']:g}{metric['unit']} over {rule['window']} epochs"
                     + (f", judged from epoch {rule['min_epochs']}" if rule["min_epochs"] else "")
                     + ("); the others are still moving when their budget ends, so their numbers are not "
                        "final." if rule["reached"] < rule["runs"] else ")."))
    first = _verdict(runs, "frozen-lm", "baseline")
    parts.append(first[0].upper() + first[1:] + ";")
    parts[-1] += " " + _verdict(runs, "frozen-lm", "mlp") + "."
    declared = {m["name"]: m for m in run_metrics(runs)}
    for name in metrics:
        if name in declared:
            m = declared[name]
            v = _verdict(runs, "frozen-lm", "baseline", m)
            parts.append(f"On {m['label']} ({'higher' if m['higher_is_better'] else 'lower'} is better), {v}.")
    if reference is not None:
        parts.append(_reference_sentence(rows, declared, reference, metric))
    for control in controls:
        if control.label in rows:
            said = _verdict(runs, control.label, "baseline")
            parts.append(f"The {control.label} control ({control.summary}) reached {acc(control.label)}: "
                         f"{said}.")
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


def _reference_sentence(rows: dict[str, Any], declared: dict[str, Any], reference: dict[str, Any],
                        monitor: dict[str, Any]) -> str:
    """What a no-learning reference scored, next to the baseline's mean of the same metrics."""
    def show(m: dict[str, Any], x: float) -> str:
        return f"{m['scale'] * x:.{m['digits']}f}{' ' if m['unit'] != '%' else ''}{m['unit']}"

    said = []
    for key, value in reference["metrics"].items():
        m = next((d for d in declared.values() if d["key"] == key), None)
        if m is None:
            continue
        said.append(f"{m['label']} {show(m, value)}")
    base = rows.get("baseline", {}).get("metric", {}).get("mean")
    versus = "" if base is None else (f"; the trained baseline's {monitor['label']} is "
                                      f"{show(monitor, base)}")
    note = f" ({reference['note']})" if reference.get("note") else ""
    return (f"For scale, {reference['label']} scores {', '.join(said)} on the same "
            f"{reference.get('scenes', '?')} validation scenes{note}{versus}.")
