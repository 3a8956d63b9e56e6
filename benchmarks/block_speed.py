"""Speed and memory of the frozen LM block on this CPU (the targets of issue 3).

Four parts, each writing ``benchmarks/results/block_speed_<part>.{json,md}``:

- ``frozen``: forward+backward of the frozen block versus the same block with trainable LM
  weights (the ``finetune`` variant), eager and compiled (``torch.compile``, what
  ``trainer.compile: true`` does). Target: frozen <= 0.75x trainable (ideal about 0.67x,
  since the frozen layers skip their weight gradients).
- ``memory``: bytes of the LM parameters and RSS growth of building the block, fp32 versus
  bf16 weights, each build in a fresh subprocess. Target: bf16 saves >= 45%.
- ``paper``: one training step (forward + backward + AdamW on the mappers) of lm4vis
  (bf16 weights, bf16 autocast; eager and compiled) versus the paper's block
  (`paper_block.py`: fp32, matmul + softmax). Target: >= 2x faster. Also lm4vis in fp32
  without autocast, to separate what SDPA brings from what bf16 brings.
- ``gemm``: GFLOP/s of the forward, input-gradient and weight-gradient matmuls of one linear
  layer, which explains how far below 0.67x the frozen ratio can go on this CPU.
- ``roofline``: the frozen block's training step (forward, backward, AdamW on the mappers) as a
  fraction of its roofline on this machine, eager and compiled, in bf16 (LM layers held in bf16,
  bf16 autocast: what ``trainer.fast`` runs where bf16 is native) and in fp32: the step's matmul
  FLOPs (counted by ``torch.utils.flop_counter``) over the best rate of the step's own GEMMs,
  each captured and timed alone in the same run (and their sum: the step's GEMM share). Also
  where the step's time goes (matmuls, attention, norms, elementwise, casts, optimizer;
  `torch.profiler` self times). The GEMM rates are printed
  beside every fraction: they say which kind of machine it was (bf16 with AMX runs ~6x an AVX2
  CPU's emulated bf16).

All with SmolLM2-135M's last layer (lm_dim 576) and ViT-S-like tokens (in_dim 384, 197 tokens).
Example: ``python benchmarks/block_speed.py --parts frozen paper memory``.
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
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    CLOCK_NOTE, CLOCKS, RESULTS_DIR, interleaved_times, markdown_table, paired_ratio,
    setup_threads, summarize_clocks, write_results,
)

SOURCE = "smollm2-135m"
PARTS = ("frozen", "memory", "paper", "gemm", "roofline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure")
    p.add_argument("--batch", type=int, default=32, help="images per step")
    p.add_argument("--tokens", type=int, default=197, help="tokens per image (ViT-S/16 at 224 px)")
    p.add_argument("--in-dim", type=int, default=384, help="host token width (ViT-S)")
    p.add_argument("--layers", default="-1", help="LM layers to keep, e.g. -1 or -2:")
    p.add_argument("--rounds", type=int, default=15, help="timed steps per candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per candidate first")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--compile", choices=("no", "yes", "both"), default="both",
                   help="frozen and roofline parts: eager rows, torch.compile rows, or both")
    p.add_argument("--precisions", nargs="+", choices=("bf16", "fp32"), default=["bf16", "fp32"],
                   help="roofline part: which precisions (bf16 is slow where it is emulated: ~1 min a "
                        "step at the default shapes on an AVX2-only CPU)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                   help="where the JSON and markdown go (e.g. a scratch folder for a smoke run)")
    p.add_argument("--memory-layers", nargs="+", default=["-1", "0:"],
                   help="layer spans for the memory part (0: = all layers, a clearer RSS signal)")
    p.add_argument("--memory-child", nargs=3, metavar=("KIND", "LAYERS", "IN_DIM"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def load_block(args: argparse.Namespace, variant: str, dtype: torch.dtype | None, seed: int = 0):
    """A `FrozenLMBlock` on SmolLM2's layers; the mappers drawn from ``seed`` so every
    candidate starts from the same weights."""
    from lm4vis import FrozenLMBlock

    torch.manual_seed(seed)
    return FrozenLMBlock.from_pretrained(SOURCE, in_dim=args.in_dim, layers=args.layers,
                                         variant=variant, dtype=dtype)


def tokens(args: argparse.Namespace, requires_grad: bool = True) -> torch.Tensor:
    # The host before the block is trained too, so its tokens carry a gradient.
    x = torch.randn(args.batch, args.tokens, args.in_dim, generator=torch.Generator().manual_seed(1))
    return x.requires_grad_(requires_grad)


def fwd_bwd(model: torch.nn.Module, x: torch.Tensor, autocast: bool) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with ctx:
            out = model(x)
        out.float().mean().backward()
    return step


def train_step(model: torch.nn.Module, x: torch.Tensor, autocast: bool) -> Callable[[], None]:
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4)
    inner = fwd_bwd(model, x, autocast)

    def step() -> None:
        inner()
        opt.step()
    return step


# --- part 1: frozen versus trainable ----------------------------------------------------------

FROZEN_SETUPS = (
    # (label, frozen dtype, trainable dtype, autocast, compile). The rows with both held alike
    # compare like with like. The bf16-mixed rows are what `lm4vis train` runs under
    # precision=bf16-mixed with block.dtype=bf16: a trainable LM keeps fp32 master weights that
    # autocast casts every step; a frozen one is held in bf16 once, as it never takes a step.
    ("fp32", None, None, False, False),
    ("bf16 + autocast, both held in bf16", torch.bfloat16, torch.bfloat16, True, False),
    ("bf16-mixed: frozen held in bf16, trainable fp32 master", torch.bfloat16, None, True, False),
    ("fp32, compiled", None, None, False, True),
    ("bf16 + autocast, both held in bf16, compiled", torch.bfloat16, torch.bfloat16, True, True),
    ("bf16-mixed, compiled", torch.bfloat16, None, True, True),
)


def part_frozen(args: argparse.Namespace) -> dict[str, Any]:
    x = tokens(args)
    rows, results = [], {}
    setups = [s for s in FROZEN_SETUPS if args.compile == "both" or s[4] == (args.compile == "yes")]
    for label, frozen_dtype, trainable_dtype, autocast, compiled in setups:
        frozen = load_block(args, "frozen-lm", frozen_dtype)
        trainable = load_block(args, "finetune-lm", trainable_dtype)
        counts = {"frozen": frozen.param_counts(), "finetune": trainable.param_counts()}
        compile_s = {}
        if compiled:
            torch._dynamo.reset()  # each setup compiles from scratch (the disk cache stays)
            for name, block in (("frozen", frozen), ("finetune", trainable)):
                block.compile()
                start = time.perf_counter()
                fwd_bwd(block, x, autocast)()  # the first call compiles forward and backward
                compile_s[name] = time.perf_counter() - start
        times = interleaved_times(
            {"frozen": fwd_bwd(frozen, x, autocast), "finetune": fwd_bwd(trainable, x, autocast)},
            rounds=args.rounds, warmup=args.warmup,
        )
        s = {k: summarize_clocks(v) for k, v in times.items()}
        ratio = {c: s["frozen"][c]["median_ms"] / s["finetune"][c]["median_ms"] for c in CLOCKS}
        paired = {c: paired_ratio(times, "frozen", "finetune", c) for c in CLOCKS}
        results[label] = {"summary": s, "ratio_of_medians": ratio, "paired_ratio": paired,
                          "param_counts": counts, "first_call_s": compile_s, "times_s": times}
        rows.append([label, s["frozen"]["wall"]["median_ms"], s["finetune"]["wall"]["median_ms"],
                     ratio["wall"], paired["wall"], s["frozen"]["cpu"]["median_ms"],
                     s["finetune"]["cpu"]["median_ms"], paired["cpu"],
                     "yes" if paired["cpu"] <= 0.75 and paired["wall"] <= 0.75 else "NO"])
        print(f"{label}: frozen/trainable {paired['wall']:.3f} wall, {paired['cpu']:.3f} CPU", flush=True)
        del frozen, trainable
    compile_note = ""
    if any(r["first_call_s"] for r in results.values()):
        firsts = [t for r in results.values() for t in r["first_call_s"].values()]
        compile_note = (f"\n\nCompiled rows: `block.compile()` (what `trainer.compile: true` does); "
                        f"the first call, which compiles, took {min(firsts):.0f}-{max(firsts):.0f} s "
                        "and is not in the medians.")
    table = (
        f"Forward+backward of the block, SmolLM2-135M layers {args.layers}, batch {args.batch} x "
        f"{args.tokens} tokens x {args.in_dim}, median of {args.rounds} interleaved steps, "
        "attention kernel `auto` (SDPA in fp32, matmuls in bf16)\n\n"
        + markdown_table(["precision", "frozen wall ms", "trainable wall ms", "ratio of medians",
                          "ratio per round (median)", "frozen CPU ms", "trainable CPU ms",
                          "CPU ratio per round (median)", "<= 0.75x"], rows)
        + compile_note + f"\n\n{CLOCK_NOTE}"
    )
    write_results("block_speed_frozen", {"config": vars_of(args), "results": results}, table,
                  args.results_dir)
    return results


# --- part 2: bf16 memory ----------------------------------------------------------------------

def _status() -> dict[str, int]:
    """VmRSS, RssAnon and VmHWM of this process in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _release_freed_heap() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise), so RSS shows what is
    still held rather than what the fp32 dequantized temporaries once needed."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def memory_child(kind: str, layers: str, in_dim: str) -> None:
    """Runs in a fresh interpreter: build one block (or only open the checkpoint, ``kind`` =
    ``reader``) and print what it cost as JSON."""
    import gc

    import lm4vis.checkpoint.gguf  # noqa: F401  (imports are in the baseline, not in the build)
    from lm4vis import FrozenLMBlock, open_checkpoint

    gc.collect()
    _release_freed_heap()
    before = _status()
    if kind == "reader":  # the fixed cost of parsing the file's metadata, no weights read
        kept: Any = open_checkpoint(SOURCE)
        lm_params = lm_bytes = num_layers = 0
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[kind]
        kept = FrozenLMBlock.from_pretrained(SOURCE, in_dim=int(in_dim), layers=layers, dtype=dtype)
        lm_params = sum(p.numel() for p in kept.lm.parameters())
        lm_bytes = sum(p.numel() * p.element_size() for p in kept.lm.parameters())
        num_layers = len(kept.layer_indices)
    gc.collect()
    _release_freed_heap()
    after = _status()
    print(json.dumps({
        "lm_param_bytes": lm_bytes, "lm_params": lm_params, "num_layers": num_layers,
        "rss_delta": after["VmRSS"] - before["VmRSS"],
        "anon_delta": after["RssAnon"] - before["RssAnon"],
        "peak_delta": after["VmHWM"] - before["VmRSS"],
    }))


