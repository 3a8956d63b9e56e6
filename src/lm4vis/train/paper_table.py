"""`lm4vis demo --task all`: every task's demo, then one table in the shape of the paper's.

Each task of `DEMO_TASKS` trains baseline, frozen-lm and mlp with every seed (its own demo,
without its controls) into its usual folder under ``out``. A task whose ``results.json`` already
holds every run, completed, with the config asked for now is read back and never retrained;
an interrupted task resumes (its finished runs are kept, its killed run continues).

The table has a row per task with its metric and direction, the three variants' means with
their 95% CIs, and the paired frozen-lm - baseline difference with its verdict; the figure has
one panel per task. Both are written with ``results.json`` to ``out/paper-table/``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .demo_tasks import DEMO_TASKS, VARIANTS, demo_folder

log = logging.getLogger(__name__)

TABLE_DIR = "paper-table"


def task_results(out: Path, task: str, quick: bool, cfg: Any) -> dict[str, Any] | None:
    """A finished task's ``results.json``, when every run completed with this very config."""
    path = out / demo_folder(cfg.data.name, quick) / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    runs = results.get("runs") or []
    if results.get("config") != cfg.to_dict() or not runs or any(r.get("status") != "completed" for r in runs):
        return None
    results["out_dir"] = str(path.parent)
    return results


