"""Clips per second of every variant of the video demo's VideoMAE, and where a training step goes.

The host, block, data and batch size come from ``configs/video-demo.yaml`` (``--config`` for
another motion-mnist preset): a small VideoMAE (transformers' own) on motion-mnist clips, with
SmolLM2-135M's last layer after the last encoder layer. A training step is what the engine
runs with ``data.num_workers: 0`` (the demo's setting): make the batch (read 32 clips and
collate them), forward, cross-entropy, backward and AdamW on the trainable parameters.

The step is split with timed hooks that only read the clocks: ``data`` (making the batch),
``block`` (the LM block's forward, and its backward through ``register_full_backward_pre_hook``
/ ``register_full_backward_hook``: the frozen layer with its adapters, or the MLP of the ``mlp``
control) and ``rest`` (the VideoMAE encoder, pooling, head, loss and AdamW). Both clocks are
kept: wall and this process's CPU time; on the shared machine trust CPU. ``data`` is measured
both ways the demo can read clips: from the cache (``data.cache: true``, the demo's) and drawn
afresh (``cache: false``, what the first epoch of a new cache costs); the step's share is given
for the cached read, the drawn cost beside it. Every round times each candidate once, in a
rotating order; figures are medians over rounds. The machine's fp32 GEMM rate at the block's
up-projection and at 1024^3 is measured in the same rounds. Writes
``benchmarks/results/video_throughput.{json,md}``.
Example: ``python benchmarks/video_throughput.py --threads 2 --rounds 11``.
"""

from __future__ import annotations

import os

# As in throughput.py: passive OpenMP waiting, so a shared machine's other tenants do not turn
# every parallel region into a fight for the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, setup_threads, summarize_clocks,
    write_results,
)

