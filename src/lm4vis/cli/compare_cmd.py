"""`lm4vis compare`: variants x seeds with one budget, then a report with confidence intervals."""

from __future__ import annotations

import argparse

from .train_cmd import add_run_arguments, collect_overrides, quiet_lightning

DESCRIPTION = """\
Train several variants with several seeds on one dataset and one budget, then write
report.md (top-1 mean, std, Student's t 95% CI over seeds, parameters, speed, and paired
differences to the baseline), curves.png and results.json.

Runs go to OUT_DIR/NAME/<variant>-s<seed>/. Running the same command again skips the
completed runs and resumes a killed one, so a long comparison can be stopped at any time.
The same seed gives every variant the same host initialisation and the same batches."""

EPILOG = """\
variants: baseline (no block), frozen-lm (the method), mlp (trainable MLP with the frozen
layers' parameter count), random-lm (same layers, random and frozen), finetune-lm (same layers,
trained).

examples:
  lm4vis compare --config fashion-mnist-vit-tiny --variants baseline,frozen-lm,mlp --seeds 0,1,2
  lm4vis compare --config animal-mnist-vit-tiny --variants baseline,frozen-lm,random-lm \\
      --seeds 0,1,2,3,4 trainer.max_epochs=10 --out runs --name animal-10ep"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="train variants x seeds and report mean, std and 95%% CI",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(p)
    p.add_argument("--variants", default="baseline,frozen-lm,mlp",
                   help="comma-separated variants (default: baseline,frozen-lm,mlp)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--name", help="folder under --out for this comparison (default: the dataset name)")
    p.set_defaults(func=run)


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"--{what} is empty; give a comma-separated list")
    return items


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in parse_list(text, "seeds")]
    except ValueError:
        raise ValueError(f"--seeds {text!r} must be comma-separated integers, e.g. 0,1,2") from None


def run(args: argparse.Namespace) -> int:
    from ..hosts.configs import VARIANTS
    from ..train.config import load_config
    from ..train.folders import is_secondary_process

    quiet_lightning(getattr(args, "verbose", False))
    if args.config is None and not args.overrides:
        raise ValueError("give --config PRESET (see configs/); --help has examples")
    if args.seed is not None:  # one run's flag: a grid has many seeds
        raise ValueError(f"--seed sets one run's seed; give the grid's seeds with --seeds {args.seed}")
    cfg = load_config(args.config, collect_overrides(args), plugins=args.plugin)
    variants, seeds = parse_list(args.variants, "variants"), parse_seeds(args.seeds)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    from ..train.compare import compare  # torch and Lightning: only once the command is sound
    quiet_lightning(getattr(args, "verbose", False))

    results = compare(cfg, variants, seeds, name=args.name)
    if is_secondary_process():
        return 0
    return print_results(results)


def print_results(results: dict, files: str = "curves.png, results.json beside it") -> int:
    """What `compare`, `sweep` and `demo` print when done: the table, the paired differences,
    where the report is. Returns the exit status: 1 if any run did not complete."""
    from ..train.report import differences_table, markdown_table, metrics_table

    print(markdown_table(results["summary"]))
    diff = differences_table(results["summary"])
    if diff:
        print()
        print(diff)
    others = metrics_table(results["summary"])
    if others:
        print()
        print(others)
    print(f"\nreport: {results['out_dir']}/report.md  ({files})")
    return 0 if all(r.get("status") == "completed" for r in results["runs"]) else 1
