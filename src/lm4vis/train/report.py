"""The comparison report: statistics over seeds, ``report.md``, ``curves.png``, ``results.json``.

Intervals are Student's t intervals over seeds. The t quantile is computed here (regularised
incomplete beta by its continued fraction, inverted by bisection) so that scipy is not needed.
Differences between variants are paired by seed: the same seed gives the same host
initialisation and the same batches to every variant, so the paired difference removes most
of the seed-to-seed spread.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from .files import atomic_write


# -- Student's t ---------------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (e.g. ``t_quantile(0.975, 4) = 2.776``).

    Args:
        p: probability in (0, 1).
        df: degrees of freedom (> 0).
    """
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def mean_ci(values: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean, sample std and the Student's t interval of the mean.

    Args:
        values: one number per seed.
        level: confidence level.

    Returns:
        ``{"n", "mean", "std", "ci_low", "ci_high", "half_width"}``; the interval is None
        with fewer than two values (no spread to measure).
    """
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None, "half_width": None}
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None, "half_width": None}
    std = statistics.stdev(values)
    half = t_quantile(0.5 + level / 2.0, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half,
            "half_width": half}


# -- tables ----------------------------------------------------------------------------------------
#: The metric of run summaries written before tasks declared theirs (image classification).
_LEGACY_METRIC = {"name": "acc", "label": "top-1", "higher_is_better": True, "unit": "%", "scale": 100.0,
                  "digits": 2, "key": "val/acc", "mode": "max"}


def run_metric(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The monitor metric the runs' task declared (name, key, direction, unit, scale)."""
    for r in runs:
        monitor = (r.get("task") or {}).get("monitor")
        if monitor:
            return monitor
    return _LEGACY_METRIC


def run_metrics(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every metric the runs' task declared, monitor first (older summaries: the monitor only)."""
    monitor = run_metric(runs)
    for r in runs:
        declared = (r.get("task") or {}).get("metrics")
        if declared:
            return [monitor, *(m for m in declared if m["key"] != monitor["key"])]
    return [monitor]


def verdict(stats: dict[str, Any], higher_is_better: bool) -> str:
    """better / worse / no significant difference, from the CI of (variant - reference)."""
    if stats["ci_low"] is None:
        return "n/a"
    if stats["ci_low"] > 0:
        return "better" if higher_is_better else "worse"
    if stats["ci_high"] < 0:
        return "worse" if higher_is_better else "better"
    return "no significant difference"


def paired_difference(runs: list[dict[str, Any]], variant: str, reference: str,
                      key: str) -> dict[str, Any]:
    """(variant - reference) of metric ``key`` paired by seed, with its interval.

    Args:
        runs: run summaries of both rows.
        variant, reference: row labels.
        key: the metric's key in ``final`` (``val/acc``).
    """
    def values(label: str) -> dict[int, float]:
        return {int(r["seed"]): float(r["final"][key]) for r in runs
                if row_label(r) == label and r.get("status") == "completed" and key in (r.get("final") or {})}

    x, y = values(variant), values(reference)
    common = sorted(set(x) & set(y))
    return {"seeds": common, "diff": mean_ci([x[s] - y[s] for s in common])}


def row_label(run: dict[str, Any]) -> str:
    """The report row a run belongs to: its grid cell, else its block variant."""
    return run.get("cell") or run.get("variant")


def summarize(runs: list[dict[str, Any]], variants: list[str], reference: str | None = "baseline") -> dict[str, Any]:
    """Per-row statistics over seeds and paired differences to ``reference``, in the
    direction of the metric the runs' task declared.

    Args:
        runs: run summaries (``summary.json`` contents) of every row and seed.
        variants: the row labels (block variants, or grid cells), in table order.
        reference: the row the others are compared with (paired by seed), if present.
    """
    metric = run_metric(runs)
    key = metric["key"]
    rows = []
    for v in variants:
        mine = [r for r in runs if row_label(r) == v]
        done = [r for r in mine if r.get("status") == "completed" and key in (r.get("final") or {})]
        values = {int(r["seed"]): float(r["final"][key]) for r in done}
        params = (done or mine or [{}])[0].get("params") or {}
        steps = [r["time_per_step_s"] for r in done if r.get("time_per_step_s")]
        cpu = [r["cpu_time_per_step_s"] for r in done if r.get("cpu_time_per_step_s")]
        sps = [r.get("samples_per_s") or r.get("images_per_s") for r in done]
        sps = [x for x in sps if x]
        rows.append({
            "variant": v,
            "seeds": sorted(values),
            "failed": sorted(int(r["seed"]) for r in mine if r.get("status") == "failed"),
            "metric": mean_ci(list(values.values())),
            "trainable_params": params.get("trainable"),
            "frozen_params": params.get("frozen"),
            "time_per_step_s": statistics.fmean(steps) if steps else None,
            "cpu_time_per_step_s": statistics.fmean(cpu) if cpu else None,
            "samples_per_s": statistics.fmean(sps) if sps else None,
            "plateau": _plateau_count(done),
        })
    diffs = []
    if reference in variants:
        for v in variants:
            if v == reference:
                continue
            d = paired_difference(runs, v, reference, key)
            diffs.append({"variant": v, "reference": reference, **d,
                          "verdict": verdict(d["diff"], metric["higher_is_better"])})
    return {"metric": metric, "rows": rows, "paired_differences": diffs,
            "other_metrics": _other_metrics(runs, variants, reference)}


def _plateau_count(done: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How many of a row's completed runs reached the plateau, and at which epochs (runs
    from before the rule was recorded: None)."""
    judged = [r["plateau"] for r in done if isinstance(r.get("plateau"), dict)]
    if not judged:
        return None
    return {"reached": sum(bool(p["reached"]) for p in judged), "runs": len(judged),
            "epochs": [p["epoch"] for p in judged if p["reached"]],
            "window": judged[0]["window"], "tolerance": judged[0]["tolerance"],
            "min_epochs": judged[0].get("min_epochs", 0),
            "stop": any(p.get("stop") for p in judged)}


def plateau_total(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The plateau counts of several `summarize` rows added up (``reached``, ``runs``) with the
    first row's rule (``window``, ``tolerance``, ``min_epochs``), or None if no row was judged."""
    judged = [r["plateau"] for r in rows if r.get("plateau")]
    if not judged:
        return None
    return {"reached": sum(p["reached"] for p in judged), "runs": sum(p["runs"] for p in judged),
            "window": judged[0]["window"], "tolerance": judged[0]["tolerance"],
            "min_epochs": judged[0].get("min_epochs", 0)}


def _other_metrics(runs: list[dict[str, Any]], variants: list[str], reference: str | None) -> list[dict[str, Any]]:
    """Per-row statistics and paired differences of every declared metric besides the monitor
    (minADE and miss rate beside minFDE), each judged in its own direction."""
    out = []
    for m in run_metrics(runs)[1:]:
        key = m["key"]
        rows = []
        for v in variants:
            values = [float(r["final"][key]) for r in runs if row_label(r) == v
                      and r.get("status") == "completed" and key in (r.get("final") or {})]
            rows.append({"variant": v, "metric": mean_ci(values)})
        if not any(r["metric"]["n"] for r in rows):
            continue  # declared but never logged (e.g. a training-only metric)
        diffs = []
        if reference in variants:
            for v in variants:
                if v != reference:
                    d = paired_difference(runs, v, reference, key)
                    diffs.append({"variant": v, "reference": reference, **d,
                                  "verdict": verdict(d["diff"], m["higher_is_better"])})
        out.append({"metric": m, "rows": rows, "paired_differences": diffs})
    return out


def _fmt(x: float | None, metric: dict[str, Any], signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{metric['scale'] * x:{'+' if signed else ''}.{metric['digits']}f}"


def _count(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def _unit(metric: dict[str, Any], diff: bool = False) -> str:
    unit = "pts" if diff and metric["unit"] == "%" else metric["unit"]
    return f" ({unit})" if unit else ""


def markdown_table(summary: dict[str, Any]) -> str:
    """The main table: one row per variant."""
    m = summary["metric"]
    arrow = "higher is better" if m["higher_is_better"] else "lower is better"
    lines = [
        f"| variant | seeds | {m['label']} mean{_unit(m)} | std | 95% CI | trainable params | frozen params | "
        "ms/step | CPU ms/step | samples/s | plateau |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary["rows"]:
        s = r["metric"]
        ci = "–" if s["ci_low"] is None else f"[{_fmt(s['ci_low'], m)}, {_fmt(s['ci_high'], m)}]"
        step = "–" if r["time_per_step_s"] is None else f"{1000 * r['time_per_step_s']:.1f}"
        cpu = "–" if r.get("cpu_time_per_step_s") is None else f"{1000 * r['cpu_time_per_step_s']:.1f}"
        sps = "–" if r["samples_per_s"] is None else f"{r['samples_per_s']:.0f}"
        seeds = str(len(r["seeds"])) + (f" ({len(r['failed'])} failed)" if r["failed"] else "")
        lines.append(f"| {r['variant']} | {seeds} | {_fmt(s['mean'], m)} | {_fmt(s['std'], m)} | {ci} | "
                     f"{_count(r['trainable_params'])} | {_count(r['frozen_params'])} | {step} | {cpu} | {sps} | "
                     f"{_plateau_cell(r.get('plateau'))} |")
    rule = next((r["plateau"] for r in summary["rows"] if r.get("plateau")), None)
    note = "" if rule is None else (
        f" plateau: the row's completed runs whose {m['label']} moved less than "
        f"{_fmt(rule['tolerance'], m)}{(' ' if m['unit'] != '%' else '') + m['unit']} over their last "
        f"{rule['window']} validated epochs"
        + (f" (judged from epoch {rule['min_epochs']} on)" if rule.get("min_epochs") else "")
        + ", and the epoch each got there.")
    return "\n".join(lines) + f"\n\n{m['label']}: {arrow}.{note}"


def _plateau_cell(p: dict[str, Any] | None) -> str:
    if p is None:
        return "–"
    at = f" (epoch {', '.join(map(str, p['epochs']))})" if p["epochs"] else ""
    return f"{p['reached']}/{p['runs']}{at}"


def differences_table(summary: dict[str, Any]) -> str:
    """Paired differences to the reference variant, judged in the metric's direction."""
    diffs, m = summary["paired_differences"], summary["metric"]
    if not diffs:
        return ""
    lines = [f"| variant − {diffs[0]['reference']} | seeds | mean diff{_unit(m, True)} | "
             f"95% CI{_unit(m, True)} | verdict |", "| --- | --- | --- | --- | --- |"]
    for d in diffs:
        s = d["diff"]
        ci = "–" if s["ci_low"] is None else f"[{_fmt(s['ci_low'], m, True)}, {_fmt(s['ci_high'], m, True)}]"
        lines.append(f"| {d['variant']} | {len(d['seeds'])} | {_fmt(s['mean'], m, True)} | {ci} | {d['verdict']} |")
    return "\n".join(lines)


def metrics_table(summary: dict[str, Any]) -> str:
    """Every other declared metric: mean and CI per row, and the paired difference to the
    reference with its verdict in that metric's direction ("" when the task declares one)."""
    blocks = summary.get("other_metrics") or []
    if not blocks:
        return ""
    reference = next((d["reference"] for b in blocks for d in b["paired_differences"]), None)
    ref = f" − {reference}" if reference else ""
    lines = [f"| metric | variant | seeds | mean | 95% CI | variant{ref}, paired | 95% CI | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for b in blocks:
        m = b["metric"]
        diffs = {d["variant"]: d for d in b["paired_differences"]}
        arrow = "↑" if m["higher_is_better"] else "↓"
        for r in b["rows"]:
            s = r["metric"]
            ci = "–" if s["ci_low"] is None else f"[{_fmt(s['ci_low'], m)}, {_fmt(s['ci_high'], m)}]"
            d = diffs.get(r["variant"])
            if d is None:
                diff = dci = "–"
                word = "reference" if r["variant"] == reference else "–"
            else:
                ds = d["diff"]
                diff = _fmt(ds["mean"], m, True)
                dci = "–" if ds["ci_low"] is None else f"[{_fmt(ds['ci_low'], m, True)}, {_fmt(ds['ci_high'], m, True)}]"
                word = d["verdict"]
            lines.append(f"| {m['label']}{_unit(m)} {arrow} | {r['variant']} | {s['n']} | {_fmt(s['mean'], m)} | "
                         f"{ci} | {diff} | {dci} | {word} |")
    return "\n".join(lines) + "\n\n↓: lower is better, ↑: higher is better; verdicts follow each metric's direction."


# -- curves ----------------------------------------------------------------------------------------
def plot_curves(runs: list[dict[str, Any]], variants: list[str], path: Path) -> None:
    """The validation monitor metric and the losses per epoch: mean over seeds, shaded
    min-max range.

    Args:
        runs: run summaries with ``history``.
        variants: which variants, in legend order.
        path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = run_metric(runs)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, v in enumerate(variants):
        color = colors[i % len(colors)]
        hists = [r.get("history") or [] for r in runs if row_label(r) == v and r.get("history")]
        for ax, key, style, label in ((ax_acc, metric["key"], "-", v), (ax_loss, "train/epoch_loss", "-", f"{v} train"),
                                      (ax_loss, "val/loss", "--", f"{v} val")):
            curve = _mean_curve(hists, key)
            if not curve:
                continue
            epochs, mean, lo, hi = zip(*curve)
            x = [e + 1 for e in epochs]
            ax.plot(x, mean, style, color=color, label=label, marker="o", markersize=3)
            ax.fill_between(x, lo, hi, color=color, alpha=0.15)
    better = "higher" if metric["higher_is_better"] else "lower"
    ax_acc.set(xlabel="epoch", ylabel=f"validation {metric['label']}",
               title=f"{metric['label']} ({better} is better; mean over seeds, range shaded)")
    ax_loss.set(xlabel="epoch", ylabel="loss",
                title="loss (train as optimised: solid; validation: dashed)")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a report of failed runs has no curve to label
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _mean_curve(histories: list[list[dict[str, Any]]], key: str) -> list[tuple[int, float, float, float]]:
    per_epoch: dict[int, list[float]] = {}
    for hist in histories:
        for h in hist:
            if key in h:
                per_epoch.setdefault(int(h["epoch"]), []).append(float(h[key]))
    return [(e, statistics.fmean(v), min(v), max(v)) for e, v in sorted(per_epoch.items())]


# -- the report ------------------------------------------------------------------------------------
def write_report(
    out_dir: Path, runs: list[dict[str, Any]], variants: list[str], meta: dict[str, Any],
    reading: Any = None,
) -> dict[str, Any]:
    """Write ``report.md``, ``curves.png`` and ``results.json`` into ``out_dir``.

    Args:
        out_dir: the comparison folder.
        runs: every run's summary.
        variants: table order.
        meta: what was compared (dataset, budget, config) for the header and the JSON.
        reading: ``reading(runs, summary) -> str``, a paragraph for the report's end.

    Returns:
        The results dict (what ``results.json`` holds).
    """
    summary = summarize(runs, variants)
    if reading is not None:
        meta = {**meta, "reading": reading(runs, summary)}
    plot_curves(runs, variants, out_dir / "curves.png")
    results = {**meta, "summary": summary, "runs": runs}
    atomic_write(out_dir / "results.json", lambda f: json.dump(results, f, indent=2, default=str), mode="w")
    text = render_markdown(summary, meta)
    atomic_write(out_dir / "report.md", lambda f: f.write(text), mode="w")
    return results


def _budget(summary: dict[str, Any]) -> str:
    """When the report's final metric was taken: a fixed schedule, or the plateau stop."""
    if any((r.get("plateau") or {}).get("stop") for r in summary["rows"]):
        return ("the last epoch each run trained: every variant has the same schedule, and a run stops "
                "early once the plateau rule below holds (trainer.stop_at_plateau)")
    return "the last epoch (one fixed budget for every variant, no early stopping)"


def render_markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"# {meta.get('title', 'Variant comparison')}", ""]
    for key in ("dataset", "host", "lm", "budget", "seeds"):
        if key in meta:
            lines.append(f"- **{key}**: {meta[key]}")
    lines += [
        "",
        f"{summary['metric']['label']} is the validation metric after {_budget(summary)}. The 95% CI "
        f"is Student's t over seeds; with one seed there is none. ms/step is the median wall time of a training step (data included), "
        f"samples/s follows from it; CPU ms/step (all threads of the process) is less sensitive to "
        f"other work on a shared machine.",
        "",
        markdown_table(summary),
        "",
    ]
    diff = differences_table(summary)
    if diff:
        lines += ["Paired by seed (same host initialisation and batch order per seed):", "", diff, ""]
    others = metrics_table(summary)
    if others:
        lines += ["Every other metric the task declares, at the same final epoch:", "", others, ""]
    lines += ["![curves](curves.png)", ""]
    if meta.get("reading"):
        lines += ["## Reading", "", meta["reading"], ""]
    return "\n".join(lines)