def run_all(
    seeds: Sequence[int], out: str = "runs", quick: bool = False, tasks: Sequence[str] | None = None,
    threads: int | None = None, overrides: Sequence[str] = (),
    on_task_done: Callable[[str, dict[str, Any], bool], None] | None = None,
    on_run_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every task's demo (or read it back) and write the all-tasks table.

    Args:
        seeds: run seeds, the same for every task.
        out: parent folder: each task's demo folder and ``paper-table/`` go under it.
        quick: every task's smoke budget.
        tasks: keys of `DEMO_TASKS` (default: all, in table order).
        threads: torch threads of every run.
        overrides: ``key=value`` overrides applied to every task (``block.source=gemma3-270m``).
        on_task_done: ``(task, results, reused)`` after each task.
        on_run_done: each run's summary as it finishes.

    Returns:
        ``{"rows", "tasks", "reading", "out_dir", "wall_time_s", ...}`` as in ``results.json``.
    """
    from .demo import demo_config, run_demo

    names = list(tasks or DEMO_TASKS)
    unknown = [t for t in names if t not in DEMO_TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(DEMO_TASKS)}")
    start = time.perf_counter()
    per_task: dict[str, dict[str, Any]] = {}
    lm = None
    for task in names:
        cfg = demo_config(quick, out, None, threads, None, list(overrides), None, task)
        lm = lm or cfg.block.source
        done = task_results(Path(out), task, quick, cfg)
        reused = done is not None
        if done is None:
            done = run_demo(list(seeds), quick=quick, out=out, on_run_done=on_run_done, threads=threads,
                            overrides=list(overrides), task=task, controls=False)
        else:
            log.info("%s: every run of %s is complete; read back, not retrained", task, done["out_dir"])
        per_task[task] = done
        if on_task_done is not None:
            on_task_done(task, done, reused)
    rows = [table_row(task, results) for task, results in per_task.items()]
    add_bonferroni(rows)
    table = {
        "title": "The frozen LM layer on every task of lm4vis, on embedded data",
        "lm": lm,
        "seeds": list(seeds),
        "quick": quick,
        "rows": rows,
        "tasks": {t: {"out_dir": r["out_dir"], "wall_time_s": r.get("wall_time_s")} for t, r in per_task.items()},
        "wall_time_s": time.perf_counter() - start,
    }
    table["reading"] = reading(rows, lm, quick)
    folder = Path(out) / TABLE_DIR
    write_table(folder, table)
    table["out_dir"] = str(folder)
    return table


def table_row(task: str, results: dict[str, Any]) -> dict[str, Any]:
    """One task's line: its monitor metric, each variant's mean and CI, frozen-lm - baseline."""
    summary = results["summary"]
    metric = summary["metric"]
    from .report import plateau_total

    rows = {r["variant"]: r["metric"] for r in summary["rows"]}
    plateau = plateau_total([r for r in summary["rows"] if r["variant"] in VARIANTS])
    diff = next((d for d in summary["paired_differences"]
                 if d["variant"] == "frozen-lm" and d["reference"] == "baseline"), None)
    return {
        "task": task,
        "dataset": results.get("dataset") or "",
        "metric": metric,
        "variants": {v: rows.get(v) for v in VARIANTS},
        "diff": None if diff is None else diff["diff"],
        "verdict": "n/a" if diff is None else diff["verdict"],
        # the three variants' runs on their plateau (`lm4vis.train.plateau`), or None for runs
        # from before the rule was recorded
        "plateau": None if plateau is None else {k: plateau[k] for k in ("reached", "runs")},
    }


def add_bonferroni(rows: list[dict[str, Any]], level: float = 0.95) -> None:
    """Each row's verdict again with its interval widened for the number of tasks (Bonferroni:
    every interval at ``1 - (1 - level) / tasks``), as ``verdict_bonferroni``."""
    import math

    from .report import t_quantile, verdict

    k = max(1, len(rows))
    for r in rows:
        d = r["diff"]
        if not d or d.get("std") is None or d.get("n", 0) < 2:
            r["verdict_bonferroni"] = "n/a"
            continue
        half = t_quantile(1 - (1 - level) / (2 * k), d["n"] - 1) * d["std"] / math.sqrt(d["n"])
        wide = {"ci_low": d["mean"] - half, "ci_high": d["mean"] + half}
        r["verdict_bonferroni"] = verdict(wide, r["metric"]["higher_is_better"])


def _show(x: float | None, m: dict[str, Any], signed: bool = False) -> str:
    return "–" if x is None else f"{m['scale'] * x:{'+' if signed else ''}.{m['digits']}f}"


def _cell(stats: dict[str, Any] | None, m: dict[str, Any], signed: bool = False) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    if stats.get("half_width") is None:
        return _show(stats["mean"], m, signed)
    return f"{_show(stats['mean'], m, signed)} ± {m['scale'] * stats['half_width']:.{m['digits']}f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table: mean ± 95% CI half-width of each variant, and the paired difference."""
    lines = ["| task | metric | baseline | frozen-lm | mlp | frozen-lm − baseline | verdict | Bonferroni | plateau |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        m = r["metric"]
        unit = f" ({m['unit']})" if m["unit"] else ""
        arrow = "↑" if m["higher_is_better"] else "↓"
        cells = [_cell(r["variants"].get(v), m) for v in VARIANTS]
        lines.append(f"| {r['task']} | {m['label']}{unit} {arrow} | {' | '.join(cells)} | "
                     f"{_cell(r['diff'], m, signed=True)} | {r['verdict']} | {r.get('verdict_bonferroni', 'n/a')} | "
                     f"{_plateau_cell(r.get('plateau'))} |")
    return "\n".join(lines) + ("\n\nmean ± half-width of the 95% t interval over seeds; the difference is "
                               "paired by seed; ↑ higher is better, ↓ lower is better; Bonferroni: the verdict "
                               "with each interval widened for the number of tasks; plateau: the three "
                               "variants' runs whose metric ended on its plateau (each task's report gives "
                               "the rule and the epochs).")


def _plateau_cell(p: dict[str, Any] | None) -> str:
    return "–" if p is None else f"{p['reached']}/{p['runs']}"


def reading(rows: list[dict[str, Any]], lm: str | None, quick: bool) -> str:
    """How many tasks the frozen layer helped, hurt or left unchanged, and what that means."""
    verdicts = [r["verdict"] for r in rows]
    helped, hurt = verdicts.count("better"), verdicts.count("worse")
    same = verdicts.count("no significant difference")
    unjudged = len(rows) - helped - hurt - same
    parts = []
    if quick:
        parts.append("This was the --quick smoke budget: its numbers say nothing about the method.")
    parts.append(
        f"Across {len(rows)} task(s), the frozen layer of {lm} helped in {helped}, hurt in {hurt} and made "
        f"no significant difference in {same}" + (f" ({unjudged} could not be judged: fewer than two "
                                                 "seeds or failed runs)" if unjudged else "") + ".")
    judged = [r for r in rows if r.get("plateau")]
    if judged:
        reached, runs = sum(r["plateau"]["reached"] for r in judged), sum(r["plateau"]["runs"] for r in judged)
        short = [r["task"] for r in judged if r["plateau"]["reached"] < r["plateau"]["runs"]]
        parts.append(f"{reached} of {runs} variant runs ended on their plateau"
                     + (f"; in {', '.join(short)} some did not, and those rows compare models that were "
                        "still learning." if short else ", so every row compares trained models."))
    scale = " (SmolLM2-135M by a factor of ten)" if lm == "smollm2-135m" else ""
    parts.append(
        f"Pang et al. saw no gain from OPT layers below about 1.3B parameters; {lm} is smaller than that"
        f"{scale}, so the paper's own scale finding predicts no gain here, and a "
        "null row is the expected outcome, not a failure of the code.")
    if len(rows) > 1:
        fwer = 1 - 0.95 ** len(rows)
        parts.append(
            f"Each verdict is a 95% interval on its own: over {len(rows)} tasks, the chance that at least one "
            f"shows a 'significant' difference by luck alone is about {100 * fwer:.0f}% (if the tasks were "
            f"independent), so read a single better or worse row with caution; a Bonferroni reading asks "
            f"each task's interval to hold at the {100 - 5 / len(rows):.1f}% level instead.")
    return " ".join(parts)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per task: each variant's mean with its 95% CI, in the metric's direction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(rows))
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.0), squeeze=False)
    colours = {"baseline": "#777777", "frozen-lm": "#d62728", "mlp": "#1f77b4"}
    for ax, r in zip(axes[0], rows):
        m = r["metric"]
        for i, v in enumerate(VARIANTS):
            s = r["variants"].get(v) or {}
            if s.get("mean") is None:
                continue
            err = 0.0 if s.get("half_width") is None else m["scale"] * s["half_width"]
            ax.errorbar([i], [m["scale"] * s["mean"]], yerr=[err], fmt="o", color=colours[v], capsize=4)
        ax.set_xticks(range(len(VARIANTS)), VARIANTS, rotation=30, fontsize=8)
        ax.set_xlim(-0.5, len(VARIANTS) - 0.5)
        unit = f" ({m['unit']})" if m["unit"] else ""
        ax.set_title(f"{r['task']}: {r['verdict']}", fontsize=9)
        ax.set_ylabel(f"{m['label']}{unit} {'↑' if m['higher_is_better'] else '↓'}", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_table(folder: Path, table: dict[str, Any]) -> None:
    """``table.md``, ``table.png`` and ``results.json`` of the all-tasks table."""
    from .files import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    plot(table["rows"], folder / "table.png")
    text = (f"# {table['title']}\n\nLM layer: {table['lm']}; seeds {', '.join(map(str, table['seeds']))}"
            f"{' (--quick)' if table['quick'] else ''}.\n\n{markdown(table['rows'])}\n\n![the table](table.png)\n\n"
            f"{table['reading']}\n")
    atomic_write(folder / "table.md", lambda f: f.write(text), mode="w")
    atomic_write(folder / "results.json", lambda f: json.dump(table, f, indent=2, default=str), mode="w")


__all__ = ["run_all", "table_row", "markdown", "reading", "plot", "write_table", "task_results", "TABLE_DIR"]
