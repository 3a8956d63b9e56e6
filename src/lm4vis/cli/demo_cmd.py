"""`lm4vis demo`: the README's main command, end to end on the CPU."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train a small host three ways on embedded data, on the CPU: baseline (no block), frozen-lm
(SmolLM2-135M's last layer, frozen, between two trainable linear layers) and mlp (a trainable
MLP with the same parameter count), with every seed. --task picks the data:
  images     a small ViT on Fashion-MNIST, else Animal-MNIST (configs/demo.yaml; the default)
  points     a small Point-BERT on the generated shapes3d (configs/points-demo.yaml)
  video      a small VideoMAE on the generated motion-mnist, 14 motions no single frame shows
  motion     a small VectorNet on the traffic simulator: minADE, minFDE, miss rate at K=1 and
             K=6 (lower is better), beside a constant-velocity extrapolation
  vqa        a small METER-style co-attention model on the generated shapes-vqa: accuracy per
             question type beside the blind prior, with language-only and image-only controls
  retrieval  a small dual encoder on the generated shapes-captions: Recall@1/5/10 image->text
             and text->image over the whole validation split, beside random ranking
  vqa3d      a small scene-VQA model on the generated rooms3d-qa: EM@1 per question type,
             with situation-blind and scene-blind controls
  all        every task above, then one table in the shape of the paper's
The README gives each demo's measured table and wall time. Prints the table (mean, std and 95%
CI over seeds, parameters, speed), the path of the report, and a plain reading of the result;
running it again reuses finished runs and resumes an interrupted one."""

