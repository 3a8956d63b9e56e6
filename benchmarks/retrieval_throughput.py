"""Image-caption pairs per second of every variant of the retrieval demo's dual encoder, and
the share of the step spent in the frozen block(s).

Candidates: every variant (``baseline``, ``frozen-lm``, ``frozen-ffn``, ``mlp``, ``random-lm``,
``finetune-lm``) with the block in the image tower (``image_lm_slot``, the paper's placement),
and ``frozen-lm`` with a block in each tower (``image_lm_slot,text_lm_slot``), each built by
`lm4vis.hosts.build_model` from ``configs/retrieval-demo.yaml`` (``base:`` chain followed). The
batches are real shapes-captions training batches of that preset.

A training step is the retrieval task's forward (both towers) + symmetric InfoNCE + backward +
AdamW on the trainable parameters, as the engine runs it. The block share is the time of the
LM block(s) alone (forward and backward on the very tokens the step hands them, with gradients
for the input and the trainable adapters) over the time of the whole step, both timed in the
same rounds. Every round times each candidate once, in a rotating order; figures are medians
over rounds. The machine's fp32 matmul rate, and the rate of a matmul of the block's own shape
(the image tokens of a batch through SmolLM2's MLP up-projection), are measured in the same
rounds. Writes ``benchmarks/results/retrieval_throughput.{json,md}``.
Example: ``python benchmarks/retrieval_throughput.py --rounds 10``.
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

PRESET = Path(__file__).resolve().parent.parent / "configs" / "retrieval-demo.yaml"
IMAGE_ONLY, BOTH = "image_lm_slot", "image_lm_slot,text_lm_slot"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lm4vis.hosts import VARIANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(PRESET), help="a retrieval preset (host.kind: dual-encoder)")
    p.add_argument("--name", default="retrieval_throughput", help="results file stem under benchmarks/results")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--no-both-towers", dest="both", action="store_false",
                   help="leave out frozen-lm with a block in each tower")
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
    cfg = cfg.replace({"data.num_train": max(1, count * b // cfg.data.captions_per_image + 1),
                       "data.num_val": 1})
    source = build_source(cfg)
    task = build_task(cfg, source.info)
    train = source.dataset("train", train=True)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train), generator=g).tolist()
    return [task.collate([train[i] for i in order[k * b:(k + 1) * b]]) for k in range(count)], task, source.info


def block_inputs(model: torch.nn.Module, task: Any, items: list[Any]) -> list[list[tuple[torch.nn.Module, Any]]]:
    """Per batch, every attached block with the (tokens, key-padding mask) it receives."""
    from lm4vis.hosts import find_attachments

    blocks = [att.block for att in find_attachments(model).values()]
    seen: list[list[tuple[torch.nn.Module, Any]]] = []
    handles = [b.register_forward_pre_hook(lambda m, args: seen[-1].append((m, (args[0].detach().clone(), args[1]))))
               for b in blocks]
    with torch.no_grad():
        for batch in items:
            seen.append([])
            task.forward(model, batch, train=False)
    for h in handles:
        h.remove()
    return seen


def block_step(next_inputs: Callable[[], Any]) -> Callable[[], None]:
    """Every block's forward and backward as inside a training step (input and adapter grads)."""
    def step() -> None:
        for block, (tokens, mask) in next_inputs():
            block_backward(block, tokens, mask)
    return step


