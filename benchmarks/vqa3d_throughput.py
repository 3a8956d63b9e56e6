"""Samples per second of every variant of the 3D VQA demo's scene-VQA model, and where a
training step's time goes: grouping, the LM block, the rest.

Variants: ``baseline`` (no block), ``frozen-lm`` (the method), ``mlp`` (the parameter-matched
trainable control) and, with ``--variants``, any other, each built by `lm4vis.hosts.build_model`
from ``configs/vqa3d-demo.yaml`` (``base:`` chain followed), with the block where the preset puts
it (``block.where``; ``--where fusion_lm_slot`` for the other placement). The batches are real
rooms3d-qa batches of that preset.

A training step is the scene-qa task's forward + cross-entropy + backward + AdamW on the
trainable parameters, as the engine runs it. Its parts, timed in the same rounds on the same
inputs: *grouping* is the host's FPS + kNN + gather (`PointGrouper`, no gradient: indices carry
none) on the step's points; *block* is the LM block alone, forward and backward on the very
tokens the step hands its slot (input and adapter gradients). Shares are medians of per-round
ratios to the whole step; *rest* is what is left (tokenizer, text encoder, fusion, optimiser).
Every round times each candidate once, in a rotating order; figures are medians over rounds,
and the machine's fp32 matmul rate is measured in the same rounds. Writes
``benchmarks/results/vqa3d_throughput.{json,md}``. Example:
``python benchmarks/vqa3d_throughput.py --rounds 10``.
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
    GEMM_SIZE, cycling, gemm_step, train_step,
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, paired_ratio, setup_threads,
    summarize_clocks, write_results,
)
from motion_throughput import block_step  # noqa: E402

PRESET = Path(__file__).resolve().parent.parent / "configs" / "vqa3d-demo.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lm4vis.hosts import VARIANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(PRESET), help="a 3D VQA preset (host.kind: scene-vqa)")
    p.add_argument("--name", default="vqa3d_throughput", help="results file stem under benchmarks/results")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["baseline", "frozen-lm", "mlp"])
    p.add_argument("--where", default=None, help="block.where (scene_lm_slot or fusion_lm_slot); default: the preset's")
    p.add_argument("--batches", type=int, default=3, help="distinct batches, cycled through the rounds")
    p.add_argument("--rounds", type=int, default=10, help="timed steps per candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per candidate first")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                   help="where the JSON and markdown go (e.g. a scratch folder for a smoke run)")
    return p.parse_args(argv)


def batches(cfg: Any, count: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """``count`` training batches of the preset's data, its task and its dataset info."""
    from lm4vis.tasks.base import build_task
    from lm4vis.train.datamodule import build_source

    b = cfg.data.batch_size
    cfg = cfg.replace({"data.num_train": max(count * b, 50), "data.num_val": 50})
    source = build_source(cfg)
    task = build_task(cfg, source.info)
    train = source.dataset("train", train=True)
    return [task.collate([train[i] for i in range(k * b, (k + 1) * b)]) for k in range(count)], task, source.info


def slot_inputs(model: torch.nn.Module, slot: str, task: Any, items: list[Any]) -> list[tuple[torch.Tensor, Any]]:
    """The (tokens, key-padding mask) the filled slot receives for each batch."""
    seen: list[tuple[torch.Tensor, Any]] = []
    block = model.get_submodule(slot).block
    handle = block.register_forward_pre_hook(lambda m, args: seen.append((args[0].detach().clone(), args[1])))
    with torch.no_grad():
        for batch in items:
            task.forward(model, batch, train=False)
    handle.remove()
    return seen


def grouping_step(model: torch.nn.Module, items: list[Any]) -> Callable[[], None]:
    grouper, take = model.scene_encoder.grouper, cycling([b["points"] for b in items])

    def step() -> None:
        with torch.no_grad():
            grouper(take())
    return step