def _child(kind: str, layers: str, in_dim: int) -> dict[str, int]:
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, layers, str(in_dim)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"memory subprocess ({kind}, layers {layers}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def part_memory(args: argparse.Namespace) -> dict[str, Any]:
    mib = 1 / 2**20
    reader = _child("reader", "-1", args.in_dim)
    results: dict[str, Any] = {"reader_only": reader}
    rows = []
    for layers in args.memory_layers:
        per = {kind: _child(kind, layers, args.in_dim) for kind in ("fp32", "bf16")}
        for m in per.values():
            # What building costs beyond the LM weights: mappers, first-use allocations.
            m["rss_overhead"] = m["rss_delta"] - m["lm_param_bytes"]
        saving = {k: 1 - per["bf16"][k] / per["fp32"][k] for k in ("lm_param_bytes", "rss_delta")}
        results[layers] = {**per, "saving": saving}
        for kind, m in per.items():
            rows.append([layers, m["num_layers"], kind, m["lm_param_bytes"] * mib,
                         m["rss_delta"] * mib, m["rss_overhead"] * mib, m["peak_delta"] * mib])
        rows.append([layers, per["fp32"]["num_layers"], "**bf16 saving**",
                     f"**{saving['lm_param_bytes']:.1%}**", f"**{saving['rss_delta']:.1%}**", "", ""])
    table = (
        "Memory of the LM weights, SmolLM2-135M (GGUF Q4_1, dequantized), each build in a fresh "
        "process, MiB\n\n"
        + markdown_table(["layers", "n", "dtype", "LM param bytes", "RSS growth",
                          "RSS growth - LM bytes", "peak RSS growth"], rows)
        + f"\n\nRSS growth = VmRSS after building the block minus before (imports done, freed heap "
        f"returned with malloc_trim). 'RSS growth - LM bytes' is what the build holds besides the "
        "LM weights (the fp32 mappers, first-use allocations): about the same for both dtypes, so "
        "it dilutes the saving when only one small layer is kept. Opening the checkpoint alone "
        f"grows RSS by {reader['rss_delta'] * mib:.1f} MiB. Peak = VmHWM after minus VmRSS "
        "before: the fp32 dequantized copy of each tensor is transient."
    )
    write_results("block_speed_memory", {"config": vars_of(args), "results": results}, table,
                  args.results_dir)
    return results