def main(argv: list[str] | None = None) -> int:
    from lm4vis.hosts import build_model
    from lm4vis.train.config import load_config

    args = parse_args(argv)
    setup_threads(args.threads)
    cfg = load_config(args.config)
    if cfg.host.kind != "dual-encoder":
        raise SystemExit(f"{args.config} is not a retrieval preset (host.kind={cfg.host.kind})")
    items, task, info = batches(cfg, args.batches)
    pairs = cfg.data.batch_size
    cells = [(v, IMAGE_ONLY) for v in args.variants]
    if args.both and "frozen-lm" in args.variants:
        cells.append(("frozen-lm", BOTH))

    models: dict[str, tuple[torch.nn.Module, str, str]] = {}
    candidates: dict[str, Callable[[], None]] = {}
    lm_shape = None
    for variant, where in cells:
        label = variant if where == IMAGE_ONLY else f"{variant} (both towers)"
        model = build_model(cfg.host, dataclasses.replace(cfg.block, variant=variant, where=where), seed=0, info=info)
        models[label] = (model, variant, where)
        candidates[label] = train_step(model, task, cycling(items))
        if model.image_lm_slot.filled:
            inputs = block_inputs(model, task, items)
            candidates[f"{label} block"] = block_step(cycling(inputs))
            if lm_shape is None and variant == "frozen-lm":
                tokens = inputs[0][0][1][0]
                lm = model.image_lm_slot.block
                lm_shape = (tokens.shape[0] * tokens.shape[1], lm.lm_dim, lm.lm.config.ffn_dim)
    candidates["gemm"] = gemm_step()
    if lm_shape is not None:
        candidates["gemm block shape"] = gemm_step(*lm_shape)
    times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)

    def rate(key: str, m: int, k: int, n: int) -> float:
        return 2 * m * k * n / (summarize_clocks(times[key])["wall"]["median_ms"] / 1e3) / 1e9

    gflops = rate("gemm", GEMM_SIZE, GEMM_SIZE, GEMM_SIZE)
    results: dict[str, Any] = {"gemm": {**summarize_clocks(times["gemm"]), "gflop_per_s": gflops}}
    block_gflops = None
    if lm_shape is not None:
        block_gflops = rate("gemm block shape", *lm_shape)
        results["gemm_block_shape"] = {**summarize_clocks(times["gemm block shape"]), "shape": lm_shape,
                                       "gflop_per_s": block_gflops}
    base = summarize_clocks(times["baseline"]) if "baseline" in times else None
    rows = []
    for label, (model, variant, where) in models.items():
        s = summarize_clocks(times[label])
        r: dict[str, Any] = {
            "variant": variant, "where": where,
            "params": {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       "frozen": sum(p.numel() for p in model.parameters() if not p.requires_grad)},
            "train": s, "pairs_per_s": pairs / (s["wall"]["median_ms"] / 1e3),
            "pairs_per_cpu_s": pairs / (s["cpu"]["median_ms"] / 1e3),
        }
        share = ""
        if f"{label} block" in times:
            r["block"] = summarize_clocks(times[f"{label} block"])
            r["block_share_wall"] = paired_ratio(times, f"{label} block", label, "wall")
            r["block_share_cpu"] = paired_ratio(times, f"{label} block", label, "cpu")
            share = f"{100 * r['block_share_cpu']:.0f}%"
        results[label] = r
        vs_base = base["cpu"]["median_ms"] / s["cpu"]["median_ms"] if base else ""
        rows.append([label, where if variant != "baseline" else "", f"{r['params']['trainable'] / 1e6:.2f}M",
                     f"{r['params']['frozen'] / 1e6:.2f}M", r["pairs_per_s"], s["wall"]["median_ms"],
                     s["cpu"]["median_ms"], vs_base, share])
    h = cfg.host
    image_tokens = (h.image.img_size // h.image.patch_size) ** 2 + 1
    text_len = [int(b["input_ids"].shape[1]) for b in items]
    shape_note = (f" The block's own matmul shape (the batch's image tokens through the LM's MLP "
                  f"up-projection, {lm_shape[0]} x {lm_shape[1]} @ {lm_shape[1]} x {lm_shape[2]}): "
                  f"{block_gflops:.0f} GFLOP/s." if lm_shape is not None else "")
    table = (
        f"Retrieval demo model ({os.path.relpath(args.config)}): image tower {h.image.name} at "
        f"{h.image.img_size} px, patch {h.image.patch_size} ({image_tokens} tokens), {h.image.kwargs}; text "
        f"tower BERT {h.text.depth} x {h.text.embed_dim}; joint space {h.embed_dim}; block {cfg.block.source} "
        f"layers {cfg.block.layers}; batches of {pairs} shapes-captions pairs, captions padded to "
        f"{min(text_len)}-{max(text_len)} tokens; {args.threads} thread(s), median of {args.rounds} interleaved "
        f"rounds. Machine's fp32 matmul rate in the same rounds ({GEMM_SIZE}^3): {gflops:.0f} GFLOP/s."
        f"{shape_note}\n\n"
        + markdown_table(["variant", "block in", "trainable", "frozen", "train pairs/s (wall)", "wall ms/step",
                          "CPU ms/step", "speed vs baseline (CPU)", "block share of the step (CPU)"], rows)
        + "\n\nBlock share: the LM block(s)' forward + backward alone on the step's own tokens, over the "
        "whole step, median of per-round ratios (the mlp control's block is its trainable MLP).\n\n"
        + CLOCK_NOTE
    )
    payload = {"config": {**{k: str(v) for k, v in vars(args).items()}, "preset": cfg.to_dict(),
                          "text_lengths": text_len, "image_tokens": image_tokens},
               "results": results}
    write_results(args.name, payload, table, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
