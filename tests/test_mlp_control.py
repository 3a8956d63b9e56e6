"""MLPControl: the mechanism that lets the capacity control train under the shared recipe.

Adam moves every weight by about the learning rate per step, so an update that lines up with
its inputs moves a matrix's output by about ``lr * fan_in``: in the standard parametrisation
a wider control moves faster, and the LM-width control (hidden ~3000) outgrows the residual it
is added to within tens of steps (docs/analysis.md). The fix: the branch starts at zero and
`MLPControl.lr_multipliers` scales each matrix's rate by ``base_width / fan_in`` (muP), so the
branch moves per step as a base-width matrix would, whatever its hidden width.
"""

import math

import pytest
import torch
from torch import nn

from lm4vis import FrozenLMBlock, MLPControl
from lm4vis.lm import random_lm, tiny_config
from lm4vis.lm.layers import Norm

LM_DIM, BASE = 32, 8  # the host width the learning rate is chosen for


def _params_for_hidden(hidden: int, lm_dim: int = LM_DIM) -> int:
    # fc1 + fc2 + the RMS norm's weight: the count MLPControl solves for its hidden width.
    return 2 * lm_dim * hidden + hidden + lm_dim + lm_dim


def _adamw(module: nn.Module, lr: float, base_width: int) -> torch.optim.AdamW:
    """AdamW with one group per declared factor (peak rate times factor), as the engine is to
    build it; a module without `lr_multipliers` gets factor 1 everywhere."""
    declared = getattr(module, "lr_multipliers", None)
    factors = declared(base_width) if callable(declared) else {}
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in module.named_parameters():
        groups.setdefault(factors.get(name, 1.0), []).append(p)
    return torch.optim.AdamW([{"params": ps, "lr": lr * f} for f, ps in groups.items()],
                             lr=lr, weight_decay=0.05)


def _train_branch(hidden: int, steps: int, lr: float = 1e-3) -> tuple[float, float]:
    """(RMS of the control's branch output, RMS of its change) after ``steps`` AdamW steps on
    one batch.

    The batch is what proj_in hands the control (tokens of RMS ~0.1); the loss reads the
    control's output through the block's unit norm and a fixed readout, as proj_out does.
    """
    torch.manual_seed(0)
    mlp = MLPControl(LM_DIM, _params_for_hidden(hidden))
    assert mlp.fc1.out_features == hidden
    gen = torch.Generator().manual_seed(1)
    x = 0.1 * torch.randn(16, 5, LM_DIM, generator=gen)
    readout = torch.randn(LM_DIM, 4, generator=gen) / math.sqrt(LM_DIM)
    target = torch.randn(16, 5, 4, generator=gen)
    norm = Norm(LM_DIM, affine=False)
    opt = _adamw(mlp, lr, BASE)
    with torch.no_grad():
        start = mlp(x) - x
    for _ in range(steps):
        loss = (norm(mlp(x)) @ readout - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        branch = mlp(x) - x
    rms = lambda t: float(t.pow(2).mean().sqrt())  # noqa: E731
    return rms(branch), rms(branch - start)


def test_branch_drift_does_not_grow_with_the_hidden_width():
    # muP predicts the same drift at every width (ratio ~1); the standard parametrisation
    # predicts drift proportional to the width when Adam's steps line up (ratio ~8 here), and
    # sqrt(8) if they only added up like a random walk. The bound is that geometric midpoint:
    # a control whose drift still grows with its width fails it. Three steps: Adam's first
    # steps are sign-like and line up on a fixed batch; later ones fit it and stop lining up.
    narrow, wide = 64, 512
    ratio = _train_branch(wide, steps=3)[1] / _train_branch(narrow, steps=3)[1]
    assert ratio < math.sqrt(wide / narrow), f"wide/narrow drift {ratio:.2f}"


def test_branch_stays_below_the_residual_it_is_added_to():
    # At the LM control's proportions (hidden ~5x lm_dim, lm_dim 4x the base width), 30 steps
    # at the recipe's rate must leave the branch smaller than the tokens it is added to (RMS
    # 0.1): once it is larger, the unit norm after it divides the gradient reaching proj_in.
    branch, _ = _train_branch(5 * LM_DIM, steps=30)
    assert branch < 0.1, f"branch RMS {branch:.3f} after 30 steps"


def test_branch_starts_at_zero_so_the_block_starts_as_its_adapters():
    block = FrozenLMBlock(random_lm(tiny_config("llama"), [1], seed=0), in_dim=12, variant="mlp")
    x = torch.randn(2, 7, 12)
    with torch.no_grad():
        adapters_only = block.proj_out(block.norm(block.proj_in(x)))
        torch.testing.assert_close(block(x), adapters_only)


def test_lr_multipliers_follow_fan_in_and_cover_every_parameter():
    mlp = MLPControl(LM_DIM, _params_for_hidden(100))
    factors = mlp.lr_multipliers(BASE)
    assert set(factors) == {n for n, p in mlp.named_parameters() if p.requires_grad}
    assert factors["fc1.weight"] == pytest.approx(BASE / LM_DIM)
    assert factors["fc2.weight"] == pytest.approx(BASE / 100)
    assert all(factors[n] == 1.0 for n in ("fc1.bias", "fc2.bias", "norm.weight"))
    # A base wider than every fan-in never speeds a matrix up beyond the recipe's rate.
    assert set(mlp.lr_multipliers(10_000).values()) == {1.0}
    with pytest.raises(ValueError):
        mlp.lr_multipliers(0)


def test_parameter_count_still_matches_the_frozen_layers():
    lm = random_lm(tiny_config("llama"), [0, 1], seed=0)
    block = FrozenLMBlock(lm, in_dim=12, variant="mlp")
    adapters = 2 * 12 * lm.lm_dim
    control = block.param_counts()["trainable"] - adapters
    assert abs(control - lm.num_params()) / lm.num_params() < 0.01
