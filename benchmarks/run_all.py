"""Run every benchmark with its defaults (what ``make bench`` does), one after the other.

Each script writes its own ``benchmarks/results/<name>.{json,md}`` and prints its table and the
command that reproduces it. Takes about 15-30 minutes on 2 shared cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS: dict[str, list[str]] = {
    "block_speed": ["block_speed.py"],
    "attention": ["attention.py"],
    "throughput": ["throughput.py"],
    "throughput_vit32": ["throughput.py", "--config", "defaults", "--name", "throughput_vit32",
                         "--batch", "32", "--rounds", "12"],
    "points_ops": ["points_ops.py"],
    "motion_throughput": ["motion_throughput.py"],
    "video_throughput": ["video_throughput.py"],
    "vqa3d_throughput": ["vqa3d_throughput.py"],
    "retrieval_throughput": ["retrieval_throughput.py"],
    "startup": ["startup.py"],
    "video_decode": ["video_decode.py"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS), help="which runs")
    args = p.parse_args(argv)
    for name in args.only:
        script, *rest = RUNS[name]
        cmd = [sys.executable, str(HERE / script), *rest]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        if subprocess.run(cmd, check=False).returncode:
            print(f"{name} failed; run the command above alone to see why", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
