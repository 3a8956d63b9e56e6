"""benchmarks/variants_learn.py's chance bound is the exact binomial quantile, and the engine's
optimizer gives exactly the MLP control's matrices their width-aware rates."""

import math
import sys
from pathlib import Path

import pytest

from lm4vis import FrozenLMBlock
from lm4vis.hosts import TimmViTConfig, attach, build_host
from lm4vis.lm import random_lm, tiny_config
from lm4vis.train.config import OptimConfig
from lm4vis.train.optim import build_optimizer

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import variants_learn as vl  # noqa: E402


def _tail(n: int, p: float, k: int) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize("chance, n, alpha", [(0.1, 200, 0.01), (0.125, 512, 0.001), (0.3, 50, 0.05)])
def test_chance_bound_is_the_exact_one_sided_quantile(chance, n, alpha):
    k = round(vl.chance_bound(chance, n, alpha) * n)
    assert _tail(n, chance, k) <= alpha < _tail(n, chance, k - 1)


def _host_with_block(variant: str):
    host = build_host(TimmViTConfig(img_size=16, patch_size=4, kwargs={"embed_dim": 16, "depth": 2, "num_heads": 2}))
    block = FrozenLMBlock(random_lm(tiny_config("llama"), [1], seed=0), in_dim=16, variant=variant,
                          save_lm_weights=True)
    attach(host, block, where="last")
    return host, block


def _optimizer(host):
    return build_optimizer(host, OptimConfig(lr=1e-3, warmup_steps=2), 1e-3, total_steps=10,
                           steps_per_epoch=5)


def test_mlp_matrices_get_their_factor_on_the_shared_schedule():
    """The engine's optimizer applies the control's width-aware rates (no callback needed)."""
    host, block = _host_with_block("mlp")
    opt, sched = _optimizer(host)
    expected = {n: f for n, f in block.lm.lr_multipliers(block.in_dim).items() if f != 1.0}
    assert expected and set(expected) == {"fc1.weight", "fc2.weight"}
    # the peak rate of each group (the scheduler's lr is already in warm-up)
    lr_of = {id(p): (g["initial_lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    decay = OptimConfig().weight_decay
    for name, factor in expected.items():
        lr, wd = lr_of[id(block.lm.get_parameter(name))]
        assert lr == pytest.approx(1e-3 * factor) and wd == decay
    trainable = [p for p in host.parameters() if p.requires_grad]
    assert sorted(map(id, trainable)) == sorted(id(p) for g in opt.param_groups for p in g["params"])
    for _ in range(4):  # warm-up and cosine scale every group alike
        opt.step()
        sched.step()
    ratios = {g["lr"] / g["initial_lr"] for g in opt.param_groups}
    assert len({round(r, 12) for r in ratios}) == 1


@pytest.mark.parametrize("variant", ["frozen-lm", "random-lm", "finetune-lm"])
def test_lm_variants_keep_one_rate(variant):
    host, _ = _host_with_block(variant)
    opt, _ = _optimizer(host)
    assert len(opt.param_groups) == 2 and {g["initial_lr"] for g in opt.param_groups} == {1e-3}
