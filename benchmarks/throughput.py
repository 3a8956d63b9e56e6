"""Images per second of every variant of the demo model: training step and inference.

Variants: ``baseline`` (no block), ``frozen-lm`` (the method), ``mlp``, ``random-lm`` and
``finetune-lm`` (the controls), each built by `lm4vis.hosts.build_model`. The host and block
settings come from ``configs/demo.yaml`` (its ``host:``, ``block:`` and ``data.batch_size``,
following its ``base:`` chain) when that file exists, otherwise from the `HostConfig` and
`BlockConfig` defaults: a ViT-Tiny at 32 px, patch 4, one input channel, 10 classes, with
SmolLM2-135M's last layer after the last block.

A training step is forward + cross-entropy + backward + AdamW on the trainable parameters;
inference is a forward under ``torch.inference_mode``. Every round times each variant once, in
a rotating order; the figures are medians over rounds. Writes
``benchmarks/results/throughput.{json,md}``.
Example: ``python benchmarks/throughput.py --precision fp32 bf16``.
"""

from __future__ import annotations

import os

# Must be set before torch loads OpenMP. On a shared 2-core machine, OpenMP's default busy-wait
# turns every parallel region into a fight with the other tenants' processes (steps measured
# 5-15x slower and erratic); passive waiting keeps the measurement about this code. Set
# OMP_WAIT_POLICY=ACTIVE in the environment to measure the default on a quiet machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, setup_threads, summarize_clocks,
    write_results,
)

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lm4vis.hosts import VARIANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEMO_CONFIG),
                   help="YAML preset with host: and block: sections (used if the file exists), "
                        "or 'defaults' for the HostConfig/BlockConfig defaults")
    p.add_argument("--name", default="throughput", help="results file stem under benchmarks/results")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"],
                   help="fp32, or bf16: LM weights in bf16 and bf16 autocast around the model")
    p.add_argument("--batch", type=int, default=None,
                   help="images per step (default: the config's data.batch_size, else 64)")
    p.add_argument("--rounds", type=int, default=15, help="timed steps per variant (interleaved)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                   help="where the JSON and markdown go (e.g. a scratch folder for a smoke run)")
    return p.parse_args(argv)


def demo_configs(path: Path | str) -> tuple[Any, Any, int | None, str]:
    """HostConfig, BlockConfig and batch size from the preset (read by lm4vis's own config
    loader, ``base:`` chain included), or the defaults when the file does not exist; and where
    they came from."""
    from lm4vis.hosts import BlockConfig, TimmViTConfig
    from lm4vis.train.config import load_config

    path = Path(path)
    if str(path) == "defaults" or not path.is_file():
        return TimmViTConfig(), BlockConfig(), None, "HostConfig()/BlockConfig() defaults"
    cfg = load_config(path)
    return cfg.host, cfg.block, cfg.data.batch_size, os.path.relpath(path)


def build(host: Any, block: Any, variant: str, precision: str) -> torch.nn.Module:
    from lm4vis.hosts import build_model

    dtype = "bf16" if precision == "bf16" else block.dtype
    return build_model(host, dataclasses.replace(block, variant=variant, dtype=dtype), seed=0)


def autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
               precision: str) -> Callable[[], None]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast(precision):
            logits = model(images)
        F.cross_entropy(logits.float(), labels).backward()
        opt.step()
    return step


def infer_step(model: torch.nn.Module, images: torch.Tensor, precision: str) -> Callable[[], None]:
    def step() -> None:
        model.eval()
        with torch.inference_mode(), autocast(precision):
            model(images)
    return step


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_threads(args.threads)
    host, block, config_batch, config_from = demo_configs(args.config)
    args.batch = args.batch or config_batch or 64
    g = torch.Generator().manual_seed(0)
    img = host.img_size or 224
    images = torch.randn(args.batch, host.in_chans, img, img, generator=g)
    labels = torch.randint(0, host.num_classes, (args.batch,), generator=g)

    models: dict[str, torch.nn.Module] = {}
    params: dict[str, dict[str, int]] = {}
    for precision in args.precision:
        for variant in args.variants:
            name = f"{variant} {precision}"
            models[name] = build(host, block, variant, precision)
            params[name] = {
                "trainable": sum(p.numel() for p in models[name].parameters() if p.requires_grad),
                "frozen": sum(p.numel() for p in models[name].parameters() if not p.requires_grad),
            }

    results: dict[str, Any] = {}
    for mode in ("train", "inference"):
        for precision in args.precision:
            names = [f"{v} {precision}" for v in args.variants]
            steps = {n: (train_step(models[n], images, labels, precision) if mode == "train"
                         else infer_step(models[n], images, precision)) for n in names}
            times = interleaved_times(steps, rounds=args.rounds, warmup=args.warmup)
            for n, t in times.items():
                s = summarize_clocks(t)
                results.setdefault(n, {"params": params[n]})[mode] = {
                    **s, "images_per_s": args.batch / (s["wall"]["median_ms"] / 1e3),
                    "images_per_cpu_s": args.batch / (s["cpu"]["median_ms"] / 1e3), "times_s": t}

    rows = []
    for n, r in results.items():
        variant, precision = n.rsplit(" ", 1)
        base = results.get(f"baseline {precision}")

        def rel(mode: str, key: str, r=r, base=base) -> Any:
            return r[mode][key] / base[mode][key] if base else ""
        rows.append([
            variant, precision, f"{r['params']['trainable'] / 1e6:.2f}M",
            f"{r['params']['frozen'] / 1e6:.2f}M",
            r["train"]["images_per_s"], r["train"]["cpu"]["median_ms"],
            rel("train", "images_per_cpu_s"),
            r["inference"]["images_per_s"], r["inference"]["cpu"]["median_ms"],
            rel("inference", "images_per_cpu_s"),
        ])
    table = (
        f"Throughput, {host.name}{' ' + str(host.kwargs) if host.kwargs else ''} at {img} px / "
        f"patch {host.patch_size} / "
        f"{host.in_chans} channel(s), "
        f"block {block.source} layers {block.layers} at {block.where}, batch {args.batch}, "
        f"median of {args.rounds} interleaved steps (config: {config_from})\n\n"
        + markdown_table(["variant", "precision", "trainable", "frozen", "train img/s (wall)",
                          "train CPU ms/step", "train speed vs baseline (CPU)",
                          "inference img/s (wall)", "inference CPU ms/step",
                          "inference speed vs baseline (CPU)"], rows)
        + "\n\nbf16 = LM weights held in bf16 and bf16 autocast around the whole model; the "
        "host and mappers stay fp32 parameters. Speed vs baseline = baseline CPU time / "
        f"variant CPU time at the same precision.\n\n{CLOCK_NOTE}"
    )
    payload = {"config": {**{k: str(v) for k, v in vars(args).items()},
                          "host": dataclasses.asdict(host), "block": dataclasses.asdict(block),
                          "config_from": config_from},
               "results": results}
    write_results(args.name, payload, table, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
