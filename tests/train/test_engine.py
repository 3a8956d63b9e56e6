"""The engine's parts: parameter counts per variant, optimizer groups, schedule, sampler,
a short run that learns, frozen weights untouched, and the NaN stop."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from lm4vis.hosts import VARIANTS, build_model
from lm4vis.lm.layers import LMStack
from lm4vis.train.datamodule import EpochSampler
from lm4vis.train.optim import WarmupCosine, group_names
from lm4vis.train.run import train

# variant -> (LM layers trainable?, LM layers present?)
EXPECTED = {
    "baseline": (None, False),
    "frozen-lm": (False, True),
    "frozen-ffn": (False, True),
    "random-lm": (False, True),
    "finetune-lm": (True, True),
    "mlp": (None, False),
}


def _counts(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_parameter_counts(tiny_cfg, variant):
    base = build_model(tiny_cfg.host, tiny_cfg.block.__class__(variant="baseline"), seed=0)
    host_params = sum(p.numel() for p in base.parameters())
    cfg = tiny_cfg.replace({"block.variant": variant})
    model = build_model(cfg.host, cfg.block, seed=0)
    trainable, frozen = _counts(model)
    if variant == "baseline":
        assert (trainable, frozen) == (host_params, 0)
        return
    block = model.lm_block
    lm_dim, width = block.lm_dim, cfg.host.kwargs["embed_dim"]
    adapters = 2 * lm_dim * width  # proj_in and proj_out, no bias
    layer_params = block.lm_config.layer_params()  # one layer
    lm_trainable, lm_present = EXPECTED[variant]
    if variant == "mlp":
        assert frozen == 0
        mlp = trainable - host_params - adapters
        assert abs(mlp - layer_params) / layer_params < 0.01
    elif variant == "frozen-ffn":  # the FFN sub-layer and its norm, frozen; no attention
        from lm4vis.lm.layers import LMLayer

        full = LMLayer(block.lm_config)
        ffn = sum(p.numel() for m in (full.mlp, full.mlp_norm) for p in m.parameters())
        assert (trainable, frozen) == (host_params + adapters, ffn)
    elif lm_trainable:
        assert (trainable, frozen) == (host_params + adapters + layer_params, 0)
    else:
        assert (trainable, frozen) == (host_params + adapters, layer_params)
    assert isinstance(block.lm, LMStack) == lm_present


def test_host_init_identical_across_variants(tiny_cfg):
    states = {}
    for variant in ("baseline", "frozen-lm", "mlp"):
        cfg = tiny_cfg.replace({"block.variant": variant, "seed": 3})
        model = build_model(cfg.host, cfg.block, seed=cfg.seed)
        states[variant] = {k: v for k, v in model.state_dict().items() if not k.startswith("lm_block.")}
    base = states["baseline"]
    for variant in ("frozen-lm", "mlp"):
        assert states[variant].keys() == base.keys()
        assert all(torch.equal(states[variant][k], base[k]) for k in base)
    other_seed = build_model(tiny_cfg.host, tiny_cfg.block, seed=4).state_dict()
    assert not torch.equal(other_seed["patch_embed.proj.weight"], base["patch_embed.proj.weight"])


def test_param_groups_by_structure(tiny_cfg):
    model = build_model(tiny_cfg.host, tiny_cfg.block, seed=0)
    groups = group_names(model)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    named = dict(model.named_parameters())
    assert frozen and not frozen & (set(groups["decay"]) | set(groups["no_decay"]))
    for name in ("pos_embed", "cls_token"):  # the host's no_weight_decay(), rank > 1
        assert name in groups["no_decay"] and named[name].ndim > 1
    assert all(named[n].ndim <= 1 or n in ("pos_embed", "cls_token") for n in groups["no_decay"])
    assert all(named[n].ndim >= 2 for n in groups["decay"])
    assert {"lm_block.proj_in.weight", "lm_block.proj_out.weight"} <= set(groups["decay"])


@pytest.mark.parametrize("step, expected", [
    (0, 0.25), (3, 1.0),                      # linear warm-up over 4 steps
    (4, 1.0), (9, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 10))), (14, 0.1), (20, 0.1),
])
def test_warmup_cosine(step, expected):
    assert WarmupCosine(warmup=4, total=14, min_ratio=0.1)(step) == pytest.approx(expected)


def test_sampler_order_depends_on_seed_and_epoch_only():
    a = list(EpochSampler(10, seed=1, epoch=2))
    assert a == list(EpochSampler(10, seed=1, epoch=2))
    assert a != list(EpochSampler(10, seed=1, epoch=3)) and a != list(EpochSampler(10, seed=2, epoch=2))
    assert sorted(a) == list(range(10))
    ranks = [list(EpochSampler(10, seed=1, epoch=2, rank=r, world_size=3)) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4]  # padded so that ranks step together
    assert set(sum(ranks, [])) == set(range(10))
    evals = [list(EpochSampler(10, shuffle=False, rank=r, world_size=3, pad=False)) for r in range(3)]
    assert sorted(sum(evals, [])) == list(range(10))  # every item exactly once


def test_short_run_learns_and_keeps_frozen_weights(tiny_cfg, factory):
    cfg = tiny_cfg.replace({"trainer.max_epochs": 4, "run_name": "learn"})
    before = build_model(cfg.host, cfg.block, seed=cfg.seed).lm_block.lm.state_dict()
    summary = train(cfg)
    assert summary["status"] == "completed"
    hist = summary["history"]
    assert len(hist) == 4
    assert hist[-1]["train/epoch_loss"] < hist[0]["train/epoch_loss"] - 0.05
    assert hist[-1]["val/loss"] < hist[0]["val/loss"]
    assert summary["final"]["val/acc"] > 0.5  # 4 classes: chance is 0.25
    from lm4vis.train.loading import load_run

    model, _ = load_run(summary["run_dir"])
    after = model.lm_block.lm.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert summary["params"]["frozen"] == model.lm_block.frozen_params


class _Poison(L.Callback):
    """Turns one weight into NaN, as a diverging run would."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 2:
            with torch.no_grad():
                pl_module.model.head.weight.fill_(float("nan"))


