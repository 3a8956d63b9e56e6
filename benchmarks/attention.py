"""Attention kernels of the LM layers on this CPU: SDPA against explicit matmuls.

`LMAttention` computes ``softmax(q k^T * scale) v`` with grouped-query heads in one of two
ways: `F.scaled_dot_product_attention` (fused; on CPU its flash kernel) or two batched
matmuls and a softmax, with each group's queries folded into the sequence axis so keys and
values are never repeated. ``attention="auto"`` picks matmuls on CPU for sequences up to
`MATMUL_MAX_TOKENS` (per dtype) and SDPA otherwise; this script is the measurement behind
that rule.

Forward + backward (gradients for q, k and v), SmolLM2-135M's head layout (9 query heads,
3 key/value heads, head_dim 64) by default, at sequence lengths from the demo's ViT (17
tokens) through ViT-S/16 at 224 px (197) to 384 px (577) and beyond.
Example: ``python benchmarks/attention.py``.
"""

from __future__ import annotations

import os

# See block_speed.py: passive OpenMP waiting keeps timings about this code on a shared machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, paired_ratio, setup_threads,
    summarize_clocks, write_results,
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32, help="sequences per call")
    p.add_argument("--tokens", type=int, nargs="+", default=[17, 65, 197, 577, 785],
                   help="sequence lengths to measure")
    p.add_argument("--heads", type=int, default=9, help="query heads")
    p.add_argument("--kv-heads", type=int, default=3, help="key/value heads")
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--rounds", type=int, default=10, help="timed calls per candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p.parse_args(argv)


def attention_step(impl: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   grad: torch.Tensor) -> Callable[[], None]:
    """Forward and backward through one of `LMAttention`'s two kernels."""
    from lm4vis.lm.layers import matmul_attention

    scale = q.shape[-1] ** -0.5
    gqa = q.shape[1] != k.shape[1]

    def step() -> None:
        q.grad = k.grad = v.grad = None
        if impl == "matmul":
            out = matmul_attention(q, k, v, None, scale)
        else:
            out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=gqa)
        out.backward(grad)
    return step


def main(argv: list[str] | None = None) -> int:
    from lm4vis.lm.layers import matmul_is_faster

    args = parse_args(argv)
    setup_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows, results = [], {}
    for n in args.tokens:
        for dtype_name, dtype in DTYPES.items():
            def make(*shape: int) -> torch.Tensor:
                return torch.randn(*shape, generator=gen).to(dtype).requires_grad_()
            q = make(args.batch, args.heads, n, args.head_dim)
            k = make(args.batch, args.kv_heads, n, args.head_dim)
            v = make(args.batch, args.kv_heads, n, args.head_dim)
            grad = torch.randn(q.shape, generator=gen).to(dtype)
            steps = {impl: attention_step(impl, q, k, v, grad) for impl in ("sdpa", "matmul")}
            times = interleaved_times(steps, rounds=args.rounds, warmup=args.warmup)
            s = {k_: summarize_clocks(t) for k_, t in times.items()}
            ratio = {c: paired_ratio(times, "matmul", "sdpa", c) for c in ("wall", "cpu")}
            auto = "matmul" if matmul_is_faster(q) else "sdpa"
            key = f"{dtype_name}/N={n}"
            results[key] = {"summary": s, "matmul_over_sdpa": ratio, "auto_picks": auto, "times_s": times}
            rows.append([n, dtype_name, s["sdpa"]["wall"]["median_ms"], s["matmul"]["wall"]["median_ms"],
                         ratio["wall"], s["sdpa"]["cpu"]["median_ms"], s["matmul"]["cpu"]["median_ms"],
                         ratio["cpu"], auto])
            print(f"{key}: matmul/sdpa {ratio['wall']:.2f} wall, {ratio['cpu']:.2f} CPU", flush=True)
    table = (
        f"Attention forward+backward, batch {args.batch}, {args.heads} query / {args.kv_heads} "
        f"key-value heads of {args.head_dim}, median of {args.rounds} interleaved calls\n\n"
        + markdown_table(["tokens", "dtype", "SDPA wall ms", "matmul wall ms",
                          "matmul / SDPA per round", "SDPA CPU ms", "matmul CPU ms",
                          "CPU matmul / SDPA per round", "auto picks"], rows)
        + f"\n\n{CLOCK_NOTE}"
    )
    payload: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v
                                          for k, v in vars(args).items()}, "results": results}
    write_results("attention", payload, table, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
