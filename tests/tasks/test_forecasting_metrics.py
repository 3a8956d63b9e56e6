"""Argoverse forecasting metrics: hand-computed cases, ties, and parity with the API's procedure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lm4vis.tasks.forecasting_metrics import ForecastingMetrics, displacement_metrics

# Two steps of ground truth: (1, 0) then (2, 0).
FUTURE = [[1.0, 0.0], [2.0, 0.0]]

# (case, modes, probabilities, k, expected values). Each row is worked out by hand in its comment.
CASES = [
    # A: errors (0, 3): ADE 1.5, FDE 3. B: errors (4, 2): ADE 3, FDE 2. The best mode is B by FDE,
    # so minADE is B's 3.0, not A's smaller 1.5; FDE exactly 2.0 is no miss (strict >);
    # brier = (1 - 0.3)^2 + 2.
    ("min-ADE is the min-FDE mode's ADE", [[[1, 0], [2, 3]], [[1, 4], [2, 2]]], [0.7, 0.3], 6,
     dict(minADE=3.0, minFDE=2.0, MR=0.0, **{"brier-minFDE": 0.49 + 2.0}, best_mode=1)),
    # K=1 scores the most confident mode A, not the best one: FDE 3 > 2 is a miss; p renormalised
    # over one mode is 1, so brier = minFDE.
    ("K=1 is the most confident mode", [[[1, 0], [2, 3]], [[1, 4], [2, 2]]], [0.7, 0.3], 1,
     dict(minADE=1.5, minFDE=3.0, MR=1.0, **{"brier-minFDE": 3.0}, best_mode=0)),
    # A: errors (1, 1), B: errors (0, 1): equal FDE 1. The more probable B wins: ADE 0.5.
    ("FDE tie goes to the more probable mode", [[[1, 1], [2, 1]], [[1, 0], [2, -1]]], [0.4, 0.6], 6,
     dict(minADE=0.5, minFDE=1.0, MR=0.0, **{"brier-minFDE": 0.16 + 1.0}, best_mode=1)),
    ("FDE tie, probabilities swapped", [[[1, 1], [2, 1]], [[1, 0], [2, -1]]], [0.6, 0.4], 6,
     dict(minADE=1.0, minFDE=1.0, MR=0.0, **{"brier-minFDE": 0.16 + 1.0}, best_mode=0)),
    # Equal confidences: the stable sort keeps the listed order, so K=1 is the first mode.
    ("confidence tie, K=1 takes the first listed", [[[1, 0], [2, 0]], [[9, 9], [9, 9]]], [0.5, 0.5], 1,
     dict(minADE=0.0, minFDE=0.0, MR=0.0, **{"brier-minFDE": 0.0}, best_mode=0)),
    ("confidence tie, the other order", [[[9, 9], [9, 9]], [[1, 0], [2, 0]]], [0.5, 0.5], 1,
     dict(minADE=math.hypot(8, 9) / 2 + math.hypot(7, 9) / 2, minFDE=math.hypot(7, 9), MR=1.0,
          **{"brier-minFDE": math.hypot(7, 9)}, best_mode=0)),
    # Three modes, K=2: the exact mode 2 (p 0.2) is not among the two most probable. Of modes 0
    # (FDE 3) and 1 (FDE 1), mode 1 wins; its p renormalised over the two kept is 0.3 / 0.8.
    ("brier renormalises over the K kept", [[[1, 0], [2, 3]], [[1, 0], [2, 1]], [[1, 0], [2, 0]]],
     [0.5, 0.3, 0.2], 2,
     dict(minADE=0.5, minFDE=1.0, MR=0.0, **{"brier-minFDE": (1 - 0.375) ** 2 + 1.0}, best_mode=1)),
    # K larger than the number of modes scores all of them.
    ("K above the mode count", [[[1, 0], [2, 3]], [[1, 0], [2, 1]]], [0.9, 0.1], 6,
     dict(minADE=0.5, minFDE=1.0, MR=0.0, **{"brier-minFDE": 0.81 + 1.0}, best_mode=1)),
]


def _one_scene(values):
    return torch.tensor([values], dtype=torch.float64)  # float64: the hand values are exact


@pytest.mark.parametrize("case, modes, probs, k, expected", CASES, ids=[c[0] for c in CASES])
def test_hand_computed(case, modes, probs, k, expected):
    out = displacement_metrics(_one_scene(modes), _one_scene(probs), _one_scene(FUTURE), k)
    for name, value in expected.items():
        assert out[name].item() == pytest.approx(value, abs=1e-12), name


def _argoverse_reference(modes, probs, future, k, threshold):
    """Argoverse's procedure transcribed in plain Python: sort by -p (stable), keep k,
    renormalise, first strict minimum of FDE, ADE of that mode."""
    order = sorted(range(len(probs)), key=lambda j: -probs[j])[:k]
    kept = [probs[j] for j in order]
    kept = [p / sum(kept) for p in kept]
    best, best_fde = 0, float("inf")
    for i, j in enumerate(order):
        fde = math.dist(modes[j][-1], future[-1])
        if fde < best_fde:
            best, best_fde = i, fde
    ade = sum(math.dist(a, b) for a, b in zip(modes[order[best]], future)) / len(future)
    return {"minADE": ade, "minFDE": best_fde, "MR": float(best_fde > threshold),
            "brier-minFDE": (1 - kept[best]) ** 2 + best_fde}


@pytest.mark.parametrize("k", [1, 3, 6])
def test_matches_the_argoverse_procedure_on_random_forecasts(k):
    rng = np.random.default_rng(k)
    modes = rng.normal(0, 3, (16, 6, 30, 2))
    # Rounded confidences make ties frequent; rounded endpoints make some FDEs tie exactly.
    probs = rng.dirichlet(np.ones(6), 16).round(1) + 1e-3
    future = rng.normal(0, 3, (16, 30, 2))
    modes[:8, :, -1] = future[:8, None, -1] + rng.choice([-1.0, 1.0], (8, 6, 2))
    out = displacement_metrics(torch.tensor(modes), torch.tensor(probs), torch.tensor(future), k)
    for i in range(16):
        ref = _argoverse_reference(modes[i].tolist(), probs[i].tolist(), future[i].tolist(), k, 2.0)
        for name, value in ref.items():
            assert out[name][i].item() == pytest.approx(value, rel=1e-12, abs=1e-12), (i, name)


def test_scenes_without_future_count_zero_and_sums_over_batches_are_exact():
    metrics = ForecastingMetrics()
    gen = torch.Generator().manual_seed(0)
    traj = torch.randn(10, 6, 30, 2, generator=gen)
    probs = torch.rand(10, 6, generator=gen).softmax(-1)
    future = torch.randn(10, 30, 2, generator=gen)
    has_future = torch.tensor([True] * 7 + [False] * 3)
    whole = metrics(traj, probs, future, has_future)
    assert set(whole) == set(metrics.names) | {"count"}
    assert all(whole[name][7:].eq(0).all() for name in whole)
    parts = [metrics(traj[s], probs[s], future[s], has_future[s]) for s in (slice(0, 4), slice(4, 10))]
    sums = {name: sum(p[name].sum() for p in parts) for name in whole}
    means = metrics.reduce(sums)
    assert float(sums["count"]) == 7
    for name in metrics.names:
        assert means[name] == pytest.approx(whole[name][:7].mean().item(), rel=1e-12)
    assert metrics.directions == dict.fromkeys(metrics.names, "min")


@pytest.mark.parametrize("kwargs, message", [
    (dict(ks=()), "distinct positive"),
    (dict(ks=(0, 6)), "distinct positive"),
    (dict(ks=(6, 6)), "distinct positive"),
    (dict(miss_threshold=0.0), "positive"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ForecastingMetrics(**kwargs)


@pytest.mark.parametrize("shapes, message", [
    (((2, 6, 30), (2, 6), (2, 30, 2)), "trajectories"),
    (((2, 6, 30, 2), (2, 6), (2, 20, 2)), "future"),
    (((2, 6, 30, 2), (2, 5), (2, 30, 2)), "probabilities"),
])
def test_shape_errors(shapes, message):
    traj, probs, future = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=message):
        displacement_metrics(traj, probs, future, k=6)


def test_reduce_without_ground_truth_says_why():
    metrics = ForecastingMetrics()
    with pytest.raises(ValueError, match="no scene with ground truth"):
        metrics.reduce(dict.fromkeys((*metrics.names, "count"), 0.0))
