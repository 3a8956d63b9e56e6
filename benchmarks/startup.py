"""How fast lm4vis says no: the time to ``--help`` and to a config error, in fresh processes.

A user's edit-run loop starts with a typo more often than with a training step, so a config or
preset error must come back before torch (about 3 s to import here) or Lightning is loaded.
Target (issue "run lifecycle"): each figure within 3x of a bare ``python -c "import yaml"``
measured in the same run, interleaved round by round. Also reports, for the config layer's
design, what importing a config library would cost on its own (those that are installed).

    python benchmarks/startup.py --rounds 7
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CASES: dict[str, list[str]] = {
    "python -c 'import yaml' (reference)": ["-c", "import yaml"],
    "lm4vis --help": ["-m", "lm4vis", "--help"],
    "lm4vis train --help": ["-m", "lm4vis", "train", "--help"],
    "lm4vis compare --help": ["-m", "lm4vis", "compare", "--help"],
    "lm4vis analyze --help": ["-m", "lm4vis", "analyze", "--help"],
    "train: config key typo": ["-m", "lm4vis", "train", "--config", "fashion-mnist-vit-tiny",
                               "optim.learning_rate=1e-3"],
    "train: unknown preset": ["-m", "lm4vis", "train", "--config", "fashion-mnist-vit-tny"],
    "compare: unknown variant": ["-m", "lm4vis", "compare", "--config", "demo", "--variants", "frozen"],
    "sweep: config key typo": ["-m", "lm4vis", "sweep", "--config", "demo", "--kind", "layer", "data.bs=3"],
}
LIBRARIES = ("omegaconf", "jsonargparse", "pydantic")


def _time(args: list[str]) -> tuple[float, bool]:
    """Wall seconds of one fresh interpreter, and whether it imported torch."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - start
    torch = any(line.rstrip().endswith("| torch") for line in proc.stderr.splitlines())
    return wall, torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=str(RESULTS / "startup.json"))
    args = parser.parse_args()
    cases = dict(CASES)
    for lib in LIBRARIES:
        if importlib.util.find_spec(lib) is not None:
            cases[f"python -c 'import {lib}' (config library)"] = ["-c", f"import {lib}"]
    times: dict[str, list[float]] = {k: [] for k in cases}
    imported: dict[str, bool] = {}
    names = list(cases)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            wall, torch = _time(cases[name])
            times[name].append(wall)
            imported[name] = imported.get(name, False) or torch
    ref = statistics.median(times[names[0]])
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"case": name, "median_s": med, "x_yaml": med / ref, "imports_torch": imported[name],
                     "within_3x": med / ref <= 3.0})
    command = "python benchmarks/startup.py " + " ".join(sys.argv[1:])
    load = os.getloadavg()
    lines = [f"| case | median s ({args.rounds} rounds) | x import yaml | imports torch | within 3x |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['case']} | {row['median_s']:.3f} | {row['x_yaml']:.2f} | "
              f"{'yes' if row['imports_torch'] else 'no'} | {'yes' if row['within_3x'] else 'NO'} |"
              for row in rows]
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"command": command, "loadavg": load, "rows": rows}, f, indent=2)
    Path(args.out).with_suffix(".md").write_text(
        f"{table}\n\n`{command}`, load average {load[0]:.1f} on {os.cpu_count()} cores.\n")

if __name__ == "__main__":
    main()
