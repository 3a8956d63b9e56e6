"""Clouds per second of every variant of the points demo model, and where a training step goes.

The host, block and batch come from ``configs/points-demo.yaml`` (a small Point-BERT on
shapes3d; ``--config`` for another point preset). A training step is forward + cross-entropy +
backward + AdamW on the trainable parameters, on one fixed batch of augmented training clouds.
Every round times each variant once, in a rotating order; figures are medians over rounds.

The step is split with timed module hooks (they only read the clock): the host's
`PointGrouper` (farthest point sampling and kNN grouping; it has no backward), the LM slot's
forward and its backward (``register_full_backward_pre_hook`` / ``register_full_backward_hook``:
the frozen block, or the MLP of the ``mlp`` control), and the rest (tokenizer, transformer,
head, loss, optimizer). The machine's GEMM rate at the block's shapes is printed beside them.
Writes ``benchmarks/results/points_train.{json,md}``.
Example: ``python benchmarks/points_train.py --threads 1``.
"""

from __future__ import annotations

import os

# As in throughput.py: passive OpenMP waiting, so a shared machine's other tenants do not turn
# every parallel region into a fight for the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, setup_threads, summarize_clocks,
    write_results,
)

PARTS = ("grouping", "block", "rest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from lm4vis.hosts import VARIANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="points-demo", help="a point preset (default: points-demo)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--rounds", type=int, default=15, help="timed steps per variant (interleaved)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    p.add_argument("--name", default="points_train", help="results file stem under benchmarks/results")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p.parse_args(argv)


class PartClock:
    """Wall seconds spent inside the grouper's forward and the LM slot's forward and backward,
    summed over one step (hooks read the clock; nothing else changes)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.spent = {"grouping": 0.0, "block": 0.0}
        self._start: dict[str, float] = {}
        self.handles = []
        self._time_forward(model.grouper, "grouping")
        if model.lm_slot.filled:
            slot = model.lm_slot
            self._time_forward(slot, "block")
            self.handles.append(slot.register_full_backward_pre_hook(lambda m, g: self._begin("block")))
            self.handles.append(slot.register_full_backward_hook(lambda m, gi, go: self._end("block")))

    def _begin(self, part: str) -> None:
        self._start[part] = time.perf_counter()

    def _end(self, part: str) -> None:
        self.spent[part] += time.perf_counter() - self._start.pop(part)

    def _time_forward(self, module: torch.nn.Module, part: str) -> None:
        self.handles.append(module.register_forward_pre_hook(lambda m, a: self._begin(part)))
        self.handles.append(module.register_forward_hook(lambda m, a, o: self._end(part)))

    def reset(self) -> None:
        self.spent = dict.fromkeys(self.spent, 0.0)


def gemm_rate(m: int, k: int, n: int, rounds: int) -> float:
    """GFLOP/s of an fp32 ``(m, k) @ (k, n)`` here: the block's up-projection shape."""
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    times = interleaved_times({"gemm": lambda: x @ w}, rounds=rounds, warmup=2, inner=5)
    return 2 * m * k * n / (summarize_clocks(times["gemm"])["wall"]["median_ms"] * 1e-3) / 1e9


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_threads(args.threads)
    from lm4vis.checkpoint import read_lm_config
    from lm4vis.hosts import build_model
    from lm4vis.tasks.base import build_task
    from lm4vis.train.config import load_config
    from lm4vis.train.datamodule import build_source

    cfg = load_config(args.config)
    source = build_source(cfg)
    task = build_task(cfg, source.info)
    train = source.dataset("train", True)
    batch = task.collate([train[(i, 0)] for i in range(cfg.data.batch_size)])
    inputs = batch[task.inputs_key]

    models, clocks, steps = {}, {}, {}
    for variant in args.variants:
        model = build_model(cfg.host, cfg.block.__class__(**{**vars(cfg.block), "variant": variant}),
                            seed=0, info=source.info).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr)
        clock = PartClock(model)

        def step(model=model, opt=opt, clock=clock) -> None:
            clock.reset()
            loss = task.loss(model(inputs), batch["label"], True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        models[variant], clocks[variant], steps[variant] = model, clock, step

    # Each timed call records its parts right after it: wrap the steps to collect them per round.
    parts: dict[str, dict[str, list[float]]] = {v: {p: [] for p in ("grouping", "block")} for v in steps}

    def recorded(variant: str):
        def run() -> None:
            steps[variant]()
            for p, s in clocks[variant].spent.items():
                parts[variant][p].append(s)
        return run

    times = interleaved_times({v: recorded(v) for v in steps}, rounds=args.rounds, warmup=args.warmup)
    for v in parts:  # drop the warm-up calls' parts
        for p in parts[v]:
            parts[v][p] = parts[v][p][args.warmup:]

    lm = read_lm_config(cfg.block.source)
    tokens = cfg.data.batch_size * (cfg.host.num_groups + 1)
    gflops = gemm_rate(tokens, lm.lm_dim, lm.ffn_dim, args.rounds)

    rows, results = [], {}
    for v in steps:
        wall = times[v]["wall"]
        share = {}
        for p in ("grouping", "block"):
            share[p] = statistics.median(s / w for s, w in zip(parts[v][p], wall))
        share["rest"] = 1.0 - share["grouping"] - share["block"]
        stats = summarize_clocks(times[v])
        trainable = sum(p.numel() for p in models[v].parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in models[v].parameters() if not p.requires_grad)
        results[v] = {"step": stats, "share": share, "trainable": trainable, "frozen": frozen,
                      "clouds_per_s": cfg.data.batch_size / (stats["wall"]["median_ms"] * 1e-3),
                      "parts_s": parts[v]}
        rows.append([v, f"{trainable:,}", f"{frozen:,}", stats["wall"]["median_ms"], stats["cpu"]["median_ms"],
                     results[v]["clouds_per_s"], f"{100 * share['grouping']:.1f}",
                     f"{100 * share['block']:.1f}" if models[v].lm_slot.filled else "–", f"{100 * share['rest']:.1f}"])
    h = cfg.host
    table = (
        f"Training step of the {args.config} model (Point-BERT depth {h.depth}, width {h.embed_dim}, "
        f"{h.num_groups} groups of {h.group_size} on {cfg.data.num_points} points; block {cfg.block.source} "
        f"layer {cfg.block.layers}), batch {cfg.data.batch_size}, fp32, {args.threads} thread(s), median of "
        f"{args.rounds} interleaved rounds. Shares are of the wall time of a step (median over rounds): "
        "grouping = FPS + kNN (the PointGrouper's forward), block = the LM slot's forward + backward "
        "(the frozen block, or the MLP of the mlp control), rest = tokenizer, transformer, head, loss "
        f"and AdamW.\n\nGEMM here: {gflops:.1f} GFLOP/s fp32 at the block's up-projection "
        f"({tokens} x {lm.lm_dim} @ {lm.lm_dim} x {lm.ffn_dim}).\n\n"
        + markdown_table(["variant", "trainable", "frozen", "wall ms/step", "CPU ms/step", "clouds/s",
                          "FPS+kNN %", "block %", "rest %"], rows)
        + f"\n\n{CLOCK_NOTE}"
    )
    payload = {"config": args.config, "host": vars(cfg.host) | {"tokenizer_dims": list(h.tokenizer_dims)},
               "batch_size": cfg.data.batch_size, "num_points": cfg.data.num_points, "threads": args.threads,
               "gemm_gflops": gflops, "results": results, "times_s": times}
    write_results(args.name, payload, table, args.results_dir)
    return payload


if __name__ == "__main__":
    main()