def test_nan_loss_stops_the_run(tiny_cfg, factory):
    summary = train(tiny_cfg.replace({"run_name": "nan"}), callbacks=[_Poison()])
    assert summary["status"] == "failed"
    assert summary["steps"] == 2  # stopped before the poisoned step's update
    for words in ("non-finite", "optim.lr", "OPT"):
        assert words in summary["error"]
    from lm4vis.train.folders import read_summary

    assert read_summary(summary["run_dir"])["status"] == "failed"


class _RecordBatches(L.Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[float, list[int]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        images, labels = batch[0], batch[1]
        self.seen.append((round(float(images.double().sum()), 6), labels.tolist()))


def test_same_seed_same_batches_across_variants(tiny_cfg, factory):
    """Same seed: identical (augmented) batches for every variant; another seed: others."""
    cfg = tiny_cfg.replace({"trainer.max_epochs": 1, "data.crop": "padded", "data.hflip": 0.5})
    seen = {}
    for variant, seed in (("baseline", 0), ("mlp", 0), ("baseline", 1)):
        rec = _RecordBatches()
        train(cfg.replace({"block.variant": variant, "seed": seed, "run_name": f"{variant}-{seed}"}),
              callbacks=[rec])
        seen[variant, seed] = rec.seen
    assert len(seen["baseline", 0]) == 4
    assert seen["baseline", 0] == seen["mlp", 0]
    assert seen["baseline", 0] != seen["baseline", 1]


def test_bf16_mixed_precision_runs(tiny_cfg, factory):
    cfg = tiny_cfg.replace({"trainer.precision": "bf16-mixed", "trainer.max_epochs": 1, "run_name": "bf16"})
    summary = train(cfg)
    assert summary["status"] == "completed" and summary["precision"] == "bf16-mixed"
    assert math.isfinite(summary["final"]["val/loss"])


class _SeeCompiled(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.compiled = pl_module.model.lm_block._compiled_call_impl is not None


def test_compiled_block_trains_like_the_eager_one(tiny_cfg, factory):
    """trainer.compile: the block really is compiled, the run matches the eager run to float
    tolerance, and its checkpoint loads into an eager model (state-dict keys unchanged)."""
    from lm4vis.train.loading import load_run

    cfg = tiny_cfg.replace({"trainer.max_epochs": 1})
    eager = train(cfg.replace({"run_name": "eager"}))
    seen = _SeeCompiled()
    compiled = train(cfg.replace({"run_name": "compiled", "trainer.compile": True}),
                     callbacks=[seen])
    assert seen.compiled
    assert compiled["status"] == "completed"
    assert compiled["final"]["val/loss"] == pytest.approx(eager["final"]["val/loss"], rel=1e-3)
    model_e, _ = load_run(eager["run_dir"])
    model_c, _ = load_run(compiled["run_dir"])
    assert model_c.lm_block._compiled_call_impl is None  # loading builds an eager model
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(model_c(x), model_e(x), atol=1e-3, rtol=1e-3)