EPILOG = """\
examples:
  lm4vis demo                      # 3 variants x seeds 0,1,2 -> runs/demo-fashion-mnist/report.md
  lm4vis demo --task points        # the same on point clouds -> runs/demo-shapes3d/report.md
  lm4vis demo --task video         # the same on video clips -> runs/demo-motion-mnist/report.md
  lm4vis demo --quick              # one-minute smoke run (numbers mean nothing)
  lm4vis demo --seeds 0,1,2,3,4 --out /tmp/lm4vis
  lm4vis demo --task motion        # VectorNet on sim-traffic -> runs/demo-sim-traffic/report.md
  lm4vis demo --task vqa           # METER-style VQA on shapes-vqa + language-/image-only controls
  lm4vis demo --task retrieval     # a dual encoder on shapes-captions -> runs/demo-shapes-captions/report.md
  lm4vis demo --task all           # every task, then runs/paper-table/table.md
  lm4vis compare --config demo --variants baseline,frozen-lm,random-lm   # other controls"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="baseline vs frozen LM layer vs MLP on Fashion-MNIST, on the CPU",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--out", default="runs", help="parent folder of the demo's runs (default: runs)")
    p.add_argument("--quick", action="store_true",
                   help="one-minute smoke version (the task's quick preset: demo-quick, points-demo-quick, "
                   "video-demo-quick, motion-demo-quick)")
    p.add_argument("--threads", type=int,
                   help="CPU threads for torch (trainer.threads; default: the preset's: 2 for points, "
                   "retrieval, vqa and vqa3d, the machine's cores for images, video and motion). "
                   "Fixed, not taken from the load, so the same command gives the same numbers; "
                   "on a machine where other work keeps a core busy, --threads 1 can be much faster")
    from ..train.demo_tasks import DEFAULT_TASK, DEMO_TASKS

    p.add_argument("--task", choices=[*DEMO_TASKS, "all"], default=DEFAULT_TASK,
                   help="the kind of data: " + "; ".join(f"{k}: {t.summary}" for k, t in DEMO_TASKS.items())
                   + f"; all: every one of them, then one table in the shape of the paper's "
                   f"(runs/paper-table/table.md; a finished task is read back, never retrained) "
                   f"(default: {DEFAULT_TASK})")
    p.add_argument("--lm", metavar="NAME",
                   help="the LM whose layer is frozen in (block.source), e.g. gemma3-270m when its "
                   "package is installed (default: the preset's, smollm2-135m)")
    p.add_argument("--dataset", choices=sorted({d for t in DEMO_TASKS.values() for d in t.datasets}),
                   help="force one of the task's embedded datasets (images: Fashion-MNIST if installed, "
                   "else Animal-MNIST)")
    p.add_argument("--config", metavar="PRESET",
                   help="run the three variants on another preset instead, e.g. your own parts' "
                   "(docs/extending.md)")
    p.add_argument("--no-controls", dest="controls", action="store_false",
                   help="leave out the task's control rows (an input taken away: the image for vqa, "
                   "the situation for vqa3d), which are trained after the three variants")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="a module that registers your own host, task or dataset; repeatable")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import textwrap

    if args.lm is not None:
        from ..checkpoint import registry

        if args.lm in registry.REGISTRY and args.lm not in registry.available():
            raise ValueError(f"--lm {args.lm} is not installed here; install it with: "
                             f"{registry.REGISTRY[args.lm].install}")
        args.overrides = [*args.overrides, f"block.source={args.lm}"]
    if args.task == "all":
        return run_all_tasks(args)

    from ..train.demo import VARIANTS, demo_config, run_demo
    from ..train.config import threads_for
    from .compare_cmd import parse_seeds, print_results
    from .train_cmd import quiet_lightning

    seeds = parse_seeds(args.seeds)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    from ..train import compare as _engine  # noqa: F401  Lightning is imported here: quiet it after

    quiet_lightning(getattr(args, "verbose", False))
    cfg = demo_config(args.quick, args.out, args.dataset, args.threads, args.config, args.overrides,
                      args.plugin, args.task)
    threads = threads_for(cfg)
    print(f"training on the CPU with {threads} thread(s) (--threads to change)", flush=True)
    from ..train.demo import demo_task

    controls = () if args.config or not args.controls else demo_task(args.task).controls
    total = len(seeds) * (len(VARIANTS) + len(controls))
    done = []

    def progress(summary: dict) -> None:
        done.append(summary)
        result = _result_line(summary)
        print(f"[{len(done)}/{total}] {summary.get('cell') or summary.get('variant')} seed {summary.get('seed')}: {result} "
              f"({summary.get('wall_time_s', 0):.0f} s)", flush=True)

    results = run_demo(seeds, quick=args.quick, out=args.out, dataset=args.dataset, on_run_done=progress,
                       threads=args.threads, preset=args.config, overrides=args.overrides,
                       plugins=args.plugin, task=args.task, controls=args.controls)
    print()
    status = print_results(results)
    print(f"wall time: {results['wall_time_s'] / 60:.1f} min\n")
    print(textwrap.fill(results["reading"], width=100))
    return status


def _result_line(summary: dict) -> str:
    """``top-1 74.43%`` (the run's monitor metric), or the run's status when it has none."""
    from ..train.report import run_metric

    m = run_metric([summary])
    value = (summary.get("final") or {}).get(m["key"])
    if value is None:
        return str(summary.get("status"))
    return f"{m['label']} {m['scale'] * value:.{m['digits']}f}{m['unit']}"


def run_all_tasks(args: argparse.Namespace) -> int:
    """``--task all``: every task's demo, then the paper-shaped table."""
    import textwrap

    from ..train import compare as _engine  # noqa: F401  Lightning is imported here: quiet it after
    from ..train.paper_table import markdown, run_all
    from .compare_cmd import parse_seeds
    from .train_cmd import quiet_lightning

    if args.config or args.dataset:
        raise ValueError("--task all runs every task's own preset and data; drop --config and --dataset")
    quiet_lightning(getattr(args, "verbose", False))
    seeds = parse_seeds(args.seeds)

    def task_done(task: str, results: dict, reused: bool) -> None:
        how = "read back (every run was complete)" if reused else f"{results['wall_time_s'] / 60:.1f} min"
        print(f"== {task}: {how}; report: {results['out_dir']}/report.md", flush=True)

    def run_done(summary: dict) -> None:
        print(f"   {summary.get('cell') or summary.get('variant')} seed {summary.get('seed')}: "
              f"{_result_line(summary)} ({summary.get('wall_time_s', 0):.0f} s)", flush=True)

    table = run_all(seeds, out=args.out, quick=args.quick, threads=args.threads, overrides=args.overrides,
                    on_task_done=task_done, on_run_done=run_done)
    print()
    print(markdown(table["rows"]))
    print(f"\ntable: {table['out_dir']}/table.md  (table.png, results.json beside it)")
    print(f"wall time: {table['wall_time_s'] / 60:.1f} min\n")
    print(textwrap.fill(table["reading"], width=100))
    return 0