# --- part 3: against the paper's block --------------------------------------------------------

def part_paper(args: argparse.Namespace) -> dict[str, Any]:
    from paper_block import paper_block_like

    fp32 = load_block(args, "frozen-lm", None)
    bf16 = load_block(args, "frozen-lm", torch.bfloat16)
    paper = paper_block_like(fp32)
    x = tokens(args)

    # The reference must compute the same function before its timing means anything.
    with torch.no_grad():
        ref, out32 = paper(x), fp32(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out16 = bf16(x).float()
    diff32 = (ref - out32).abs().max().item()
    diff16 = (ref - out16).abs().max().item()
    scale = ref.abs().max().item()
    torch.testing.assert_close(out32, ref, rtol=1e-4, atol=1e-4 * scale)

    paper_name = "paper (fp32, matmul+softmax)"
    candidates = {
        paper_name: train_step(paper, x, autocast=False),
        "lm4vis fp32, no autocast (SDPA)": train_step(fp32, x, autocast=False),
        "lm4vis bf16 weights + bf16 autocast (matmul attention)": train_step(bf16, x, autocast=True),
    }
    if args.compile != "no":
        compiled = load_block(args, "frozen-lm", torch.bfloat16)
        compiled.compile()
        candidates["lm4vis bf16 + autocast, compiled"] = train_step(compiled, x, autocast=True)
    times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)
    s = {k: summarize_clocks(v) for k, v in times.items()}
    speedup = {k: {c: s[paper_name][c]["median_ms"] / v[c]["median_ms"] for c in CLOCKS}
               for k, v in s.items()}
    paired = {k: {c: 1 / paired_ratio(times, k, paper_name, c) for c in CLOCKS} for k in s}
    rows = [[k, v["wall"]["median_ms"], v["wall"]["q1_ms"], v["wall"]["q3_ms"],
             speedup[k]["wall"], paired[k]["wall"], v["cpu"]["median_ms"], paired[k]["cpu"]]
            for k, v in s.items()]
    table = (
        f"Training step (forward + backward + AdamW on the mappers), SmolLM2-135M layers "
        f"{args.layers}, batch {args.batch} x {args.tokens} tokens x {args.in_dim}, median of "
        f"{args.rounds} interleaved steps\n\n"
        + markdown_table(["candidate", "wall ms/step", "q1", "q3", "speed-up (medians)",
                          "speed-up per round (median)", "CPU ms/step",
                          "CPU speed-up per round (median)"], rows)
        + f"\n\nOutputs checked first: max |lm4vis fp32 - paper| = {diff32:.2e}, "
        f"max |lm4vis bf16 - paper| = {diff16:.2e} (output scale {scale:.3g}).\n\n{CLOCK_NOTE}"
    )
    payload = {"config": vars_of(args), "summary": s, "times_s": times,
               "speedup_vs_paper": speedup, "speedup_vs_paper_paired": paired,
               "max_abs_diff": {"fp32": diff32, "bf16": diff16, "output_abs_max": scale}}
    write_results("block_speed_paper", payload, table, args.results_dir)
    return payload


