"""`lm4vis sweep`: the paper's layer, placement and LLM ablations, with seeds and CIs."""

from __future__ import annotations

import argparse

from .compare_cmd import parse_list, parse_seeds, print_results
from .train_cmd import add_run_arguments, collect_overrides, quiet_lightning

DESCRIPTION = """\
Sweep one axis of the method with the budget of a preset, every cell with several seeds:

  layer      every k-th layer of block.source's LM, first to last (the paper's Fig. 2)
  placement  head, middle, tail, and two layers at the tail (the paper's Table D), or the
             placements the host declares (fusion-vqa: visual, fusion, both)
  llm        SmolLM2-135M, Gemma 3 270M if installed, random-init and MLP controls

A baseline (no block) is trained alongside for reference. Runs go to
OUT_DIR/NAME/<cell>-s<seed>/; running the same command again skips finished runs and resumes
a killed one. Writes report.md, results.json, curves.png and sweep.png."""

EPILOG = """\
examples:
  lm4vis sweep --config demo --kind layer --every 10 --seeds 0,1
  lm4vis sweep --config demo --kind placement --seeds 0,1,2
  lm4vis sweep --config demo --kind llm --llms smollm2-135m,random-lm,mlp trainer.max_epochs=2"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="sweep the LM layer, the placement or the LLM, with seeds and CIs",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(p)
    p.add_argument("--kind", required=True, choices=["layer", "placement", "llm"],
                   help="which axis to sweep")
    p.add_argument("--every", type=int, default=5,
                   help="layer sweep: take every k-th layer, first to last (default: 5)")
    p.add_argument("--llms", default="smollm2-135m,gemma3-270m,random-lm,mlp",
                   help="llm sweep: comma-separated registered names, paths, random-lm or mlp; "
                        "names not installed are skipped (default: %(default)s)")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (default: 0,1)")
    p.add_argument("--no-baseline", action="store_true", help="do not train the baseline row")
    p.add_argument("--name", help="folder under --out (default: sweep-KIND)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.folders import is_secondary_process

    quiet_lightning(getattr(args, "verbose", False))
    if args.config is None and not args.overrides:
        raise ValueError("give --config PRESET (see configs/); --help has examples")
    if args.seed is not None:  # one run's flag: a grid has many seeds
        raise ValueError(f"--seed sets one run's seed; give the grid's seeds with --seeds {args.seed}")
    cfg = load_config(args.config, collect_overrides(args), plugins=args.plugin)
    seeds = parse_seeds(args.seeds)
    from ..train.sweep import sweep  # torch and Lightning: only once the command is sound
    quiet_lightning(getattr(args, "verbose", False))

    results = sweep(
        cfg, args.kind, seeds, every=args.every,
        llms=tuple(parse_list(args.llms, "llms")), name=args.name,
        with_baseline=not args.no_baseline,
    )
    if is_secondary_process():
        return 0
    return print_results(results, files=f"plot: {results['plot']}")
