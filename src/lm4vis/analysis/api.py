"""`analyze_runs`: the information-filtering analysis of trained runs, end to end.

What `lm4vis analyze` does, as a library call: load the runs, take the images (or points,
frames) that have foreground masks from the run's data source, collect every map at every
stage, score them under both protocols, write the report and the figures.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .layout import layout_of
from .options import AnalyzeOptions
from .runner import AnalysisConfig, collect, compare, counterpart, evaluate


def _load(run_dir: str | Path, checkpoint: str) -> tuple[Any, Any]:
    from ..train.loading import load_run

    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run folder (no config.yaml); give the folder `lm4vis train` "
            "or `lm4vis compare` wrote, e.g. runs/<name>/<variant>-s<seed>"
        )
    return load_run(path, checkpoint)


def _labels(runs: list[tuple[str, Any]]) -> list[str]:
    """Each run's variant name, or its folder name when two runs share a variant."""
    variants = [cfg.block.variant for _, cfg in runs]
    if len(set(variants)) == len(variants):
        return variants
    return [Path(path).name for path, _ in runs]


def _masked_batches(cfg: Any, opts: AnalyzeOptions, split: str, limit: int, run_dir: Any = None) -> Any:
    """The run's data source's samples with masks, as model-ready ``(inputs, masks)``."""
    from ..train.datamodule import build_source

    source = build_source(cfg, run_dir)
    batches = getattr(source, "analysis_batches", None)
    if batches is None:
        raise ValueError(
            f"dataset {cfg.data.name!r} offers no foreground masks for the analysis; give one that "
            "does with --data (e.g. cluttered-fashion-mnist, masks-folder)"
        )
    return batches(split, limit, opts.batch_size, name=opts.data, root=opts.root)


def _host_analysis(models: list[tuple[str, Any, Any]]) -> Any:
    """The analysis the runs' host registers in place of pseudo-mask mIoU (``analysis=``), or
    None; every run must have the same host."""
    from ..registry import HOSTS

    kinds = {cfg.host.kind for _, _, cfg in models}
    if len(kinds) > 1:
        raise ValueError(f"the runs have different hosts ({', '.join(sorted(kinds))}); analyse runs of one host")
    return HOSTS.get(kinds.pop()).get("analysis")


def analyze_runs(run_dir: str | Path, against: str | Path | None = None,
                 options: AnalyzeOptions | None = None) -> dict[str, Any]:
    """Analyse a run (and optionally a second one, usually its baseline, on the same samples).

    Args:
        run_dir: the trained run folder.
        against: a second run folder analysed alike; adds paired differences and its maps.
        options: see `AnalyzeOptions`.

    Returns:
        ``{"out": folder, "rows": [...], "deltas": [...], "report": analysis.md path, "meta": ...,
        "text": the tables printed, "files": what was written}``. A host that registers its own
        ``analysis`` (``vectornet``: polyline relevance, `lm4vis.analysis.motion.analyze_motion`)
        (or ``fusion-vqa``: visual tokens against the objects a question names,
        `lm4vis.analysis.vqa.analyze_vqa_runs`) is analysed by it instead, with the same
        options and result keys.
    """
    from .plots import plot_activation_hist, plot_grid
    from .report import deltas_table, rows_table, summary_rows, write_report

    opts = options or AnalyzeOptions()
    acfg = AnalysisConfig(kinds=tuple(opts.maps), top=opts.freq_top, fg_coverage=opts.fg_coverage,
                          seed=opts.seed, keep=opts.num_examples)
    num_calib = opts.num_calib or opts.num_images
    models = [(str(run_dir), *_load(run_dir, opts.checkpoint))]
    if against is not None:
        models.append((str(against), *_load(against, opts.checkpoint)))
    cfg0 = models[0][2]
    labels = _labels([(p, cfg) for p, _, cfg in models])
    own = _host_analysis(models)
    if own is not None:  # tokens that are not patches of an input with masks (motion, VQA)
        return own(models, labels, opts)
    opts = replace(opts, split=opts.split or "test")

    results = []  # (label, eval Collected, rows)
    for (path, model, cfg), label in zip(models, labels):
        size0, size = getattr(cfg0.data, "image_size", None), getattr(cfg.data, "image_size", None)
        if size != size0:
            raise ValueError(
                f"{path} was trained at {size} px but {models[0][0]} at {size0} px; compare runs "
                "trained on the same image size"
            )

        def layout(inputs: torch.Tensor, m: Any = model) -> Any:
            return layout_of(m, inputs)

        ev = collect(model, _masked_batches(cfg, opts, opts.split, opts.num_images, path), layout, acfg)
        cal = collect(model, _masked_batches(cfg, opts, opts.calib_split, num_calib, path), layout, acfg)
        rows = evaluate(label, ev, cal, acfg, baselines=not results)
        results.append((label, ev, rows))

    rows = [r for _, _, rs in results for r in rs]
    deltas = compare(results[0][2], results[1][2], acfg) if len(results) > 1 else []

    out = Path(opts.out or Path(run_dir) / "analysis")
    out.mkdir(parents=True, exist_ok=True)
    label, ev, run_rows = results[0]
    by_map = {r.map: r for r in run_rows}
    show = opts.show or ("l2@post_lm" if "l2@post_lm" in ev.scores else "l2@last_block")
    if show not in ev.scores:
        raise ValueError(f"--show {show} is not a map of this run; maps: {', '.join(ev.scores)}")
    base_kwargs: dict[str, Any] = {}
    if len(results) > 1:
        b_label, b_ev, b_rows = results[1]
        b_map = counterpart(show)
        if b_map in b_ev.scores:
            b_by = {r.map: r for r in b_rows}
            base_kwargs = dict(base=b_ev, base_map=b_map, base_threshold=b_by[b_map].threshold,
                               labels=(label, b_label))
    grid = plot_grid(out / "grid.png", ev, show, by_map[show].threshold, num=opts.num_examples,
                     **base_kwargs)
    panels = [(f"{lab}: {name.split('@')[1]}", c, name)
              for lab, c, _ in results for name in c.scores if name.startswith("l2@")]
    hist = plot_activation_hist(out / "activation_hist.png", panels, opts.fg_coverage)

    meta = {
        "run": str(run_dir), "against": None if against is None else str(against),
        "checkpoint": opts.checkpoint, "data": opts.data or cfg0.data.name, "split": opts.split,
        "calib_split": opts.calib_split, "num_images": ev.num_images, "num_calib": num_calib,
        "thresholds": list(acfg.thresholds), "fg_coverage": acfg.fg_coverage,
        "freq_top": acfg.top, "num_boot": acfg.num_boot, "seed": acfg.seed,
        "grid_map": show, "files": [grid.name, hist.name],
        "models": {lab: {"variant": cfg.block.variant, "run": str(p)}
                   for (lab, _, _), (p, _, cfg) in zip(results, models)},
    }
    md, _ = write_report(out, meta, rows, deltas)
    text = rows_table(summary_rows(rows)) + (f"\n\n{deltas_table(deltas)}" if deltas else "")
    return {"out": out, "rows": rows, "deltas": deltas, "report": md, "meta": meta, "text": text,
            "files": ["analysis.md", "analysis.json", grid.name, hist.name]}


__all__ = ["AnalyzeOptions", "analyze_runs"]
