"""VectorNet: masks make padding invisible, the LM slot takes a block, training learns, and the
simulator's futures are multi-modal enough that six modes beat one."""

from __future__ import annotations

import pytest
import torch

from lm4vis.block import FrozenLMBlock
from lm4vis.data.motion import SimTraffic, SimTrafficDataConfig
from lm4vis.hosts.vectornet import VectorNet, VectorNetConfig, forecasting_loss
from lm4vis.lm import random_lm, tiny_config
from lm4vis.tasks.forecasting_metrics import ForecastingMetrics

DECODERS = ["mlp", "queries"]
SLOTS = ["empty", "frozen-lm"]


@pytest.fixture(scope="module")
def sim() -> SimTraffic:
    return SimTraffic(SimTrafficDataConfig(num_val=8, cache=False), "val")


@pytest.fixture(scope="module")
def batch(sim: SimTraffic) -> dict:
    return sim.collate([sim[i] for i in range(8)])


def _model(sim: SimTraffic, decoder: str, slot: str = "empty", **kw) -> VectorNet:
    torch.manual_seed(0)
    model = VectorNet(VectorNetConfig.from_info(sim.info, embed_dim=32, decoder=decoder, **kw))
    if slot == "frozen-lm":
        model.lm_slot.fill(FrozenLMBlock(random_lm(tiny_config("llama"), [1]), in_dim=model.embed_dim))
    return model.eval()


def _run(model: VectorNet, batch: dict) -> dict:
    return model(batch["vectors"], batch["vector_mask"], batch["polyline_mask"])


