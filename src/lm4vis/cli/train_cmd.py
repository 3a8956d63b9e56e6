"""`lm4vis train`: one training run from a preset, overrides and flags."""

from __future__ import annotations

import argparse
import json
from typing import Any

DESCRIPTION = """\
Train one model: a timm host with (or without) a frozen LM block, on one dataset.

The run is written to OUT_DIR/RUN_NAME/: config.yaml (the resolved config), checkpoints/
(one per epoch and last.ckpt, written atomically), metrics.csv, tensorboard/ and summary.json.
An existing run folder is never overwritten: resume it with --resume, or pick another name."""

EPILOG = """\
overrides are section.key=value, typed by the config field (see configs/*.yaml for every key),
given together, e.g. after the options:
  host.name host.img_size host.kwargs.depth   block.variant block.source block.layers block.where
  block.dtype block.attention   data.name data.root data.batch_size data.limit_train
  optim.lr optim.mixup optim.randaugment   trainer.max_epochs trainer.precision trainer.devices
  trainer.strategy trainer.compile   seed out_dir run_name

examples:
  lm4vis train --config configs/fashion-mnist-vit-tiny.yaml
  lm4vis train --config fashion-mnist-vit-tiny block.variant=mlp optim.lr=5e-4 --seed 1
  lm4vis train --config configs/imagenet/vit-small-llama7b.yaml data.root=/data/imagenet \\
      block.source=/models/llama-7b --devices 8 --strategy ddp --precision bf16-mixed
  lm4vis train --config fashion-mnist-vit-tiny --precision bf16-mixed block.dtype=bf16 --compile
                                                                  # the fast path on a bf16 CPU
  lm4vis train --resume runs/fashion-mnist-frozen-lm-s0          # continue a killed run
  lm4vis train --config fashion-mnist-vit-tiny --run-name auto     # new folder, free suffix"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train one model (one variant, one seed)", description=DESCRIPTION,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue this run folder from checkpoints/last.ckpt (its config.yaml is "
                   "used; a --config that differs from it is refused)")
    p.add_argument("--run-name", metavar="NAME",
                   help="folder name under --out (default: <dataset>-<variant>-s<seed>); 'auto' "
                   "adds -2, -3, ... when the name is taken")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments shared by train and compare: config, overrides and the common flags."""
    p.add_argument("--config", metavar="PRESET",
                   help="a YAML preset: a path, or a name under configs/ (e.g. fashion-mnist-vit-tiny)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides such as optim.lr=1e-3 block.variant=mlp")
    p.add_argument("--out", metavar="DIR", help="parent folder of run folders (out_dir)")
    p.add_argument("--seed", type=int, help="run seed (seed)")
    p.add_argument("--devices", help="devices per node (trainer.devices), e.g. 2 or auto")
    p.add_argument("--num-nodes", type=int, help="machines (trainer.num_nodes)")
    p.add_argument("--strategy", help="auto, ddp, fsdp, ... (trainer.strategy)")
    p.add_argument("--accelerator", help="auto, cpu, gpu (trainer.accelerator)")
    p.add_argument("--precision", help="32 or bf16-mixed (trainer.precision)")
    p.add_argument("--max-epochs", type=int, help="epochs (trainer.max_epochs)")
    p.add_argument("--threads", type=int, help="torch threads (trainer.threads; default: the machine's cores)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="a module that registers your own hosts, tasks or datasets "
                   "(lm4vis.register_host, ...); repeatable; see docs/extending.md")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the LM block (trainer.compile): a faster step after a "
                        "one-off compile; may be switched on when resuming")
    p.add_argument("--fast", action="store_true", default=None,
                   help="this machine's fast path (trainer.fast): bf16 autocast with the LM layers in "
                        "bf16 where the hardware has native bf16, torch.compile where a C++ compiler "
                        "is found; what is missing falls back (fp32, eager) with one line that says so")


def quiet_lightning(verbose: bool) -> None:
    """Keep Lightning's start-up banner out of the output (and out of it twice: it logs
    through its own handler and through the root one). Call it after Lightning is imported:
    importing ``lightning.pytorch`` sets its logger to INFO."""
    import logging

    if not verbose:
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)


