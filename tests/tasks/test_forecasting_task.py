"""The registered ``forecasting`` task: typed config, declared lower-is-better metrics, sums that
are exact over batches, the winner-takes-all loss, and the constant-velocity reference."""

from __future__ import annotations

import math

import pytest
import torch

from lm4vis.hosts.vectornet import REGRESSIONS
from lm4vis.registry import TASKS
from lm4vis.tasks.base import build_task
from lm4vis.tasks.configs import FORECASTING_REGRESSIONS, ForecastingConfig
from lm4vis.tasks.forecasting import ForecastingTask, constant_velocity
from lm4vis.tasks.forecasting_metrics import ForecastingMetrics
from lm4vis.train.config import ConfigError, load_config

BASE = ["host.kind=vectornet", "data.name=sim-traffic", "task.name=forecasting"]
NAMES = ["minADE@1", "minFDE@1", "MR@1", "minADE@6", "minFDE@6", "MR@6", "brier-minFDE@6", "loss"]


def test_registration_and_declared_metrics():
    assert TASKS.get("forecasting").config is ForecastingConfig
    cfg = load_config(None, [*BASE, "task.ks=[6, 1]", "task.monitor=minADE@6", "task.regression=l2"])
    assert cfg.task.ks == [1, 6]  # sorted, so reports list K=1 first
    task = build_task(cfg)
    assert [m.name for m in task.metrics] == NAMES
    assert all(not m.higher_is_better for m in task.metrics)  # every one is an error
    assert task.monitor_metric.key == "val/minADE@6" and task.monitor_metric.mode == "min"
    assert task.metric("MR@6").unit == "%" and task.metric("minFDE@6").unit == "m"
    assert FORECASTING_REGRESSIONS == REGRESSIONS


@pytest.mark.parametrize("override, words", [
    ("task.ks=[0, 6]", ["task.ks", "distinct positive"]),
    ("task.monitor=accuracy", ["task.monitor='accuracy'", "minFDE@6"]),
    ("task.regression=huber", ["huber", "smooth_l1, l2"]),
    ("task.miss_threshold=0", ["task.miss_threshold"]),
])
def test_bad_task_config_names_the_fix(override, words):
    with pytest.raises(ConfigError) as e:
        load_config(None, [*BASE, override])
    for w in words:
        assert w in str(e.value)


def _outputs(b: int, seed: int = 0) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(seed)
    outputs = {"trajectories": torch.randn(b, 6, 30, 2, generator=gen) * 3,
               "logits": torch.randn(b, 6, generator=gen)}
    targets = {"future": torch.randn(b, 30, 2, generator=gen) * 3,
               "has_future": torch.rand(b, generator=gen) > 0.2}
    return outputs, targets


def test_epoch_metrics_from_uneven_batches_equal_the_whole_split():
    task = ForecastingTask()
    outputs, targets = _outputs(23)
    whole = task.epoch_metrics(task.batch_sums(outputs, targets))
    sums: dict = {}
    for part in (slice(0, 5), slice(5, 6), slice(6, 23)):  # batches of 5, 1 and 17 scenes
        s = task.batch_sums({k: v[part] for k, v in outputs.items()}, {k: v[part] for k, v in targets.items()})
        for k, v in s.items():
            sums[k] = sums.get(k, 0.0) + v.float()  # the engine adds float32 sums
    parts = task.epoch_metrics(sums)
    reference = ForecastingMetrics()(outputs["trajectories"], outputs["logits"].softmax(-1), targets["future"],
                                     targets["has_future"])
    scored = targets["has_future"]
    for name in NAMES[:-1]:
        assert parts[name] == pytest.approx(whole[name], rel=1e-5)
        assert whole[name] == pytest.approx(reference[name][scored].mean().item(), rel=1e-6)
    # a mean of per-batch means would weigh the single-scene batch like the 17-scene one
    assert set(whole) == set(NAMES)


def test_loss_is_the_winner_takes_all_loss():
    from lm4vis.hosts.vectornet import forecasting_loss

    task = ForecastingTask(regression="l2", classification_weight=0.5)
    outputs, targets = _outputs(4)
    expected = forecasting_loss(outputs["trajectories"], outputs["logits"], targets["future"],
                                targets["has_future"], "l2", 0.5)["loss"]
    assert task.loss(outputs, targets, train=True).item() == pytest.approx(expected.item())


def test_a_batch_of_only_skipped_scenes_trains_nothing_and_counts_nothing():
    task = ForecastingTask()
    model = torch.nn.Linear(2, 2)
    batch = task.collate([])  # what the collate leaves when every scene was skipped
    assert batch == {"skipped": {}} and task.batch_size(batch) == 0
    outputs, targets = task.forward(model, batch, train=True)
    loss = task.loss(outputs, targets, train=True)
    loss.backward()
    assert loss.item() == 0 and model.weight.grad is not None and not model.weight.grad.any()
    assert float(task.batch_sums(outputs, targets)["count"]) == 0
    assert task.epoch_metrics({"count": torch.tensor(0.0), "loss": torch.tensor(0.0)}) == {}


def _straight_batch(speed: float, hz: float, obs: int, noise: float = 0.0) -> dict:
    """One focal track driving +x at ``speed`` m/s, as the vectorisation writes it."""
    from lm4vis.data.motion.vectorize import FEATURES

    x = (torch.arange(obs, dtype=torch.float64) - (obs - 1)) * speed / hz
    x = x + noise * torch.randn(obs, dtype=torch.float64)
    vectors = torch.zeros(1, 1, obs - 1, len(FEATURES))
    vectors[0, 0, :, FEATURES.index("x_start")] = x[:-1].float()
    vectors[0, 0, :, FEATURES.index("x_end")] = x[1:].float()
    vectors[0, 0, :, FEATURES.index("time")] = ((torch.arange(1, obs) - (obs - 1)) / hz).float()
    return {"vectors": vectors, "vector_mask": torch.zeros(1, 1, obs - 1, dtype=torch.bool)}


def test_constant_velocity_extrapolates_a_straight_track():
    forecast = constant_velocity(_straight_batch(speed=12.0, hz=10.0, obs=20), pred_len=30, hz=10.0)
    assert forecast.shape == (1, 1, 30, 2)
    expected = torch.stack([torch.arange(1, 31) * 1.2, torch.zeros(30)], dim=1)
    torch.testing.assert_close(forecast[0, 0], expected, atol=1e-4, rtol=1e-5)
    # averaged over 1 s, 5 cm of noise moves the 3 s endpoint far less than one noisy step would
    gen_forecast = constant_velocity(_straight_batch(12.0, 10.0, 20, noise=0.05), 30, 10.0)
    assert abs(gen_forecast[0, 0, -1, 0].item() - 36.0) < 0.75
    assert math.isfinite(gen_forecast.sum().item())
