"""Does every block variant learn above chance on every shipped preset that runs here?

A control that cannot learn makes every comparison against it meaningless, so this trains
each variant (baseline, frozen-lm, random-lm, finetune-lm, mlp) of each preset once at a
reduced budget, through the engine (`lm4vis.train.train`), and tests its validation top-1
against chance:

- chance is the validation frequency of the most frequent class, the best a model that
  ignores its input can score (on an unbalanced validation subset it is above 1/classes);
- "above" means above the (1 - alpha) quantile of Binomial(n_val, chance) / n_val, one-sided,
  with alpha = 1 % shared by all cells (Bonferroni): a chance-level model passes any cell
  with probability below alpha / cells, and all of them together below alpha. This treats the
  validation images as a sample from the task and says nothing about seeds.

The engine's optimizer applies the MLP control's width-aware rates (`MLPControl.lr_multipliers`,
declared to it through `FrozenLMBlock.param_lr_factors`): each parameter with a factor other
than 1 is in a group with the same weight decay and ``factor`` times the peak rate, on the
same schedule. The factors of each run are recorded in the results.

    python benchmarks/variants_learn.py                  # the budget of results/variants_learn.md
    python benchmarks/variants_learn.py --presets configs/demo.yaml --variants mlp baseline
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: the machine is shared
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as every benchmark here (README)


import bench_common as common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("baseline", "frozen-lm", "random-lm", "finetune-lm", "mlp")
#: Reduced budgets, per preset: the smallest at which the baseline is clearly above chance
#: (cluttered Fashion-MNIST needs two passes over 4096 images: after one the baseline is
#: still at chance, configs/analysis/cluttered-fashion.yaml). Validation subsets are large
#: enough that the bound sits a few points above chance.
BUDGETS: dict[str, list[str]] = {
    "configs/fashion-mnist-vit-tiny.yaml": ["trainer.max_epochs=1", "data.limit_train=2048",
                                             "data.limit_val=1000"],
    "configs/demo.yaml": ["trainer.max_epochs=1", "data.limit_train=2048", "data.limit_val=1000"],
    "configs/animal-mnist-vit-tiny.yaml": ["trainer.max_epochs=1", "data.limit_train=2048",
                                           "data.limit_val=1000"],
    "configs/analysis/cluttered-fashion.yaml": ["trainer.max_epochs=2", "data.limit_train=4096",
                                                "data.limit_val=2000"],
}


def chance_bound(chance: float, n: int, alpha: float) -> float:
    """Smallest accuracy k/n with P(Binomial(n, chance) >= k) <= alpha (one-sided, exact)."""
    if not 0.0 < chance < 1.0:
        return chance  # a one-class validation set: no margin to compute
    tail = 0.0
    for k in range(n, -1, -1):
        # In log space: comb(2000, 1000) overflows a float.
        p_k = math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                       + k * math.log(chance) + (n - k) * math.log1p(-chance))
        if tail + p_k > alpha:
            return (k + 1) / n
        tail += p_k
    return 0.0


def val_chance(cfg: Any) -> tuple[float, int, int]:
    """Majority-class frequency of the run's validation images, their count, the class count."""
    from lm4vis.data import build_dataset

    d = cfg.data
    ds = build_dataset(d.name, split=d.val_split, root=d.root, image_size=d.image_size,
                       seed=d.data_seed, limit=d.limit_val)
    counts = Counter(int(ds[i][1]) for i in range(len(ds)))
    return max(counts.values()) / len(ds), len(ds), cfg.host.num_classes


def cpu_seconds() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def run_cell(preset: str, variant: str, overrides: list[str], out_dir: Path) -> dict[str, Any]:
    from lm4vis.hosts import build_model
    from lm4vis.train import load_config, train
    from lm4vis.train.optim import lr_factors

    cfg = load_config(str(ROOT / preset), [f"block.variant={variant}", "trainer.progress_bar=false",
                                           f"out_dir={out_dir}", *overrides])
    chance, n_val, classes = val_chance(cfg)
    factors = lr_factors(build_model(cfg.host, cfg.block, seed=cfg.seed))
    t0, c0 = time.perf_counter(), cpu_seconds()
    summary = train(cfg, auto_name=True)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if summary.get("status") != "completed":
        raise RuntimeError(f"{preset} {variant}: {summary.get('error')}")
    return {"preset": preset, "variant": variant, "overrides": overrides,
            "val_acc": summary["final"]["val/acc"], "val_loss": summary["final"]["val/loss"],
            "n_val": n_val, "classes": classes, "chance": chance, "steps": summary["steps"],
            "trainable_params": summary["params"]["trainable"],
            "lr_factors": factors, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=list(BUDGETS), help="preset YAML files (repo-relative)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides for every run, after the preset's budget (e.g. trainer.max_epochs=3)")
    p.add_argument("--alpha", type=float, default=0.01, help="family-wise error over all cells")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folders (default: a temporary folder)")
    p.add_argument("--results", default="variants_learn", help="results file stem ('' to skip)")
    args = p.parse_args()

    common.setup_threads(1)
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="variants_learn-"))
    cells = [(pr, v) for pr in args.presets for v in args.variants]
    alpha_cell = args.alpha / len(cells)
    rows, table_rows = [], []
    for preset, variant in cells:
        overrides = [*BUDGETS.get(preset, []), f"seed={args.seed}", *args.set]
        r = run_cell(preset, variant, overrides, out_dir)
        r["bound"] = chance_bound(r["chance"], r["n_val"], alpha_cell)
        r["above_chance"] = r["val_acc"] >= r["bound"]
        rows.append(r)
        table_rows.append([Path(preset).stem, variant, f"{100 * r['val_acc']:.1f}",
                           f"{100 * r['chance']:.1f} (1/{r['classes']} = {100 / r['classes']:.1f})",
                           f"{100 * r['bound']:.1f}", "yes" if r["above_chance"] else "**NO**",
                           r["steps"], r["n_val"], f"{r['cpu_s']:.0f}"])
        print(f"{preset} {variant}: {100 * r['val_acc']:.1f} % (bound {100 * r['bound']:.1f} %), "
              f"{r['cpu_s']:.0f} CPU s", flush=True)

    table = common.markdown_table(
        ["preset", "variant", "val top-1 (%)", "chance: majority class (%)", "bound (%)",
         "above chance", "steps", "val images", "CPU s"], table_rows)
    note = (f"One seed ({args.seed}) per cell, one thread. Chance = frequency of the most "
            f"frequent validation class; bound = exact one-sided binomial quantile at "
            f"alpha = {args.alpha:g} / {len(cells)} cells (Bonferroni), so a model at chance passes "
            f"any one cell with probability < {alpha_cell:.2g}. The MLP control trains at the "
            f"engine's width-aware rates (MLPControl.lr_multipliers).")
    payload = {"args": vars(args), "alpha_per_cell": alpha_cell, "budgets": BUDGETS, "rows": rows,
               "all_above_chance": all(r["above_chance"] for r in rows)}
    if args.results:
        common.write_results(args.results, payload, table + "\n\n" + note)
    else:
        print(table + "\n\n" + note)
    sys.exit(0 if payload["all_above_chance"] else 1)


if __name__ == "__main__":
    main()
