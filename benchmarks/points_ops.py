"""Farthest point sampling and kNN of `lm4vis.ops` against their numpy definitions.

For each cloud size N and number of centres G: FPS of G centres from B clouds of N points,
and the k nearest neighbours of those G centres among the N points (Point-BERT's grouping).
`lm4vis.ops.reference` is the brute force the ops are tested against (a loop per cloud for
FPS, a full sort per query for kNN); outputs are checked equal before timing.
Example: ``python benchmarks/points_ops.py --threads 1``.
"""

from __future__ import annotations

import os

# See block_speed.py: passive OpenMP waiting keeps timings about this code on a shared machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (  # noqa: E402  (the scripts run as files, not as a package)
    CLOCK_NOTE, RESULTS_DIR, interleaved_times, markdown_table, paired_ratio, setup_threads,
    summarize_clocks, write_results,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8, help="clouds per call")
    p.add_argument("--num-points", type=int, nargs="+", default=[1024, 2048, 4096, 8192],
                   help="cloud sizes N")
    p.add_argument("--num-samples", type=int, nargs="+", default=[64, 256], help="centres G")
    p.add_argument("--k", type=int, default=32, help="neighbours per centre (Point-BERT: 32)")
    p.add_argument("--rounds", type=int, default=5, help="timed calls per candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from lm4vis.ops import farthest_point_sample, gather_points, knn
    from lm4vis.ops.reference import farthest_point_sample_reference, knn_reference

    args = parse_args(argv)
    setup_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows, results = [], {}
    for n in args.num_points:
        xyz = torch.rand(args.batch, n, 3, generator=gen) * 2 - 1
        xyz_np = xyz.numpy()
        for g in args.num_samples:
            if g > n:
                continue
            centres = gather_points(xyz, farthest_point_sample(xyz, g))
            centres_np = centres.numpy()
            k = min(args.k, n)
            ops: dict[str, dict[str, Any]] = {
                "fps": {"lm4vis": lambda: farthest_point_sample(xyz, g),
                        "reference": lambda: farthest_point_sample_reference(xyz_np, g)},
                "knn": {"lm4vis": lambda: knn(centres, xyz, k),
                        "reference": lambda: knn_reference(centres_np, xyz_np, k)},
            }
            for op, candidates in ops.items():
                if not np.array_equal(candidates["lm4vis"]().numpy(), candidates["reference"]()):
                    raise AssertionError(f"{op} N={n} G={g}: lm4vis and the reference disagree")
                times = interleaved_times(candidates, rounds=args.rounds, warmup=args.warmup)
                stats = {name: summarize_clocks(t) for name, t in times.items()}
                speedup = paired_ratio(times, "reference", "lm4vis")
                speedup_cpu = paired_ratio(times, "reference", "lm4vis", clock="cpu")
                results[f"{op}/N={n}/G={g}"] = {
                    "op": op, "batch": args.batch, "num_points": n, "num_samples": g, "k": k,
                    "stats": stats, "times_s": times, "speedup_wall": speedup, "speedup_cpu": speedup_cpu,
                }
                rows.append([op, args.batch, n, g, k if op == "knn" else "",
                             stats["lm4vis"]["wall"]["median_ms"], stats["reference"]["wall"]["median_ms"],
                             speedup, stats["lm4vis"]["cpu"]["median_ms"], stats["reference"]["cpu"]["median_ms"],
                             speedup_cpu])
    title = (f"FPS and kNN, lm4vis.ops (torch, {args.threads} thread(s)) vs the numpy reference, "
             f"fp32, median of {args.rounds} interleaved calls")
    table = markdown_table(
        ["op", "B", "N", "G", "k", "lm4vis wall ms", "reference wall ms", "speed-up per round",
         "lm4vis CPU ms", "reference CPU ms", "CPU speed-up per round"], rows)
    write_results("points_ops", {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                                 "results": results},
                  f"{title}\n\n{table}\n\n{CLOCK_NOTE}", out_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