def _pad(batch: dict, polylines: int, vectors: int) -> dict:
    """The batch with extra padding polylines and vectors, filled with garbage, not zeros: only
    the masks may keep them out."""
    b, p, v, f = batch["vectors"].shape
    gen = torch.Generator().manual_seed(1)
    out = dict(batch)
    out["vectors"] = torch.randn(b, p + polylines, v + vectors, f, generator=gen) * 100
    out["vectors"][:, :p, :v] = batch["vectors"]
    out["vector_mask"] = torch.ones(b, p + polylines, v + vectors, dtype=torch.bool)
    out["vector_mask"][:, :p, :v] = batch["vector_mask"]
    out["vectors"][:, :p, :v][batch["vector_mask"]] = 1e3  # padding inside real polylines too
    out["polyline_mask"] = torch.ones(b, p + polylines, dtype=torch.bool)
    out["polyline_mask"][:, :p] = batch["polyline_mask"]
    return out


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("decoder", DECODERS)
def test_shapes(sim, batch, decoder, slot):
    out = _run(_model(sim, decoder, slot), batch)
    assert out["trajectories"].shape == (8, 6, sim.info.pred_len, 2) and out["logits"].shape == (8, 6)
    assert torch.isfinite(out["trajectories"]).all() and torch.isfinite(out["logits"]).all()


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("decoder", DECODERS)
def test_padding_changes_no_prediction(sim, batch, decoder, slot):
    model = _model(sim, decoder, slot)
    with torch.no_grad():
        base, padded = _run(model, batch), _run(model, _pad(batch, polylines=5, vectors=3))
    for key in base:
        torch.testing.assert_close(padded[key], base[key], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("decoder", DECODERS)
def test_the_order_of_other_polylines_does_not_matter(sim, batch, decoder):
    model = _model(sim, decoder)
    p = batch["vectors"].shape[1]
    others = torch.randperm(p - 1, generator=torch.Generator().manual_seed(2)) + 1
    order = torch.cat([torch.zeros(1, dtype=torch.long), others])  # the focal agent stays first
    shuffled = {k: batch[k][:, order] for k in ("vectors", "vector_mask", "polyline_mask")}
    with torch.no_grad():
        base, moved = _run(model, batch), _run(model, shuffled)
    for key in base:
        torch.testing.assert_close(moved[key], base[key], atol=1e-5, rtol=1e-5)


def test_a_filled_slot_changes_the_forecast_and_keeps_its_weights_frozen(sim, batch):
    empty, filled = _model(sim, "mlp"), _model(sim, "mlp", "frozen-lm")
    with torch.no_grad():
        assert not torch.allclose(_run(empty, batch)["trajectories"], _run(filled, batch)["trajectories"])
    filled.train()
    out = _run(filled, batch)
    forecasting_loss(out["trajectories"], out["logits"], batch["future"])["loss"].backward()
    block = filled.lm_slot.block
    assert block.proj_in.weight.grad is not None and filled.subgraph.proj_out.weight.grad is not None
    assert all(p.grad is None for p in block.lm.parameters())


@pytest.mark.parametrize("decoder", DECODERS)
def test_training_on_a_fixed_batch_lowers_the_loss(sim, batch, decoder):
    model = _model(sim, decoder).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = _run(model, batch)
        loss = forecasting_loss(out["trajectories"], out["logits"], batch["future"], batch["has_future"])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses


def test_loss_regresses_the_mode_that_ends_nearest():
    future = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    # mode 0 is closer on average (ADE 1.5) but ends 3 m off; mode 1 ends 2 m off (ADE 3)
    trajectories = torch.tensor([[[[1.0, 0.0], [2.0, 3.0]], [[1.0, 4.0], [2.0, 2.0]]]], requires_grad=True)
    logits = torch.zeros(1, 2, requires_grad=True)
    out = forecasting_loss(trajectories, logits, future, regression="l2")
    assert out["best_mode"].tolist() == [1]
    # squared error summed over x, y and averaged over the 2 steps: (16 + 4) / 2; CE at uniform: ln 2
    assert out["regression"].item() == pytest.approx(10.0)
    assert out["classification"].item() == pytest.approx(0.6931, abs=1e-4)
    out["loss"].backward()
    assert (trajectories.grad[0, 0] == 0).all() and (trajectories.grad[0, 1] != 0).any()  # winner takes all
    assert logits.grad[0, 1] < 0 < logits.grad[0, 0]  # and the confidence moves to the winner


def test_loss_ignores_scenes_without_future():
    gen = torch.Generator().manual_seed(0)
    trajectories = torch.randn(3, 6, 30, 2, generator=gen, requires_grad=True)
    logits, future = torch.randn(3, 6, generator=gen), torch.randn(3, 30, 2, generator=gen)
    has_future = torch.tensor([True, False, True])
    out = forecasting_loss(trajectories, logits, future, has_future)
    kept = forecasting_loss(trajectories[[0, 2]], logits[[0, 2]], future[[0, 2]])
    assert out["loss"].item() == pytest.approx(kept["loss"].item())
    out["loss"].backward()
    assert (trajectories.grad[1] == 0).all()
    with pytest.raises(ValueError, match="smooth_l1, l2"):
        forecasting_loss(trajectories, logits, future, regression="huber")


@pytest.mark.parametrize("kwargs, message", [
    (dict(embed_dim=30, num_heads=4), "divisible"),
    (dict(decoder="rnn"), "mlp, queries"),
    (dict(num_modes=0), "num_modes"),
    (dict(dropout=1.0), "dropout"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VectorNetConfig(**kwargs)


def test_wrong_feature_count_names_the_fix(sim, batch):
    model = VectorNet(VectorNetConfig(in_features=sim.info.num_features + 1, embed_dim=32))
    with pytest.raises(ValueError, match="from_info"):
        _run(model, batch)


@pytest.mark.slow
def test_six_modes_beat_one_on_the_simulators_intersections():
    """The focal agent's turn is random: one trajectory must average the turns, six can cover
    them. Trained for 150 steps on 256 intersection scenes (about 30 s of CPU)."""
    cfg = SimTrafficDataConfig(layouts=["intersection"], num_train=256, num_val=64, cache=False)
    train, val = SimTraffic(cfg, "train"), SimTraffic(cfg, "val")
    items = [train[i] for i in range(len(train))]
    held_out = val.collate([val[i] for i in range(len(val))])
    metrics = ForecastingMetrics(ks=(6,))
    min_fde = {}
    for k in (1, 6):
        torch.manual_seed(0)
        model = VectorNet(VectorNetConfig.from_info(train.info, num_modes=k, embed_dim=32, subgraph_depth=2))
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        gen = torch.Generator().manual_seed(0)
        for _ in range(150):
            b = train.collate([items[i] for i in torch.randint(len(items), (32,), generator=gen).tolist()])
            out = _run(model, b)
            loss = forecasting_loss(out["trajectories"], out["logits"], b["future"])["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            out = _run(model.eval(), held_out)
        scores = metrics(out["trajectories"], out["logits"].softmax(-1), held_out["future"])
        min_fde[k] = metrics.reduce({name: v.sum() for name, v in scores.items()})["minFDE@6"]
    assert min_fde[6] < 0.85 * min_fde[1], min_fde