def collect_overrides(args: argparse.Namespace) -> list[str]:
    """The positional overrides followed by the flags (flags win)."""
    out = list(args.overrides)
    flags: dict[str, Any] = {
        "out_dir": args.out, "seed": args.seed, "trainer.devices": args.devices,
        "trainer.num_nodes": args.num_nodes, "trainer.strategy": args.strategy,
        "trainer.accelerator": args.accelerator, "trainer.precision": args.precision,
        "trainer.max_epochs": args.max_epochs, "trainer.compile": args.compile,
        "trainer.threads": args.threads, "trainer.fast": getattr(args, "fast", None),
    }
    out += [f"{k}={v}" for k, v in flags.items() if v is not None]
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..train.config import load_config, load_run_config
    from ..train.folders import CONFIG_FILE, is_secondary_process

    quiet_lightning(getattr(args, "verbose", False))
    overrides = collect_overrides(args)
    auto = args.run_name == "auto"
    if args.run_name and not auto:
        overrides.append(f"run_name={args.run_name}")
    if args.resume:
        cfg = None
        if args.config:
            cfg = load_config(args.config, overrides, plugins=args.plugin)
        elif overrides:
            # Overrides alone are checked against the run's own config.
            from ..registry import load_plugins

            load_plugins(args.plugin)
            config_file = Path(args.resume) / CONFIG_FILE
            if not config_file.is_file():
                raise FileNotFoundError(f"cannot resume {args.resume}: it holds no {CONFIG_FILE}")
            cfg = load_run_config(config_file).replace(overrides)
        # The config is resolved and checked before torch and Lightning are imported.
        from ..train.run import train

        quiet_lightning(getattr(args, "verbose", False))
        summary = train(cfg, resume=args.resume)
    else:
        if not args.config and not overrides:
            raise ValueError("give --config PRESET (see configs/) or overrides; --help has examples")
        cfg = load_config(args.config, overrides, plugins=args.plugin)
        from ..train.run import train

        quiet_lightning(getattr(args, "verbose", False))
        summary = train(cfg, auto_name=auto)
    if not is_secondary_process():  # DDP workers run this command too: report once
        print_summary(summary, as_json=args.json)
    return 0 if summary.get("status") == "completed" else 1


def print_summary(summary: dict[str, Any], as_json: bool = False) -> None:
    """One line per fact of a finished run."""
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    final = summary.get("final") or {}
    params = summary.get("params") or {}
    step = summary.get("time_per_step_s")
    print(f"run        {summary.get('run_dir')}")
    print(f"status     {summary.get('status')}")
    if summary.get("error"):
        print(f"error      {summary['error']}")
    if final:
        print("final      " + "  ".join(f"{k}={v:.4f}" for k, v in final.items()))
    if summary.get("best"):
        print("best       " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in summary["best"].items()))
    if params:
        print(f"params     trainable={params.get('trainable'):,}  frozen={params.get('frozen'):,}")
    if step:
        print(f"speed      {step * 1000:.1f} ms/step  {summary.get('samples_per_s', 0):.0f} samples/s  "
              f"({summary.get('threads')} threads)")
    for note in summary.get("data_notes") or []:
        print(f"data       {note}")
    skipped = _skipped_counts(summary.get("skipped") or {})
    if skipped:
        print(f"skipped    {skipped}  (details: summary.json, section skipped)")


def _skipped_counts(skipped: dict[str, Any]) -> str:
    """``train: nonfinite-coordinates=1; while reading train: unreadable-ply=2`` from a summary's
    ``skipped`` (each bad item once)."""
    parts = [f"{split}: " + ", ".join(f"{k}={v}" for k, v in log_["counts"].items())
             for split, log_ in (skipped.get("indexing") or {}).items() if log_.get("counts")]
    for split, counts in (skipped.get("pipeline") or {}).items():
        if isinstance(counts, dict):
            parts.append(f"while reading {split}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        else:  # a summary of before: {reason: count} over every epoch
            parts.append(f"while reading: {split}={counts}")
    return "; ".join(parts)