def main(argv: list[str] | None = None) -> int:
    from lm4vis.hosts import build_model
    from lm4vis.train.config import load_config

    args = parse_args(argv)
    setup_threads(args.threads)
    cfg = load_config(args.config, [f"block.where={args.where}"] if args.where else [])
    if cfg.host.kind != "scene-vqa":
        raise SystemExit(f"{args.config} is not a 3D VQA preset (host.kind={cfg.host.kind})")
    items, task, info = batches(cfg, args.batches)
    size = cfg.data.batch_size

    models: dict[str, torch.nn.Module] = {}
    candidates: dict[str, Callable[[], None]] = {"gemm": gemm_step()}
    for variant in args.variants:
        model = build_model(cfg.host, dataclasses.replace(cfg.block, variant=variant), seed=0, info=info)
        models[variant] = model
        candidates[variant] = train_step(model, task, cycling(items))
        candidates[f"{variant} grouping"] = grouping_step(model, items)
        slot = model.get_submodule(cfg.block.where)
        if slot.filled:
            candidates[f"{variant} block"] = block_step(slot.block, cycling(slot_inputs(model, cfg.block.where, task, items)))
    times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)
    gemm = summarize_clocks(times["gemm"])
    gflops = 2 * GEMM_SIZE**3 / (gemm["wall"]["median_ms"] / 1e3) / 1e9

    results: dict[str, Any] = {"gemm": {**gemm, "gflop_per_s": gflops}}
    rows = []
    base = summarize_clocks(times["baseline"]) if "baseline" in times else None
    for variant, model in models.items():
        s = summarize_clocks(times[variant])
        grouping = paired_ratio(times, f"{variant} grouping", variant, "cpu")
        block = paired_ratio(times, f"{variant} block", variant, "cpu") if f"{variant} block" in times else 0.0
        r: dict[str, Any] = {
            "params": {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad)},
            "train": s, "samples_per_s": size / (s["wall"]["median_ms"] / 1e3),
            "samples_per_cpu_s": size / (s["cpu"]["median_ms"] / 1e3),
            "grouping": summarize_clocks(times[f"{variant} grouping"]), "grouping_share_cpu": grouping,
            "block_share_cpu": block, "rest_share_cpu": 1.0 - grouping - block,
        }
        if f"{variant} block" in times:
            r["block"] = summarize_clocks(times[f"{variant} block"])
        results[variant] = r
        vs_base = base["cpu"]["median_ms"] / s["cpu"]["median_ms"] if base else ""
        rows.append([variant, f"{r['params']['trainable'] / 1e6:.2f}M", f"{r['params']['frozen'] / 1e6:.2f}M",
                     r["samples_per_s"], r["samples_per_cpu_s"], s["wall"]["median_ms"], s["cpu"]["median_ms"],
                     vs_base, f"{100 * grouping:.0f}%", f"{100 * block:.0f}%", f"{100 * (1 - grouping - block):.0f}%"])
    h = cfg.host
    table = (
        f"3D VQA demo model ({os.path.relpath(args.config)}): scene-vqa, {h.num_groups} groups of {h.group_size} "
        f"over {cfg.data.num_points} points, scene {h.scene_depth} x {h.scene_dim}, text {h.text_depth} x "
        f"{h.text_dim}, co-attention {h.fusion_depth} x {h.fusion_dim}; block {cfg.block.source} layers "
        f"{cfg.block.layers} at {cfg.block.where}; batches of {size} rooms3d-qa samples; {args.threads} thread(s), "
        f"median of {args.rounds} interleaved rounds. Machine's fp32 matmul rate in the same rounds "
        f"({GEMM_SIZE}^3): {gflops:.0f} GFLOP/s.\n\n"
        + markdown_table(["variant", "trainable", "frozen", "train samples/s (wall)", "train samples/CPU-s",
                          "wall ms/step", "CPU ms/step", "speed vs baseline (CPU)", "grouping share (CPU)",
                          "block share (CPU)", "rest (CPU)"], rows)
        + "\n\nShares: the part alone on the step's own inputs over the whole step, median of per-round "
        "ratios (the mlp control's block is its trainable MLP); rest = 1 - grouping - block.\n\n"
        + CLOCK_NOTE
    )
    payload = {"config": {**{k: str(v) for k, v in vars(args).items()}, "preset": cfg.to_dict()},
               "results": results}
    write_results(args.name, payload, table, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