PARTS = ("data", "block")
VARIANTS = ("baseline", "frozen-lm", "frozen-ffn", "mlp")
GEMM_SIZE = 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="video-demo", help="a motion-mnist preset (default: video-demo)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2: the demo's)")
    p.add_argument("--rounds", type=int, default=11, help="timed steps per variant (interleaved)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    p.add_argument("--name", default="video_throughput", help="results file stem under benchmarks/results")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p.parse_args(argv)


class PartClock:
    """Wall and CPU seconds spent in each part of one step (hooks read the clocks only)."""

    def __init__(self, block: torch.nn.Module | None) -> None:
        self.spent = {(p, c): 0.0 for p in PARTS for c in ("wall", "cpu")}
        self._start: dict[str, tuple[float, float]] = {}
        self.handles = []
        if block is not None:
            self.handles += [
                block.register_forward_pre_hook(lambda m, a: self.begin("block")),
                block.register_forward_hook(lambda m, a, o: self.end("block")),
                block.register_full_backward_pre_hook(lambda m, g: self.begin("block")),
                block.register_full_backward_hook(lambda m, gi, go: self.end("block")),
            ]

    def begin(self, part: str) -> None:
        self._start[part] = (time.perf_counter(), time.process_time())

    def end(self, part: str) -> None:
        wall, cpu = self._start.pop(part)
        self.spent[part, "wall"] += time.perf_counter() - wall
        self.spent[part, "cpu"] += time.process_time() - cpu

    def reset(self) -> None:
        self.spent = dict.fromkeys(self.spent, 0.0)


def gemm_rate(m: int, k: int, n: int, rounds: int) -> float:
    """GFLOP/s of an fp32 ``(m, k) @ (k, n)`` here."""
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    times = interleaved_times({"gemm": lambda: x @ w}, rounds=rounds, warmup=2, inner=3)
    return 2 * m * k * n / (summarize_clocks(times["gemm"])["wall"]["median_ms"] * 1e-3) / 1e9


def batch_maker(dataset: Any, collate: Callable[[list[Any]], Any], batch_size: int) -> Callable[[], Any]:
    """Each call reads the next ``batch_size`` clips of ``dataset`` and collates them."""
    state = {"at": 0}

    def make() -> Any:
        start = state["at"]
        state["at"] = (start + batch_size) % (len(dataset) - batch_size)
        return collate([dataset[i] for i in range(start, start + batch_size)])
    return make


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_threads(args.threads)
    from lm4vis.block import FrozenLMBlock
    from lm4vis.checkpoint import read_lm_config
    from lm4vis.hosts import build_model
    from lm4vis.tasks.base import build_task
    from lm4vis.train.config import load_config
    from lm4vis.train.datamodule import build_source

    cfg = load_config(args.config)
    if cfg.data.name != "motion-mnist":
        raise SystemExit(f"{args.config} is not a motion-mnist preset (data.name={cfg.data.name})")
    source = build_source(cfg)
    task = build_task(cfg, source.info)
    cached = source.dataset("train", True)
    drawn = build_source(cfg.replace({"data.cache": False})).dataset("train", True)
    b = cfg.data.batch_size
    cached[0]  # renders the cache (once per machine) before anything is timed
    make_cached, make_drawn = batch_maker(cached, task.collate, b), batch_maker(drawn, task.collate, b)

    models, clocks, steps = {}, {}, {}
    for variant in args.variants:
        model = build_model(cfg.host, dataclasses.replace(cfg.block, variant=variant), seed=0,
                            info=source.info).train()
        blocks = [m for m in model.modules() if isinstance(m, FrozenLMBlock)]
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr)
        clock = PartClock(blocks[0] if blocks else None)

        def step(model=model, opt=opt, clock=clock) -> None:
            clock.reset()
            clock.begin("data")
            batch = make_cached()
            clock.end("data")
            loss = task.loss(model(batch[task.inputs_key]), batch["label"], True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        models[variant], clocks[variant], steps[variant] = model, clock, step

    parts: dict[str, dict[tuple[str, str], list[float]]] = {v: {k: [] for k in clocks[v].spent} for v in steps}

    def recorded(variant: str) -> Callable[[], None]:
        def run() -> None:
            steps[variant]()
            for k, s in clocks[variant].spent.items():
                parts[variant][k].append(s)
        return run

    lm = read_lm_config(cfg.block.source)
    t, h, w = cfg.host.grid
    tokens = b * t * h * w
    gen = torch.Generator().manual_seed(0)
    square = [torch.randn(GEMM_SIZE, GEMM_SIZE, generator=gen) for _ in range(2)]
    candidates = {v: recorded(v) for v in steps}
    candidates["drawn batch"] = make_drawn
    candidates["gemm 1024"] = lambda: square[0] @ square[1]
    times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)
    for v in parts:  # drop the warm-up calls' parts
        for k in parts[v]:
            parts[v][k] = parts[v][k][args.warmup:]
    gflops_square = 2 * GEMM_SIZE**3 / (summarize_clocks(times["gemm 1024"])["wall"]["median_ms"] * 1e-3) / 1e9
    gflops_block = gemm_rate(tokens, lm.lm_dim, lm.ffn_dim, args.rounds)
    drawn_stats = summarize_clocks(times["drawn batch"])

    rows, results = [], {}
    for v in steps:
        stats = summarize_clocks(times[v])
        share = {}
        for clock in ("wall", "cpu"):
            total = times[v][clock]
            share[clock] = {p: statistics.median(s / x for s, x in zip(parts[v][p, clock], total)) for p in PARTS}
            share[clock]["rest"] = 1.0 - share[clock]["data"] - share[clock]["block"]
        trainable = sum(p.numel() for p in models[v].parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in models[v].parameters() if not p.requires_grad)
        has_block = any(isinstance(m, FrozenLMBlock) for m in models[v].modules())
        results[v] = {"step": stats, "share": share, "trainable": trainable, "frozen": frozen,
                      "clips_per_s": b / (stats["wall"]["median_ms"] * 1e-3),
                      "clips_per_cpu_s": b / (stats["cpu"]["median_ms"] * 1e-3),
                      "parts_s": {f"{p}/{c}": s for (p, c), s in parts[v].items()}}
        c = share["cpu"]
        rows.append([v, f"{trainable:,}", f"{frozen:,}", stats["wall"]["median_ms"], stats["cpu"]["median_ms"],
                     results[v]["clips_per_s"], results[v]["clips_per_cpu_s"], f"{100 * c['data']:.1f}",
                     f"{100 * c['block']:.1f}" if has_block else "–", f"{100 * c['rest']:.1f}"])
    hc = cfg.host
    table = (
        f"Training step of the {args.config} model (VideoMAE depth {hc.depth}, width {hc.embed_dim}, "
        f"{hc.num_frames} frames of {hc.image_size} px in {hc.tubelet_size}x{hc.patch_size}x{hc.patch_size} "
        f"tubelets: {t}x{h}x{w} = {t * h * w} tokens per clip; block {cfg.block.source} layer {cfg.block.layers}), "
        f"batch {b} motion-mnist clips, fp32, {args.threads} thread(s), median of {args.rounds} interleaved "
        "rounds. Shares are of the CPU time of a step (median over rounds): data = reading the batch's "
        "clips from the cache and collating them (num_workers 0, as in the demo), block = the LM block's "
        "forward + backward (the frozen layer and its adapters, or the MLP of the mlp control), rest = "
        "the VideoMAE encoder, head, loss and AdamW.\n\n"
        f"Drawing a batch afresh instead (data.cache: false, or a cache's first epoch): "
        f"{drawn_stats['wall']['median_ms']:.0f} ms wall, {drawn_stats['cpu']['median_ms']:.0f} ms CPU "
        f"({b / (drawn_stats['cpu']['median_ms'] * 1e-3):.0f} clips per CPU second).\n\n"
        f"GEMM here, same rounds: {gflops_square:.1f} GFLOP/s fp32 at {GEMM_SIZE}^3; {gflops_block:.1f} GFLOP/s "
        f"at the block's up-projection ({tokens} x {lm.lm_dim} @ {lm.lm_dim} x {lm.ffn_dim}).\n\n"
        + markdown_table(["variant", "trainable", "frozen", "wall ms/step", "CPU ms/step", "clips/s (wall)",
                          "clips per CPU s", "data %", "block %", "rest %"], rows)
        + f"\n\n{CLOCK_NOTE}"
    )
    payload = {"config": args.config, "preset": cfg.to_dict(), "threads": args.threads, "rounds": args.rounds,
               "tokens_per_batch": tokens, "gemm_gflops": {"square_1024": gflops_square, "block_up": gflops_block},
               "drawn_batch": drawn_stats, "results": results,
               "times_s": times}
    write_results(args.name, payload, table, args.results_dir)
    return payload


if __name__ == "__main__":
    main()
