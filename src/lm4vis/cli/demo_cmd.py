"""`lm4vis demo`: the README's main command, end to end on the CPU."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train a small ViT three ways on the embedded image data (Fashion-MNIST if installed, else
Animal-MNIST), on the CPU: baseline (no block), frozen-lm (SmolLM2-135M's last layer, frozen,
between two trainable linear layers) and mlp (a trainable MLP with the same parameter count).
Prints the table (top-1 mean, std and 95% CI over seeds, parameters, speed), the path of the
report, and a plain reading of the result. The default budget (configs/demo.yaml) takes about
5 minutes on 2 cores; running it again reuses finished runs and resumes an interrupted one."""

EPILOG = """\
examples:
  lm4vis demo                      # 3 variants x seeds 0,1,2 -> runs/demo-fashion-mnist/report.md
  lm4vis demo --quick              # one-minute smoke run (numbers mean nothing)
  lm4vis demo --seeds 0,1,2,3,4 --out /tmp/lm4vis
  lm4vis compare --config demo --variants baseline,frozen-lm,random-lm   # other controls"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="baseline vs frozen LM layer vs MLP on Fashion-MNIST, on the CPU",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--out", default="runs", help="parent folder of the demo's runs (default: runs)")
    p.add_argument("--quick", action="store_true", help="one-minute smoke version (configs/demo-quick.yaml)")
    p.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: one per core that no other process keeps "
                   "busy, judged by the load average: OpenMP threads sharing a busy core wait on "
                   "each other and can make training many times slower)")
    p.add_argument("--dataset", choices=["fashion-mnist", "animal-mnist"],
                   help="force a dataset (default: Fashion-MNIST if installed, else Animal-MNIST)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import textwrap

    import torch

    from ..train.demo import VARIANTS, pick_threads, run_demo
    from .compare_cmd import parse_seeds, print_results
    from .train_cmd import quiet_lightning

    quiet_lightning(getattr(args, "verbose", False))
    seeds = parse_seeds(args.seeds)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    threads = args.threads or pick_threads()
    torch.set_num_threads(threads)
    print(f"training on the CPU with {threads} thread(s)", flush=True)
    total = len(seeds) * len(VARIANTS)
    done = []

    def progress(summary: dict) -> None:
        done.append(summary)
        acc = (summary.get("final") or {}).get("val/acc")
        result = f"top-1 {100 * acc:.2f}%" if acc is not None else summary.get("status")
        print(f"[{len(done)}/{total}] {summary.get('variant')} seed {summary.get('seed')}: {result} "
              f"({summary.get('wall_time_s', 0):.0f} s)", flush=True)

    results = run_demo(seeds, quick=args.quick, out=args.out, dataset=args.dataset, on_run_done=progress)
    print()
    status = print_results(results)
    print(f"wall time: {results['wall_time_s'] / 60:.1f} min\n")
    print(textwrap.fill(results["reading"], width=100))
    return status
