"""The analysis table as Markdown (for people) and JSON (for scripts)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .hooks import STAGES
from .maps import split_name
from .runner import ALL_FG, CENTRE, INTENSITY, RANDOM, REFERENCE, Delta, Row


def _sorted(rows: list[Row]) -> list[Row]:
    """Models in order of appearance (reference rows last), then stages in network order,
    then map kind and head."""
    models = list(dict.fromkeys(r.model for r in rows if r.model != REFERENCE))

    def key(row: Row) -> tuple:
        if row.model == REFERENCE:
            return (len(models), 0, "", 0, row.map, 0)
        kind, stage = split_name(row.map)
        base_kind = kind.split(".")[0]
        stage_rank = STAGES.index(stage) if stage in STAGES else len(STAGES) + (stage != "host_attn")
        kind_rank = ("l2", "freq", "attn").index(base_kind) if base_kind in ("l2", "freq", "attn") else 9
        head = int(kind.split(".h")[1]) if ".h" in kind else -1
        return (models.index(row.model), stage_rank, stage, kind_rank, "", head)

    return sorted(rows, key=key)


def _auroc(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3f}"


def rows_table(rows: list[Row]) -> str:
    """Markdown table: one row per map, both protocols side by side.

    Args:
        rows: rows from `evaluate` (any mix of models).
    """
    lines = [
        "| model | map | mIoU, best t per image [95% CI] | mIoU, fixed t [95% CI] | fixed t | AUROC fg/bg |",
        "|---|---|---|---|---|---|",
    ]
    for r in _sorted(rows):
        t = "–" if r.threshold is None else f"{r.threshold:.1f}"
        lines.append(f"| {r.model} | {r.map} | {r.best} | {r.fixed} | {t} | {_auroc(r.auroc)} |")
    return "\n".join(lines)


def deltas_table(deltas: list[Delta]) -> str:
    """Markdown table of paired differences against the baseline."""
    lines = ["| map | baseline map | protocol | ΔmIoU [95% CI] |", "|---|---|---|---|"]
    for d in deltas:
        lines.append(f"| {d.map} | {d.against} | {d.protocol} | {d.diff.mean:+.3f} "
                     f"[{d.diff.lo:+.3f}, {d.diff.hi:+.3f}] |")
    return "\n".join(lines)


def summary_rows(rows: list[Row]) -> list[Row]:
    """Rows without per-head attention (those go to their own table)."""
    return [r for r in rows if ".h" not in r.kind]


def _references(rows: list[Row]) -> str:
    """The line saying what each reference row is (the input-only one depends on the layout)."""
    present = {r.map for r in rows if r.model == REFERENCE}
    if INTENSITY in present:
        return (f"- reference rows: `{RANDOM}` is a uniform random map scored the same way (chance); "
                f"`{ALL_FG}` predicts the whole image; `{INTENSITY}` is each patch's mean input value "
                "(brightness alone)")
    line = (f"- reference rows: `{RANDOM}` is a uniform random map scored the same way (chance); "
            f"`{ALL_FG}` predicts the whole input")
    if CENTRE in present:
        line += (f"; `{CENTRE}` is minus each point's distance to its cloud's mean, averaged over a "
                 f"token's points (geometry alone; it replaces `{INTENSITY}`, which needs images)")
    else:
        line += f"; no input-only reference map for this layout (`{INTENSITY}` needs images)"
    return line


def render_markdown(meta: dict[str, Any], rows: list[Row], deltas: list[Delta]) -> str:
    """The whole ``analysis.md``.

    Args:
        meta: what was analysed (run, against, data, split, counts, files).
        rows: all rows.
        deltas: paired differences (may be empty).
    """
    heads = [r for r in rows if ".h" in r.kind]
    out = [
        "# Information filtering: pseudo-mask mIoU",
        "",
        f"- run: `{meta['run']}`" + (f" (against baseline `{meta['against']}`)" if meta.get("against") else ""),
        f"- images: {meta['num_images']} of `{meta['data']}` split `{meta['split']}`; fixed "
        f"thresholds chosen on {meta['num_calib']} images of split `{meta['calib_split']}`",
        f"- maps are min-max normalised over patch tokens and thresholded at "
        f"{', '.join(f'{t:g}' for t in meta['thresholds'])}; foreground token = mask coverage "
        f">= {meta['fg_coverage']:g}; 95% CI = percentile bootstrap over images "
        f"({meta['num_boot']} resamples, seed {meta['seed']})",
        "- *best t per image* is the paper's protocol (optimistic); *fixed t* is one threshold per "
        "map chosen on the calibration images (honest)",
        _references(rows),
        "",
        rows_table(summary_rows(rows)),
    ]
    if deltas:
        out += ["", "## Paired difference against the baseline (same images)", "",
                deltas_table(deltas)]
    if heads:
        out += ["", "## Attention heads", "", rows_table(heads)]
    if meta.get("files"):
        out += ["", "## Figures", ""] + [f"- `{f}`" for f in meta["files"]]
    return "\n".join(out) + "\n"


def write_report(out_dir: str | Path, meta: dict[str, Any], rows: list[Row],
                 deltas: list[Delta]) -> tuple[Path, Path]:
    """Write ``analysis.md`` and ``analysis.json`` into ``out_dir``.

    Args:
        out_dir: output folder (created).
        meta: what was analysed.
        rows: all rows.
        deltas: paired differences.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "analysis.md"
    md.write_text(render_markdown(meta, rows, deltas))
    js = out / "analysis.json"
    js.write_text(json.dumps({
        "meta": meta,
        "rows": [r.to_dict() for r in _sorted(rows)],
        "deltas": [d.to_dict() for d in deltas],
    }, indent=2))
    return md, js


__all__ = ["rows_table", "deltas_table", "render_markdown", "write_report", "summary_rows"]
