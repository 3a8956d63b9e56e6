"""What every benchmark script shares: thread setup, interleaved timing, the results files.

The machine is shared and noisy, so candidates are never timed one after the other: every
round runs each candidate once, in an order that rotates from round to round, and the
reported figure is the median over rounds. Ratios are taken between medians of the same run.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLOCKS = ("wall", "cpu")
CLOCK_NOTE = (
    "wall = elapsed time; CPU = this process's CPU time over all threads (OpenMP waits "
    "passively, so idle threads cost nothing). The machine is shared: wall times swing with "
    "the other tenants' load (see loadavg in the JSON), CPU times much less. Ratios 'per round' "
    "are medians of the ratios of candidates timed back to back in the same round."
)


def setup_threads(threads: int) -> None:
    """Pin intra-op threads so that every candidate sees the same CPU budget.

    Args:
        threads: intra-op threads (the machine has 2 cores).
    """
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def reproduce_command() -> str:
    """The exact command line that produced this run, to print and to store with the results."""
    script = os.path.relpath(sys.argv[0], Path(__file__).resolve().parent.parent)
    env = ""
    if os.environ.get("OMP_WAIT_POLICY", "PASSIVE").upper() != "PASSIVE":
        env = f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} "
    return env + "python " + " ".join(shlex.quote(a) for a in [script, *sys.argv[1:]])


def environment() -> dict[str, Any]:
    """Versions and CPU facts stored with every result, so numbers can be compared later."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default (active)"),
        "loadavg_at_write": _loadavg(),
    }


def _loadavg() -> str:
    # Other tenants' load: numbers taken under a high load average are less trustworthy.
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def interleaved_times(
    candidates: dict[str, Callable[[], Any]],
    rounds: int,
    warmup: int = 2,
    inner: int = 1,
) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of each candidate, measured A/B/A/B with a rotating order.

    Two clocks per call: ``wall`` (what a user waits) and ``cpu`` (this process's CPU time,
    all threads). On a machine shared with other tenants, wall time swings with their load
    while CPU time (with passive OpenMP waiting) stays close to the work actually done.

    Args:
        candidates: name -> a function doing one unit of work (one step).
        rounds: how many times each candidate is timed.
        warmup: untimed calls of each candidate first (allocator, oneDNN primitive caches).
        inner: calls per timing; the time recorded is their mean.

    Returns:
        name -> {"wall": [...], "cpu": [...]}, one entry per round.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for r in range(rounds):
        # Rotate the order so that no candidate always runs right after the same other one.
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(inner):
                candidates[name]()
            times[name]["wall"].append((time.perf_counter() - wall) / inner)
            times[name]["cpu"].append((time.process_time() - cpu) / inner)
    return times


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median and spread (quartiles) of one candidate's timings, in milliseconds."""
    ms = sorted(t * 1e3 for t in times)
    q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "q1_ms": q[0], "q3_ms": q[2], "n": len(ms)}


def summarize_clocks(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """`summarize` of each clock of one candidate: {"wall": {...}, "cpu": {...}}."""
    return {clock: summarize(values) for clock, values in times.items()}


def paired_ratio(times: dict[str, dict[str, list[float]]], num: str, den: str,
                 clock: str = "wall") -> float:
    """Median over rounds of ``num / den`` timed in the same round: robust to slow phases of
    a shared machine, which hit both candidates of a round alike.

    Args:
        times: the output of `interleaved_times`.
        num, den: candidate names.
        clock: ``wall`` or ``cpu``.
    """
    return statistics.median(a / b for a, b in zip(times[num][clock], times[den][clock]))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats get 3 significant digits."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any], table: str, out_dir: Path = RESULTS_DIR) -> None:
    """Write ``<name>.json`` and ``<name>.md`` and print the table and the command.

    Args:
        name: file stem under ``benchmarks/results``.
        payload: everything measured; the command and the environment are added.
        table: the markdown table (and any notes) to print and store.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    command = reproduce_command()
    payload = {"command": command, "environment": environment(), **payload}
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(f"{table}\n\nCommand: `{command}`\n")
    print(table)
    print(f"\nreproduce: {command}")
    print(f"wrote {out_dir / name}.json and .md")


# -- training-step candidates the throughput scripts share ------------------------------------------
GEMM_SIZE = 1024  # the reference matmul: (n x n) @ (n x n) in fp32


def cycling(items: list[Any]) -> Callable[[], Any]:
    """Each call returns the next of ``items``, round and round."""
    state = {"i": 0}

    def take() -> Any:
        state["i"] += 1
        return items[state["i"] % len(items)]
    return take


def train_step(model: torch.nn.Module, task: Any, next_batch: Callable[[], Any]) -> Callable[[], None]:
    """One training step of ``model`` under its task: forward, loss, backward, AdamW step."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        task.loss(*task.forward(model, next_batch(), train=True), train=True).backward()
        opt.step()
    return step


def block_backward(block: torch.nn.Module, tokens: torch.Tensor, mask: Any) -> None:
    """A block's forward and backward as inside a training step (input and adapter grads)."""
    x = tokens.requires_grad_(True)
    block(x, mask).square().mean().backward()
    x.grad = None
    for p in block.parameters():
        p.grad = None


def gemm_step(m: int = GEMM_SIZE, k: int | None = None, n: int | None = None) -> Callable[[], None]:
    """An fp32 ``(m, k) @ (k, n)`` matmul (square ``m`` by default), the machine's reference rate."""
    k, n = k or m, n or m
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    return lambda: a @ b
