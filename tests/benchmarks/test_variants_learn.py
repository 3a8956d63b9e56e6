"""benchmarks/variants_learn.py: its chance bound is the exact binomial quantile, and its
stand-in for the engine's learning-rate factors moves exactly the control's matrices."""

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lm4vis import FrozenLMBlock
from lm4vis.hosts import HostConfig, attach, build_host
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
    host = build_host(HostConfig(img_size=16, patch_size=4, kwargs={"embed_dim": 16, "depth": 2, "num_heads": 2}))
    block = FrozenLMBlock(random_lm(tiny_config("llama"), [1], seed=0), in_dim=16, variant=variant,
                          save_lm_weights=True)
    attach(host, block, where="last")
    return host, block


def _fit_start(host):
    opt, sched = build_optimizer(host, OptimConfig(lr=1e-3, warmup_steps=2), 1e-3, total_steps=10,
                                 steps_per_epoch=5)
    trainer = SimpleNamespace(optimizers=[opt], lr_scheduler_configs=[SimpleNamespace(scheduler=sched)])
    callback = vl.ApplyLRMultipliers()
    before = [([id(p) for p in g["params"]], g["lr"], g["weight_decay"]) for g in opt.param_groups]
    callback.on_fit_start(trainer, SimpleNamespace(model=host))
    return opt, sched, callback, before


def test_mlp_matrices_get_their_factor_on_the_shared_schedule():
    host, block = _host_with_block("mlp")
    opt, sched, callback, before = _fit_start(host)
    expected = {n: f for n, f in block.lm.lr_multipliers(block.in_dim).items() if f != 1.0}
    assert callback.applied == expected and expected  # fc1.weight and fc2.weight
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    base_lr, decay = before[0][1], before[0][2]  # the engine's decaying group
    for name, factor in expected.items():
        lr, wd = lr_of[id(block.lm.get_parameter(name))]
        assert lr == pytest.approx(base_lr * factor) and wd == decay
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(len(b[0]) for b in before)
    for _ in range(4):  # warm-up and cosine scale every group alike
        opt.step()
        sched.step()
    ratios = {g["lr"] / g["initial_lr"] for g in opt.param_groups}
    assert len({round(r, 12) for r in ratios}) == 1


@pytest.mark.parametrize("variant", ["frozen", "random", "finetune"])
def test_lm_variants_keep_the_engine_groups_exactly(variant):
    host, _ = _host_with_block(variant)
    opt, _, callback, before = _fit_start(host)
    assert callback.applied == {}
    assert [([id(p) for p in g["params"]], g["lr"], g["weight_decay"]) for g in opt.param_groups] == before