# --- part 4: why fp32 sits at the limit: the three matmuls of a linear layer ----------------

LINEAR_MATMULS = ("forward x W^T", "input grad dY W", "weight grad dY^T x")


def linear_matmul_rates(
    m: int, k: int, n: int, dtype: torch.dtype, rounds: int, warmup: int, kinds: tuple[str, ...] = LINEAR_MATMULS,
) -> tuple[dict[str, float], dict[str, dict[str, list[float]]]]:
    """GFLOP/s (from the median wall time) and the timings of the matmuls of an (m x k) -> n
    linear layer, interleaved: ``kinds`` among `LINEAR_MATMULS` (the first two are the ones a
    frozen layer keeps)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=gen).to(dtype)
    w = torch.randn(n, k, generator=gen).to(dtype)
    dy = torch.randn(m, n, generator=gen).to(dtype)
    calls = {"forward x W^T": lambda: x @ w.t(), "input grad dY W": lambda: dy @ w,
             "weight grad dY^T x": lambda: dy.t() @ x}
    times = interleaved_times({kind: calls[kind] for kind in kinds}, rounds=rounds, warmup=warmup)
    rates = {kind: 2 * m * k * n / (summarize_clocks(t)["wall"]["median_ms"] * 1e-3) / 1e9
             for kind, t in times.items()}
    return rates, times


def part_gemm(args: argparse.Namespace) -> dict[str, Any]:
    """Throughput of the three matmuls of one linear layer of the LM at the block's shapes:
    forward ``x W^T``, input gradient ``dY W`` (both kept when frozen) and weight gradient
    ``dY^T x`` (skipped when frozen). If the skipped one runs faster per FLOP than the kept
    ones, freezing saves less than a third of the matmul time."""
    from lm4vis.checkpoint import read_lm_config

    cfg = read_lm_config(SOURCE)
    m, k, n = args.batch * args.tokens, cfg.lm_dim, cfg.ffn_dim  # an MLP up-projection
    rows, results = [], {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        rate, times = linear_matmul_rates(m, k, n, dtype, args.rounds, args.warmup)
        results[name] = {"gflops": rate, "times_s": times, "shape": [m, k, n]}
        rows += [[name, kind, r] for kind, r in rate.items()]
    table = (
        f"Matmuls of one linear layer ({m} tokens x {k} -> {cfg.ffn_dim}), GFLOP/s from the median "
        f"wall time of {args.rounds} interleaved calls\n\n"
        + markdown_table(["dtype", "matmul", "GFLOP/s"], rows)
    )
    write_results("block_speed_gemm", {"config": vars_of(args), "results": results}, table,
                  args.results_dir)
    return results


# --- part 5: the step against its roofline ----------------------------------------------------

#: Profiler op names by kind, for where a step's time goes (the first match wins).
OP_KINDS = (
    ("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
                "aten::_mkldnn", "mkldnn")),
    ("attention", ("scaled_dot_product", "flash_attention", "_efficient_attention", "softmax")),
    ("norms", ("rms_norm", "layer_norm", "rsqrt")),
    ("casts", ("aten::to", "aten::_to_copy", "aten::copy_", "aten::clone", "aten::contiguous")),
    ("optimizer", ("_foreach", "adam", "Optimizer")),
    ("elementwise", ("aten::add", "aten::mul", "aten::silu", "aten::sigmoid", "aten::div", "aten::sub",
                     "aten::pow", "aten::mean", "aten::sum", "aten::neg", "aten::cat", "aten::where",
                     "aten::fill", "aten::zero", "aten::ones", "aten::empty", "aten::threshold",
                     "aten::sqrt", "aten::exp", "aten::tanh", "aten::gelu", "aten::lerp", "aten::addcmul",
                     "aten::addcdiv")),
)


def step_flops(step: Callable[[], None]) -> dict[str, int]:
    """Matmul FLOPs of one call of ``step``, total and by op (torch's own counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {"total": int(counter.get_total_flops()), "by_op": by_op}


def time_by_kind(step: Callable[[], None], calls: int = 1) -> dict[str, float]:
    """Share of the profiled self CPU time of ``calls`` steps in each kind of op (`OP_KINDS`)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            step()
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key
        kind = next((k for k, needles in OP_KINDS if any(n in name for n in needles)), "other")
        totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {k: v / whole for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


GEMM_OPS = ("mm", "addmm", "bmm", "baddbmm")


def step_gemms(step: Callable[[], None]) -> list[dict[str, Any]]:
    """Every matrix multiply one call of ``step`` dispatches (after autocast's casts): op,
    operand shapes, strides and dtype, one entry per distinct call with its count."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen: dict[tuple, dict[str, Any]] = {}

    class Capture(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in GEMM_OPS:
                operands = [a for a in args if isinstance(a, torch.Tensor)]
                key = (name, tuple((tuple(t.shape), tuple(t.stride()), str(t.dtype)) for t in operands))
                seen.setdefault(key, {"op": name, "operands": key[1], "count": 0})["count"] += 1
            return func(*args, **(kwargs or {}))

    with Capture():
        step()
    return list(seen.values())


def gemm_flops(gemm: dict[str, Any]) -> int:
    """FLOPs of one call of a captured GEMM: 2 x M x N x K (times the batch for bmm)."""
    shapes = [shape for shape, _, _ in gemm["operands"]]
    a, b = shapes[-2], shapes[-1]  # addmm/baddbmm: (bias, a, b)
    batch = a[0] if len(a) == 3 else 1
    return 2 * batch * a[-2] * a[-1] * b[-1]


def time_gemms(gemms: list[dict[str, Any]], rounds: int, warmup: int) -> list[dict[str, Any]]:
    """Each captured GEMM alone, on fresh operands of its shapes, strides and dtype: median ms
    and GFLOP/s (wall), interleaved with the others."""
    gen = torch.Generator().manual_seed(0)
    calls = {}
    for i, g in enumerate(gemms):
        operands = []
        for shape, stride, dtype in g["operands"]:
            t = torch.empty_strided(shape, stride, dtype=getattr(torch, dtype.split(".")[-1]))
            operands.append(t.copy_(torch.randn(shape, generator=gen)))
        calls[str(i)] = (lambda fn, ops: (lambda: fn(*ops)))(getattr(torch.ops.aten, g["op"]).default, operands)
    times = interleaved_times(calls, rounds=rounds, warmup=warmup)
    out = []
    for i, g in enumerate(gemms):
        ms = summarize_clocks(times[str(i)])["wall"]["median_ms"]
        out.append({**g, "ms": ms, "flops": gemm_flops(g), "gflops": gemm_flops(g) / ms / 1e6})
    return out


ROOFLINE_SETUPS = (  # (label, LM layers' dtype, autocast)
    ("bf16", torch.bfloat16, True),
    ("fp32", None, False),
)


def part_roofline(args: argparse.Namespace) -> dict[str, Any]:
    """The frozen block's training step over its roofline, eager and compiled, bf16 and fp32."""
    from lm4vis.checkpoint import read_lm_config
    from lm4vis.train.fastpath import native_bf16

    cfg = read_lm_config(SOURCE)
    m = args.batch * args.tokens
    has_bf16, hardware = native_bf16("cpu")
    rows, results = [], {}
    modes = {"no": ("eager",), "yes": ("compiled",), "both": ("eager", "compiled")}[args.compile]
    for label, dtype, autocast in ROOFLINE_SETUPS:
        if label not in args.precisions:
            continue
        x = tokens(args)
        steps, first_call = {}, None
        for mode in modes:
            block = load_block(args, "frozen-lm", dtype)
            steps[mode] = train_step(block, x, autocast)
            if mode == "compiled":
                torch._dynamo.reset()
                block.compile()
                start = time.perf_counter()
                steps[mode]()  # the first call compiles forward and backward
                first_call = time.perf_counter() - start
        flops = step_flops(steps[modes[0]])
        kept, _ = linear_matmul_rates(m, cfg.lm_dim, cfg.ffn_dim, dtype or torch.float32, args.rounds,
                                      args.warmup, kinds=LINEAR_MATMULS[:2])
        rates = {"forward": kept["forward x W^T"], "input grad": kept["input grad dY W"]}
        gemms = time_gemms(step_gemms(steps[modes[0]]), args.rounds, args.warmup)
        times = interleaved_times(steps, rounds=args.rounds, warmup=args.warmup)
        # The ceiling: the best rate this machine reached on any of the step's own GEMMs, alone.
        best = max(g["gflops"] for g in gemms)
        roofline_ms = flops["total"] / (best * 1e9) * 1e3
        gemms_alone_ms = sum(g["ms"] * g["count"] for g in gemms)
        kinds = {mode: time_by_kind(step) for mode, step in steps.items()}
        entry = {"flops": flops, "gemm_gflops": rates, "gemms": gemms, "best_gemm_gflops": best,
                 "roofline_ms": roofline_ms, "gemms_alone_ms": gemms_alone_ms, "first_call_s": first_call,
                 "time_by_kind": kinds, "times_s": times}
        worst = min(g["gflops"] for g in gemms)
        for mode in modes:
            ms = summarize_clocks(times[mode])["wall"]["median_ms"]
            entry[mode] = {"median_ms": ms, "fraction": roofline_ms / ms, "gemm_share": gemms_alone_ms / ms,
                           "achieved_gflops": flops["total"] / ms / 1e6}
            top = ", ".join(f"{k} {v:.0%}" for k, v in list(kinds[mode].items())[:4])
            rows.append([label, mode, ms, flops["total"] / 1e9, entry[mode]["achieved_gflops"],
                         f"{worst:.0f}-{best:.0f}", rates["forward"], roofline_ms, f"{roofline_ms / ms:.0%}",
                         gemms_alone_ms, f"{gemms_alone_ms / ms:.0%}", top])
            print(f"{label} {mode}: {ms:.0f} ms, {roofline_ms / ms:.0%} of the roofline, GEMMs alone "
                  f"{gemms_alone_ms / ms:.0%} (GEMM {worst:.0f}-{best:.0f} GFLOP/s on the step's shapes)", flush=True)
        results[label] = entry
        del steps
    table = (
        f"Training step of the frozen block (SmolLM2-135M layers {args.layers}; forward, backward and "
        f"AdamW on the mappers), batch {args.batch} x {args.tokens} tokens x {args.in_dim}, median of "
        f"{args.rounds} interleaved steps, {torch.get_num_threads()} threads, on a {hardware}"
        f"{'' if has_bf16 else ': bf16 is emulated here, so its GEMM rate is far below fp32'}. "
        "Every GEMM the step dispatches is captured (shapes, strides, dtype) and timed alone in the "
        "same run: 'GEMM GFLOP/s' is the range of those rates. Roofline: the step's matmul FLOPs "
        "(torch.utils.flop_counter, attention included) at the best of those rates; fraction = "
        "roofline time / step time. 'GEMMs alone' is the sum of the step's GEMMs timed alone, its "
        "share the part of the step that is matrix multiplies at this machine's own rates; the rest "
        f"is attention, norms, elementwise work and casts. 'up-proj GFLOP/s' is `--parts gemm`'s "
        f"forward rate ({m} x {cfg.lm_dim} -> {cfg.ffn_dim}). Where the time goes: shares of the "
        "profiled self CPU time (a compiled step's fused kernels count as other).\n\n"
        + markdown_table(["precision", "mode", "step ms", "GFLOP", "achieved GFLOP/s", "GEMM GFLOP/s",
                          "up-proj GFLOP/s", "roofline ms", "fraction", "GEMMs alone ms", "GEMM share",
                          "where the time goes"], rows)
        + f"\n\n{CLOCK_NOTE}"
    )
    # One precision alone (bf16 can take many minutes where it is emulated) gets its own file.
    name = "block_speed_roofline" + ("" if len(args.precisions) == 2 else f"_{args.precisions[0]}")
    write_results(name, {"config": vars_of(args), "hardware": hardware, "native_bf16": has_bf16,
                         "results": results}, table, args.results_dir)
    return results


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
            if k != "memory_child"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0
    setup_threads(args.threads)
    for part in args.parts:
        {"frozen": part_frozen, "memory": part_memory, "paper": part_paper, "gemm": part_gemm,
         "roofline": part_roofline}[part](args)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
