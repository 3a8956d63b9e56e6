"""Questions per second of every variant of the VQA demo's fusion-vqa model, and the block's share.

Variants: ``baseline`` (no block), ``frozen-lm`` (the method), ``frozen-ffn``, ``mlp``,
``random-lm`` and ``finetune-lm`` at the preset's placement, and ``frozen-lm`` at every other
placement the host declares (``--placements``: visual, fusion, both), each built by
`lm4vis.hosts.build_model` from ``configs/vqa-demo.yaml`` (host, block, data and batch size). The
batches are real shapes-vqa batches of that preset.

A training step is the vqa task's forward + soft BCE + backward + AdamW on the trainable
parameters, as the engine runs it. The block's share is the time of the LM block(s) alone
(forward and backward on the very tokens the step hands each slot, with gradients for the input
and the trainable adapters) over the time of the whole step, both timed in the same rounds.
Every round times each candidate once, in a rotating order; figures are medians over rounds.
The machine's fp32 matmul rate is measured in the same rounds. Writes
``benchmarks/results/vqa_throughput.{json,md}``. Example: ``python benchmarks/vqa_throughput.py --rounds 15``.
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

PRESET = Path(__file__).resolve().parent.parent / "configs" / "vqa-demo.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lm4vis.hosts import VARIANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(PRESET), help="a VQA preset (host.kind: fusion-vqa)")
    p.add_argument("--name", default="vqa_throughput", help="results file stem under benchmarks/results")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--placements", nargs="*", default=["fusion", "both"],
                   help="further placements timed with frozen-lm (the preset's own is timed with every variant)")
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

    cfg = cfg.replace({"data.num_train": count * cfg.data.batch_size})
    source = build_source(cfg)
    task = build_task(cfg, source.info)
    train = source.dataset("train", train=True)
    b = cfg.data.batch_size
    return [task.collate([train[i] for i in range(k * b, (k + 1) * b)]) for k in range(count)], task, source.info


def block_inputs(model: torch.nn.Module, task: Any, items: list[Any]) -> list[list[tuple[torch.Tensor, torch.Tensor | None]]]:
    """Per batch, the (tokens, key-padding mask) each filled slot's block receives, slot by slot."""
    from lm4vis.hosts import find_attachments

    blocks = [att.block for att in find_attachments(model).values()]
    seen: list[list[tuple[torch.Tensor, torch.Tensor | None]]] = []
    handles = [b.register_forward_pre_hook(lambda m, args: seen[-1].append(
        (args[0].detach().clone(), args[1] if len(args) > 1 else None))) for b in blocks]
    with torch.no_grad():
        for batch in items:
            seen.append([])
            task.forward(model, batch, train=False)
    for h in handles:
        h.remove()
    return seen


def block_step(blocks: list[torch.nn.Module], next_input: Callable[[], Any]) -> Callable[[], None]:
    """Every block's forward and backward as inside a training step (input and adapter grads)."""
    def step() -> None:
        for block, (tokens, mask) in zip(blocks, next_input()):
            block_backward(block, tokens, mask)
    return step


def main(argv: list[str] | None = None) -> int:
    from lm4vis.hosts import build_model, find_attachments
    from lm4vis.train.config import load_config

    args = parse_args(argv)
    setup_threads(args.threads)
    cfg = load_config(args.config)
    if cfg.host.kind != "fusion-vqa":
        raise SystemExit(f"{args.config} is not a VQA preset (host.kind={cfg.host.kind})")
    items, task, info = batches(cfg, args.batches)
    questions = cfg.data.batch_size
    lengths = [int(b["input_ids"].shape[1]) for b in items]
    where = str(cfg.block.where)
    cells = [(v, where) for v in args.variants] + [("frozen-lm", w) for w in args.placements if w != where]

    models: dict[str, torch.nn.Module] = {}
    candidates: dict[str, Callable[[], None]] = {"gemm": gemm_step()}
    for variant, place in cells:
        name = variant if place == where else f"{variant} @{place}"
        model = build_model(cfg.host, dataclasses.replace(cfg.block, variant=variant, where=place), seed=0, info=info)
        models[name] = model
        candidates[name] = train_step(model, task, cycling(items))
        blocks = [att.block for att in find_attachments(model).values()]
        if blocks:
            candidates[f"{name} block"] = block_step(blocks, cycling(block_inputs(model, task, items)))
    times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)
    gemm = summarize_clocks(times["gemm"])
    gflops = 2 * GEMM_SIZE**3 / (gemm["wall"]["median_ms"] / 1e3) / 1e9

    results: dict[str, Any] = {"gemm": {**gemm, "gflop_per_s": gflops}}
    rows = []
    base = summarize_clocks(times["baseline"]) if "baseline" in times else None
    for name, model in models.items():
        s = summarize_clocks(times[name])
        r: dict[str, Any] = {
            "params": {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad)},
            "train": s, "questions_per_s": questions / (s["wall"]["median_ms"] / 1e3),
            "questions_per_cpu_s": questions / (s["cpu"]["median_ms"] / 1e3),
        }
        share = ""
        if f"{name} block" in times:
            r["block"] = summarize_clocks(times[f"{name} block"])
            r["block_share_wall"] = paired_ratio(times, f"{name} block", name, "wall")
            r["block_share_cpu"] = paired_ratio(times, f"{name} block", name, "cpu")
            share = f"{100 * r['block_share_cpu']:.0f}%"
        results[name] = r
        vs_base = base["cpu"]["median_ms"] / s["cpu"]["median_ms"] if base else ""
        rows.append([name, f"{r['params']['trainable'] / 1e6:.2f}M", f"{r['params']['frozen'] / 1e6:.2f}M",
                     r["questions_per_s"], s["wall"]["median_ms"], s["cpu"]["median_ms"], vs_base, share])
    h = cfg.host
    grid = (h.image.img_size // h.image.patch_size) ** 2
    table = (
        f"VQA demo model ({args.config and os.path.relpath(args.config)}): {h.image.name} at {h.image.img_size} px, "
        f"patch {h.image.patch_size} ({grid} patches + CLS), {h.depth} co-attention layer(s) of {h.embed_dim}; "
        f"block {cfg.block.source} layers {cfg.block.layers}; batches of {questions} shapes-vqa questions padded to "
        f"{', '.join(map(str, lengths))} tokens; {args.threads} thread(s), median of {args.rounds} interleaved "
        f"rounds. Machine's fp32 matmul rate in the same rounds ({GEMM_SIZE}^3): {gflops:.0f} GFLOP/s.\n\n"
        + markdown_table(["variant", "trainable", "frozen", "train questions/s (wall)", "wall ms/step",
                          "CPU ms/step", "speed vs baseline (CPU)", "block share of the step (CPU)"], rows)
        + "\n\nBlock share: the LM block(s)' forward + backward alone on the step's own tokens, over "
        "the whole step, median of per-round ratios (the mlp control's block is its trainable MLP; "
        "`@both` times its two blocks together).\n\n"
        + CLOCK_NOTE
    )
    payload = {"config": {**{k: str(v) for k, v in vars(args).items()}, "preset": cfg.to_dict(),
                          "question_tokens": lengths},
               "results": results}
    write_results(args.name, payload, table, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
