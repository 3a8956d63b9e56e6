"""`lm4vis analyze RUN_DIR`: does the LM block make the features segment the object?"""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Information-filtering analysis of a trained run (Pang et al., ICLR 2024, Sec. 5).

Runs the model over images that have foreground masks, reads the tokens at every stage
(pre_proj_in, post_lm, post_proj_out / last_block, post_norm) and the CLS attention of the
last host block and of every LM layer, turns each into a per-token map (l2 norm, activation
frequency, attention), thresholds the min-max normalised map at 0.1..0.9 into pseudo-masks and
scores them against the masks (IoU). Two protocols: the best threshold per image (the paper's,
optimistic) and one fixed threshold per map chosen on held-out images (honest); mIoU with a
95% bootstrap interval, next to a random map, the all-foreground mask and an input-only
reference (patch brightness for images; closeness to the cloud's centre for point clouds, whose
masks are per point: e.g. a point-bert run on shapes3d).

Writes analysis.md, analysis.json, grid.png (image or x-y projected cloud, mask, maps,
pseudo-masks) and
activation_hist.png (token L2 norms of foreground vs background tokens, per stage).

Motion runs (host vectornet) are analysed by the analysis their host registers: each polyline
token's L2 norm (and the focal token's LM attention) per stage, scored per validation scene by
whether the polylines that decide the focal agent's future (the simulator's ground truth: the
lanes it drives, the agent it follows, the one it yields to) outscore the rest (AUROC, top-1),
for the run and --against, paired by scene, next to closeness to the focal agent (geometry
alone) and chance. Writes analysis.md, analysis.json and scenes.png (scenes drawn with every
polyline coloured by its token's score, run next to baseline).

A fusion-vqa run on shapes-vqa gets its own analysis: the visual tokens' L2 maps (and the
block's amplification |out|/|in|) after each slot, scored per question by the AUROC of the
tokens under the objects the question names (and those that decide its answer) against the
other tokens and the other objects; writes analysis.md, analysis.json and vqa_maps.png."""

EPILOG = """\
examples:
  lm4vis analyze out/analysis/cluttered-fashion-mnist-frozen-lm-s0 \\
      --against out/analysis/cluttered-fashion-mnist-baseline-s0
  lm4vis analyze RUN --data cluttered-animal-mnist --num-images 500
  lm4vis analyze RUN --data masks-folder --root my_images/ --split test --calib-split val
  lm4vis analyze runs/motion/frozen-lm-s0 --against runs/motion/baseline-s0 --num-examples 4

  lm4vis analyze runs/demo-shapes-vqa/frozen-lm-s0 --against runs/demo-shapes-vqa/baseline-s0 --split val --calib-split test

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
    p.add_argument("--split", default=None,
                   help="split the mIoU is measured on (default: test; a motion run: its validation split)")
    p.add_argument("--calib-split", default="val",
                   help="held-out split the fixed thresholds are chosen on (default: val)")
    p.add_argument("--num-images", type=int, default=256, metavar="N",
                   help="images measured (motion: scenes; default: 256)")
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


def run(args: argparse.Namespace) -> int:
    from ..analysis.options import AnalyzeOptions

    opts = AnalyzeOptions(
        checkpoint=args.checkpoint, data=args.data, root=args.root, split=args.split,
        calib_split=args.calib_split, num_images=args.num_images, num_calib=args.num_calib,
        batch_size=args.batch_size, maps=tuple(k.strip() for k in args.maps.split(",") if k.strip()),
        freq_top=args.freq_top, fg_coverage=args.fg_coverage, show=args.show,
        num_examples=args.num_examples, seed=args.seed, out=args.out,
    )
    from ..analysis.api import analyze_runs  # torch: only once the options are sound

    result = analyze_runs(args.run_dir, args.against, opts)
    print(result["text"])
    print(f"\nwrote {result['out']}/ ({', '.join(result['files'])})")
    return 0
