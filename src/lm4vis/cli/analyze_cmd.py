"""`lm4vis analyze RUN_DIR`: does the LM block make the features segment the object?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Information-filtering analysis of a trained run (Pang et al., ICLR 2024, Sec. 5).

Runs the model over images that have foreground masks, reads the tokens at every stage
(pre_proj_in, post_lm, post_proj_out / last_block, post_norm) and the CLS attention of the
last host block and of every LM layer, turns each into a per-token map (l2 norm, activation
frequency, attention), thresholds the min-max normalised map at 0.1..0.9 into pseudo-masks and
scores them against the masks (IoU). Two protocols: the best threshold per image (the paper's,
optimistic) and one fixed threshold per map chosen on held-out images (honest); mIoU with a
95% bootstrap interval, next to a random map, the all-foreground mask and patch brightness.

Writes analysis.md, analysis.json, grid.png (image, mask, maps, pseudo-masks) and
activation_hist.png (token L2 norms of foreground vs background tokens, per stage)."""

EPILOG = """\
examples:
  lm4vis analyze out/analysis/frozen-lm-s0 --against out/analysis/baseline-s0
  lm4vis analyze RUN --data cluttered-animal-mnist --num-images 500
  lm4vis analyze RUN --data masks-folder --root my_images/ --split test --calib-split val

masks-folder: ROOT/images/<name>.png with ROOT/masks/<name>.png (nonzero = foreground); see
docs/analysis.md for the definitions of every map and protocol."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="pseudo-mask mIoU of feature maps: does the LM block focus on the object?",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run folder (config.yaml + checkpoints/)")
    p.add_argument("--against", metavar="BASELINE_RUN_DIR",
                   help="a second run (usually the baseline variant) analysed on the same images; "
                   "adds its maps, paired differences and the comparison grid")
    p.add_argument("--checkpoint", default="last.ckpt",
                   help="checkpoint file under RUN_DIR/checkpoints/ (default: last.ckpt; e.g. "
                   "epoch000.ckpt to see how the maps change during training)")
    p.add_argument("--data", metavar="NAME",
                   help="dataset with masks (cluttered-fashion-mnist, cluttered-animal-mnist, "
                   "masks-folder); default: the run's own dataset")
    p.add_argument("--root", help="dataset folder (masks-folder needs one)")
    p.add_argument("--split", default="test", help="split the mIoU is measured on (default: test)")
    p.add_argument("--calib-split", default="val",
                   help="held-out split the fixed thresholds are chosen on (default: val)")
    p.add_argument("--num-images", type=int, default=256, metavar="N",
                   help="images measured (default: 256)")
    p.add_argument("--num-calib", type=int, default=None, metavar="N",
                   help="calibration images (default: as many as --num-images)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--maps", default="l2,freq,attn",
                   help="map kinds, comma-separated: l2, freq, attn (default: all)")
    p.add_argument("--freq-top", type=float, default=0.1,
                   help="fraction of tokens each channel marks in the freq map (default: 0.1)")
    p.add_argument("--fg-coverage", type=float, default=0.5,
                   help="mask coverage from which a token is foreground (default: 0.5)")
    p.add_argument("--show", metavar="MAP",
                   help="map drawn in grid.png, e.g. l2@post_lm (default: l2@post_lm, or "
                   "l2@last_block for a run without LM block); the --against run shows the map at "
                   "the same depth")
    p.add_argument("--num-examples", type=int, default=8, help="rows of grid.png (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the random map")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: RUN_DIR/analysis)")
    p.set_defaults(func=run)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{name}={value} must be positive")


def _load(run_dir: str, checkpoint: str) -> tuple[Any, Any]:
    from ..train import load_run

    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a run folder (no config.yaml); give the folder `lm4vis train` "
            "or `lm4vis compare` wrote, e.g. out/<name>/<variant>-s<seed>"
        )
    return load_run(path, checkpoint)


def _dataset(cfg: Any, args: argparse.Namespace, split: str, limit: int) -> Any:
    from ..data import build_dataset

    name = args.data or cfg.data.name
    root = args.root if args.root is not None else (cfg.data.root if not args.data else None)
    ds = build_dataset(name, split=split, root=root, image_size=cfg.data.image_size,
                       seed=cfg.data.data_seed, with_masks=True, limit=limit)
    if len(ds) == 0:
        raise ValueError(f"split {split!r} of {name} holds no images; choose another --split")
    return ds


def _labels(runs: list[tuple[str, Any]]) -> list[str]:
    """Each run's variant name, or its folder name when two runs share a variant."""
    variants = [cfg.block.variant for _, cfg in runs]
    if len(set(variants)) == len(variants):
        return variants
    return [Path(path).name for path, _ in runs]


