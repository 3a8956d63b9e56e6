"""The registered ``vectornet`` host: typed config, checks against the data, every variant
learning through `build_model`, and the key-padding mask reaching the LM block in the slot."""

from __future__ import annotations

import pytest
import torch

from lm4vis.hosts import build_model
from lm4vis.hosts.configs import VARIANTS, VECTORNET_DECODERS, VECTORNET_TRAJECTORIES, VectorNetHostConfig
from lm4vis.hosts.vectornet import DECODERS, TRAJECTORIES, VectorNet
from lm4vis.registry import HOSTS
from lm4vis.train.config import ConfigError, load_config
from lm4vis.train.datamodule import build_source, prepare_config

TINY = ["host.kind=vectornet", "host.embed_dim=32", "host.subgraph_depth=2", "host.num_heads=2",
        "data.name=sim-traffic", "data.num_train=16", "data.num_val=16", "data.batch_size=8",
        "data.max_agents=6", "data.lane_radius=25", "data.cache=false", "task.name=forecasting"]


@pytest.fixture(scope="module")
def run_cfg(tiny_llama):
    return load_config(None, [*TINY, f"block.source={tiny_llama}"])


@pytest.fixture(scope="module")
def source(run_cfg):
    return build_source(run_cfg)


@pytest.fixture(scope="module")
def batch(source, run_cfg):
    from lm4vis.tasks.base import build_task

    task = build_task(run_cfg, source.info)
    train = source.dataset("train", train=True)
    return task.collate([train[i] for i in range(8)])


def _model(run_cfg, source, variant: str, **host):
    cfg = run_cfg.replace({"block.variant": variant, **{f"host.{k}": v for k, v in host.items()}})
    return build_model(cfg.host, cfg.block, seed=0, info=source.info)


def _forward(model, batch):
    return model(batch["vectors"], batch["vector_mask"], batch["polyline_mask"])


def test_registration_types_the_host_section():
    part = HOSTS.get("vectornet")
    assert part.config is VectorNetHostConfig
    cfg = load_config(None, [*TINY, "host.num_modes=8", "host.decoder=queries", "host.mlp_ratio=3"])
    assert isinstance(cfg.host, VectorNetHostConfig)
    assert (cfg.host.num_modes, cfg.host.decoder, cfg.host.mlp_ratio) == (8, "queries", 3.0)
    assert "VectorNet (width 32" in part.get("describe")(cfg.host)
    # the light config's choices are the model's own
    assert VECTORNET_DECODERS == DECODERS and VECTORNET_TRAJECTORIES == TRAJECTORIES


@pytest.mark.parametrize("override, words", [
    ("host.embed_dim=31", ["host.embed_dim=31", "divisible", "host.num_heads=2"]),
    ("host.decoder=rnn", ["host.decoder='rnn'", "mlp, queries"]),
    ("host.trajectory=speeds", ["host.trajectory", "positions, steps"]),
    ("host.num_modes=4", ["task.ks=[1, 6]", "host.num_modes=6"]),
    ("host.widht=3", ["host.widht", "valid keys of host", "embed_dim"]),
    ("host.depth=two", ["host.depth='two' must be an integer"]),
])
def test_bad_host_config_names_the_fix(override, words):
    with pytest.raises(ConfigError) as e:
        load_config(None, [*TINY, override])
    for w in words:
        assert w in str(e.value)


def test_check_data_refuses_an_image_dataset():
    from lm4vis.hosts.vectornet import check_data

    class ImageInfo:
        name, num_classes, in_chans = "fashion-mnist", 10, 1

    with pytest.raises(ConfigError, match="motion dataset"):
        check_data(VectorNetHostConfig(), ImageInfo())


def test_model_is_sized_by_the_data(run_cfg, source):
    model = _model(run_cfg, source, "baseline")
    assert isinstance(model, VectorNet)
    assert model.cfg.in_features == source.info.num_features and model.cfg.horizon == source.info.pred_len
    prepare_config(run_cfg, source)  # check_data passes on the simulator


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_training_step_lowers_the_loss_for_every_variant(run_cfg, source, batch, variant):
    from lm4vis.tasks.forecasting import ForecastingTask

    model = _model(run_cfg, source, variant).train()
    task = ForecastingTask()
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert (variant in ("frozen-lm", "frozen-ffn", "random-lm")) == bool(frozen)
    optimizer = torch.optim.AdamW(trainable, lr=3e-3)
    losses = []
    for _ in range(8):
        loss = task.loss(*task.forward(model, batch, train=True), train=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n  # frozen LM weights never move


def _pad(batch: dict, polylines: int, vectors: int) -> dict:
    """Extra padding polylines and vectors full of large garbage: only the masks keep them out."""
    b, p, v, f = batch["vectors"].shape
    gen = torch.Generator().manual_seed(1)
    out = dict(batch)
    out["vectors"] = torch.randn(b, p + polylines, v + vectors, f, generator=gen) * 100
    out["vectors"][:, :p, :v] = torch.where(batch["vector_mask"][..., None], 1e3, batch["vectors"])
    out["vector_mask"] = torch.ones(b, p + polylines, v + vectors, dtype=torch.bool)
    out["vector_mask"][:, :p, :v] = batch["vector_mask"]
    out["polyline_mask"] = torch.ones(b, p + polylines, dtype=torch.bool)
    out["polyline_mask"][:, :p] = batch["polyline_mask"]
    return out


@pytest.mark.parametrize("decoder", ["mlp", "queries"])
def test_padding_changes_no_prediction_and_the_lm_block_sees_the_mask(run_cfg, source, batch, decoder):
    model = _model(run_cfg, source, "frozen-lm", decoder=decoder).eval()
    assert model.lm_slot.filled
    seen = []
    handle = model.lm_slot.block.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    padded = _pad(batch, polylines=4, vectors=3)
    with torch.no_grad():
        base, more = _forward(model, batch), _forward(model, padded)
    handle.remove()
    for key in base:
        torch.testing.assert_close(more[key], base[key], atol=1e-5, rtol=1e-5)
    assert torch.equal(seen[0], batch["polyline_mask"]) and torch.equal(seen[1], padded["polyline_mask"])
    assert seen[1][:, -4:].all()  # the added polylines were masked as padding in the LM block
    # The mask is what keeps them out: the same block handed no mask changes the forecast.
    handle = model.lm_slot.block.register_forward_pre_hook(lambda m, args: (args[0], None))
    with torch.no_grad():
        unmasked = _forward(model, padded)
    handle.remove()
    assert not torch.allclose(unmasked["trajectories"], base["trajectories"], atol=1e-3)


def test_stages_name_real_modules(run_cfg, source):
    from lm4vis.analysis.hooks import available_stages

    model = _model(run_cfg, source, "frozen-lm")
    stages = HOSTS.get("vectornet").get("stages")(model)
    for path, _ in stages.values():
        model.get_submodule(path)
    assert available_stages(model) == ["pre_proj_in", "post_lm", "post_proj_out", "last_block", "post_norm"]
