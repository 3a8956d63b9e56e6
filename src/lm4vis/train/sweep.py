"""Sweeps of the paper's ablations: which layer, which placement, which language model.

- ``layer`` (the paper's Fig. 2): every k-th layer of the chosen LM, first to last;
- ``placement`` (the paper's Table D): head, middle, tail, and two layers at the tail; or the
  placements a host declares with its registration (``fusion-vqa``: visual, fusion, both);
- ``llm``: SmolLM2-135M, Gemma 3 270M when installed, the random-init and MLP controls.

Every cell x seed is an ordinary run (resumable: a completed run is kept, a killed one
continues), and a baseline row is trained alongside for reference. The report is the same
table as `lm4vis compare` plus a plot of the swept axis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import read_lm_config, registry
from .compare import run_grid
from .config import ConfigError, RunConfig

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("layer", "placement", "llm")
#: The paper's Table D rows: (label, where, layers).
PLACEMENT_CELLS: tuple[tuple[str, str, str], ...] = (
    ("head", "first", "-1"),
    ("middle", "middle", "-1"),
    ("tail", "last", "-1"),
    ("two-layers", "last", "-2:"),
)
DEFAULT_LLMS: tuple[str, ...] = ("smollm2-135m", "gemma3-270m", "random-lm", "mlp")


@dataclass
class Cell:
    """One row of a sweep: a label (also its run folders' name), the config overrides that
    make it, and a plot position."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    x: float | None = None


def layer_indices(num_layers: int, every: int) -> list[int]:
    """Every ``every``-th layer from the first, always including the last."""
    if every < 1:
        raise ConfigError(f"--every must be at least 1, got {every}")
    return sorted(set(range(0, num_layers, every)) | {num_layers - 1})


def sweep_cells(
    kind: str, cfg: RunConfig, every: int = 5, llms: tuple[str, ...] = DEFAULT_LLMS,
    with_baseline: bool = True,
) -> list[Cell]:
    """The cells of a sweep of ``kind`` around ``cfg``'s LM (``cfg.block.source``)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown sweep kind {kind!r}; choose one of {', '.join(KINDS)}")
    cells = [Cell("baseline", {"block.variant": "baseline"})] if with_baseline else []
    frozen = {"block.variant": "frozen-lm"}
    if kind == "layer":
        n = read_lm_config(cfg.block.source).num_layers
        cells += [Cell(f"layer-{i}", {**frozen, "block.layers": str(i), "block.where": "last"}, x=i)
                  for i in layer_indices(n, every)]
    elif kind == "placement":
        declared = _host_placements(cfg)
        if declared:  # a host that names its own placements (fusion-vqa: visual, fusion, both)
            cells += [Cell(where, {**frozen, "block.where": where}, x=k) for k, where in enumerate(declared)]
        else:
            cells += [Cell(label, {**frozen, "block.where": where, "block.layers": layers}, x=k)
                      for k, (label, where, layers) in enumerate(PLACEMENT_CELLS)]
    else:
        for k, name in enumerate(llms):
            if name in ("random-lm", "mlp"):
                cells.append(Cell(name, {"block.variant": name}, x=k))
            elif registry.is_registered(name) and name not in registry.available():
                log.warning("skipping %s: not installed (%s)", name, registry.REGISTRY[name].install)
            else:
                cells.append(Cell(name, {**frozen, "block.source": name, "block.layers": "-1"}, x=k))
    return cells


def _host_placements(cfg: RunConfig) -> list[str]:
    """The placements the host's registration names, without aliases of one another."""
    from ..registry import HOSTS

    declared = HOSTS.get(cfg.host.kind).get("placements") or {}
    seen, out = [], []
    for where, blocks in declared.items():
        if blocks not in seen:
            seen.append(blocks)
            out.append(where)
    return out


def sweep(
    cfg: RunConfig,
    kind: str,
    seeds: list[int],
    every: int = 5,
    llms: tuple[str, ...] = DEFAULT_LLMS,
    name: str | None = None,
    with_baseline: bool = True,
    on_run_done: Any = None,
) -> dict[str, Any]:
    """Run a sweep and write ``report.md``, ``sweep.png``, ``curves.png`` and ``results.json``.

    Args:
        cfg: the shared config (data, host, budget, and the LM in ``block.source``).
        kind: ``layer``, ``placement`` or ``llm``.
        seeds: seeds of every cell.
        every: the layer sweep's stride.
        llms: the ``llm`` sweep's rows: registered names, paths, ``random-lm`` or ``mlp``.
        name: folder under ``cfg.out_dir`` (default ``sweep-<kind>``).
        with_baseline: train the no-block baseline alongside, for reference.
        on_run_done: called with each run's summary as it finishes.
    """
    cells = sweep_cells(kind, cfg, every, llms, with_baseline)
    results = run_grid(
        cfg, [(c.label, c.overrides) for c in cells], seeds, name or f"sweep-{kind}",
        title=f"{kind} sweep on {cfg.data.name} ({cfg.block.source})",
        on_run_done=on_run_done,
    )
    out_dir = Path(results["out_dir"])
    plot_sweep(results, cells, kind, out_dir / "sweep.png")
    results["plot"] = str(out_dir / "sweep.png")
    return results


def plot_sweep(results: dict[str, Any], cells: list[Cell], kind: str, path: Path) -> None:
    """The monitor metric's mean with 95% CI per cell; the baseline as a shaded band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["variant"]: r["metric"] for r in results["summary"]["rows"]}
    metric = results["summary"]["metric"]
    k = metric["scale"]
    swept = [c for c in cells if c.label != "baseline" and rows.get(c.label, {}).get("mean") is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = list(range(len(swept))) if kind != "layer" else [c.x for c in swept]
    means = [k * rows[c.label]["mean"] for c in swept]
    errs = [k * (rows[c.label]["half_width"] or 0.0) for c in swept]
    if kind == "layer":
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label="frozen-lm")
        ax.set_xlabel("LM layer index")
    else:
        ax.bar(xs, means, yerr=errs, capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(xs, [c.label for c in swept])
    base = rows.get("baseline")
    if base and base.get("mean") is not None:
        m, h = k * base["mean"], k * (base["half_width"] or 0.0)
        ax.axhline(m, color="k", ls="--", lw=1, label="baseline")
        if h:
            ax.axhspan(m - h, m + h, color="k", alpha=0.1)
    if means:
        if metric["higher_is_better"]:  # bars from just below the worst cell, not from 0
            lo = min(means + ([k * base["mean"]] if base and base.get("mean") is not None else []))
            ax.set_ylim(bottom=max(0.0, lo - 0.05 * k))  # 5 points below, for a % metric
    unit = f" ({metric['unit']})" if metric["unit"] else ""
    better = "higher" if metric["higher_is_better"] else "lower"
    ax.set_ylabel(f"{metric['label']}{unit}, mean and 95% CI over seeds ({better} is better)")
    ax.set_title(results.get("title", f"{kind} sweep"))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
