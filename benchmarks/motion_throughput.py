"""Scenes per second of every variant of the motion demo's VectorNet, and the block's share.

Variants: ``baseline`` (no block), ``frozen-lm`` (the method), ``frozen-ffn``, ``mlp``,
``random-lm`` and ``finetune-lm``, each built by `lm4vis.hosts.build_model` from
``configs/motion-demo.yaml`` (host, block, data and batch size, ``base:`` chain followed). The
batches are real sim-traffic batches of that preset (the scenes are simulated here, not cached).

A training step is the forecasting task's forward + winner-takes-all loss + backward + AdamW on
the trainable parameters, as the engine runs it. The block's share is the time of the LM block
alone (its forward and backward on the very tokens the step hands it, with gradients for its
input and its trainable adapters) over the time of the whole step, both timed in the same
rounds. Every round times each candidate once, in a rotating order; figures are medians over
rounds. The machine's fp32 matmul rate is measured in the same rounds, so the figures can be
read against how fast this CPU was at the time. Writes ``benchmarks/results/motion_throughput.{json,md}``.
Example: ``python benchmarks/motion_throughput.py --rounds 15``.
"""

from __future__ import annotations

import os

# Passive OpenMP waiting on a shared machine: see benchmarks/throughput.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    GEMM_SIZE, block_backward, cycling, gemm_step, train_step,
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, paired_ratio, setup_threads,
    summarize_clocks, write_results,
)

PRESET = Path(__file__).resolve().parent.parent / "configs" / "motion-demo.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lm4vis.hosts import VARIANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(PRESET), help="a motion preset (host.kind: vectornet)")
    p.add_argument("--name", default="motion_throughput", help="results file stem under benchmarks/results")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--batches", type=int, default=3, help="distinct batches, cycled through the rounds")
    p.add_argument("--rounds", type=int, default=15, help="timed steps per candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per candidate first")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                   help="where the JSON and markdown go (e.g. a scratch folder for a smoke run)")
    return p.parse_args(argv)


def batches(cfg: Any, count: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """``count`` training batches of the preset's data, its task and its dataset info."""
    from lm4vis.tasks.base import build_task
    from lm4vis.train.datamodule import build_source

    cfg = cfg.replace({"data.cache": False, "data.num_train": count * cfg.data.batch_size})
    source = build_source(cfg)
    task = build_task(cfg, source.info)
    train = source.dataset("train", train=True)
    b = cfg.data.batch_size
    return [task.collate([train[i] for i in range(k * b, (k + 1) * b)]) for k in range(count)], task, source.info


def block_inputs(model: torch.nn.Module, task: Any, items: list[Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (tokens, key-padding mask) the LM slot receives for each batch."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = model.lm_slot.block.register_forward_pre_hook(
        lambda m, args: seen.append((args[0].detach().clone(), args[1])))
    with torch.no_grad():
        for batch in items:
            task.forward(model, batch, train=False)
    handle.remove()
    return seen


def block_step(block: torch.nn.Module, next_input: Callable[[], Any]) -> Callable[[], None]:
    """The block's forward and backward as inside a training step (input and adapter grads)."""
    def step() -> None:
        block_backward(block, *next_input())
    return step


def main(argv: list[str] | None = None) -> int:
    from lm4vis.hosts import build_model
    from lm4vis.train.config import load_config

    args = parse_args(argv)
    setup_threads(args.threads)
    cfg = load_config(args.config)
    if cfg.host.kind != "vectornet":
        raise SystemExit(f"{args.config} is not a motion preset (host.kind={cfg.host.kind})")
    items, task, info = batches(cfg, args.batches)
    scenes = cfg.data.batch_size
    polylines = [int((~b["polyline_mask"]).sum()) for b in items]
    padded = [tuple(b["vectors"].shape[1:3]) for b in items]

    models: dict[str, torch.nn.Module] = {}
    candidates: dict[str, Callable[[], None]] = {"gemm": gemm_step()}
    for variant in args.variants:
        model = build_model(cfg.host, dataclasses.replace(cfg.block, variant=variant), seed=0, info=info)
        models[variant] = model
        candidates[variant] = train_step(model, task, cycling(items))
        if model.lm_slot.filled:
            candidates[f"{variant} block"] = block_step(model.lm_slot.block, cycling(block_inputs(model, task, items)))
    times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)
    gemm = summarize_clocks(times["gemm"])
    gflops = 2 * GEMM_SIZE**3 / (gemm["wall"]["median_ms"] / 1e3) / 1e9

    results: dict[str, Any] = {"gemm": {**gemm, "gflop_per_s": gflops}}
    rows = []
    base = summarize_clocks(times["baseline"]) if "baseline" in times else None
    for variant, model in models.items():
        s = summarize_clocks(times[variant])
        r: dict[str, Any] = {
            "params": {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad)},
            "train": s, "scenes_per_s": scenes / (s["wall"]["median_ms"] / 1e3),
            "scenes_per_cpu_s": scenes / (s["cpu"]["median_ms"] / 1e3),
        }
        share = ""
        if f"{variant} block" in times:
            r["block"] = summarize_clocks(times[f"{variant} block"])
            r["block_share_wall"] = paired_ratio(times, f"{variant} block", variant, "wall")
            r["block_share_cpu"] = paired_ratio(times, f"{variant} block", variant, "cpu")
            share = f"{100 * r['block_share_cpu']:.0f}%"
        results[variant] = r
        vs_base = base["cpu"]["median_ms"] / s["cpu"]["median_ms"] if base else ""
        rows.append([variant, f"{r['params']['trainable'] / 1e6:.2f}M", f"{r['params']['frozen'] / 1e6:.2f}M",
                     r["scenes_per_s"], s["wall"]["median_ms"], s["cpu"]["median_ms"], vs_base, share])
    table = (
        f"Motion demo model ({args.config and os.path.relpath(args.config)}): VectorNet width "
        f"{cfg.host.embed_dim}, {cfg.host.subgraph_depth} sub-graph + {cfg.host.depth} global layer(s), "
        f"block {cfg.block.source} layers {cfg.block.layers}; batches of {scenes} sim-traffic scenes with "
        f"{min(polylines) / scenes:.1f}-{max(polylines) / scenes:.1f} polylines per scene, padded to "
        f"{', '.join(f'{p}x{v}' for p, v in padded)} (polylines x vectors); {args.threads} thread(s), median of "
        f"{args.rounds} interleaved rounds. Machine's fp32 matmul rate in the same rounds "
        f"({GEMM_SIZE}^3): {gflops:.0f} GFLOP/s.\n\n"
        + markdown_table(["variant", "trainable", "frozen", "train scenes/s (wall)", "wall ms/step",
                          "CPU ms/step", "speed vs baseline (CPU)", "block share of the step (CPU)"], rows)
        + "\n\nBlock share: the LM block's forward + backward alone on the step's own tokens, over "
        "the whole step, median of per-round ratios (the mlp control's block is its trainable MLP).\n\n"
        + CLOCK_NOTE
    )
    payload = {"config": {**{k: str(v) for k, v in vars(args).items()}, "preset": cfg.to_dict(),
                          "polylines_per_batch": polylines, "padded": padded},
               "results": results}
    write_results(args.name, payload, table, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