def run(args: argparse.Namespace) -> int:
    import torch

    from ..analysis import AnalysisConfig, collect, compare, evaluate, layout_of
    from ..analysis.plots import plot_activation_hist, plot_grid
    from ..analysis.report import deltas_table, rows_table, summary_rows, write_report
    from ..analysis.runner import batches_from, counterpart
    from ..train.datamodule import build_transform

    for name in ("num_images", "num_calib", "batch_size", "num_examples"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name))
    kinds = tuple(k.strip() for k in args.maps.split(",") if k.strip())
    acfg = AnalysisConfig(kinds=kinds, top=args.freq_top, fg_coverage=args.fg_coverage,
                          seed=args.seed, keep=args.num_examples)
    if args.split == args.calib_split:
        raise ValueError(
            f"--split and --calib-split are both {args.split!r}: the fixed threshold would be "
            "chosen on the images it is scored on; use e.g. --split test --calib-split val"
        )
    num_calib = args.num_calib or args.num_images

    models = [(args.run_dir, *_load(args.run_dir, args.checkpoint))]
    if args.against:
        models.append((args.against, *_load(args.against, args.checkpoint)))
    cfg0 = models[0][2]
    eval_set = _dataset(cfg0, args, args.split, args.num_images)
    calib_set = _dataset(cfg0, args, args.calib_split, num_calib)
    labels = _labels([(p, cfg) for p, _, cfg in models])

    results = []  # (label, eval Collected, rows)
    for (path, model, cfg), label in zip(models, labels):
        if cfg.data.image_size != cfg0.data.image_size:
            raise ValueError(
                f"{path} was trained at {cfg.data.image_size} px but {models[0][0]} at "
                f"{cfg0.data.image_size} px; compare runs trained on the same image size"
            )
        transform = build_transform(cfg)

        def preprocess(images: torch.Tensor, tf=transform) -> torch.Tensor:
            return torch.stack([tf(im) for im in images])

        layout = layout_of(model)
        ev = collect(model, batches_from(eval_set, preprocess, args.batch_size), layout, acfg)
        cal = collect(model, batches_from(calib_set, preprocess, args.batch_size), layout, acfg)
        rows = evaluate(label, ev, cal, acfg, baselines=not results)
        results.append((label, ev, rows))

    rows = [r for _, _, rs in results for r in rs]
    deltas = compare(results[0][2], results[1][2], acfg) if len(results) > 1 else []

    out = Path(args.out or Path(args.run_dir) / "analysis")
    out.mkdir(parents=True, exist_ok=True)
    label, ev, run_rows = results[0]
    by_map = {r.map: r for r in run_rows}
    show = args.show or ("l2@post_lm" if "l2@post_lm" in ev.scores else "l2@last_block")
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
    grid = plot_grid(out / "grid.png", ev, show, by_map[show].threshold, num=args.num_examples,
                     **base_kwargs)
    panels = [(f"{lab}: {name.split('@')[1]}", c, name)
              for lab, c, _ in results for name in c.scores if name.startswith("l2@")]
    hist = plot_activation_hist(out / "activation_hist.png", panels, args.fg_coverage)

    meta = {
        "run": str(args.run_dir), "against": args.against, "checkpoint": args.checkpoint,
        "data": args.data or cfg0.data.name, "split": args.split, "calib_split": args.calib_split,
        "num_images": ev.num_images, "num_calib": len(calib_set),
        "thresholds": list(acfg.thresholds), "fg_coverage": acfg.fg_coverage,
        "freq_top": acfg.top, "num_boot": acfg.num_boot, "seed": acfg.seed,
        "grid_map": show, "files": [grid.name, hist.name],
        "models": {lab: {"variant": cfg.block.variant, "run": str(p)}
                   for (lab, _, _), (p, _, cfg) in zip(results, models)},
    }
    md, _ = write_report(out, meta, rows, deltas)
    print(rows_table(summary_rows(rows)))
    if deltas:
        print()
        print(deltas_table(deltas))
    print(f"\nwrote {md.parent}/ (analysis.md, analysis.json, grid.png, activation_hist.png)")
    return 0
