"""capture(): reads without changing anything, removes every hook, and its attention is right."""

import pytest
import torch
from analysis_helpers import tiny_vit

from lm4vis.analysis import attention_points, available_stages, capture
from lm4vis.analysis.hooks import timm_attention_probs


def hook_state(model):
    return {name: (tuple(m._forward_hooks), tuple(m._forward_pre_hooks))
            for name, m in model.named_modules()}


MODELS = {
    "baseline": dict(lm=False),
    "lm_last": dict(lm=True),
    "lm_middle": dict(lm=True, where="middle", depth=4),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_outputs_bit_identical_and_hooks_removed(name):
    model = tiny_vit(**MODELS[name])
    x = torch.randn(3, 1, 32, 32)
    before = hook_state(model)
    with torch.no_grad():
        ref = model(x)
        with capture(model) as cap:
            out = model(x)
    assert torch.equal(out, ref)
    assert hook_state(model) == before
    assert set(cap.features) == set(available_stages(model))
    assert set(cap.attention) == {p.name for p in attention_points(model)}


def test_baseline_has_no_hook_left_even_after_an_exception():
    model = tiny_vit(lm=False)
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model):
            assert any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
            raise RuntimeError("boom")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_attached_model_keeps_only_its_own_hook_after_an_exception():
    model = tiny_vit(lm=True)
    before = hook_state(model)
    with pytest.raises(AssertionError, match="doesn't match model"):
        with capture(model):
            model(torch.randn(1, 1, 31, 31))  # wrong size: timm asserts inside the context
    assert hook_state(model) == before


STAGES = {
    "baseline": ["last_block", "post_norm"],
    "lm_last": ["pre_proj_in", "post_lm", "post_proj_out", "post_norm"],
    "lm_middle": ["pre_proj_in", "post_lm", "post_proj_out", "last_block", "post_norm"],
}


@pytest.mark.parametrize("name", list(MODELS))
def test_stages_per_model(name):
    assert available_stages(tiny_vit(**MODELS[name])) == STAGES[name]


def test_stage_values_are_the_modules_inputs_and_outputs():
    model = tiny_vit(lm=True)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad(), capture(model) as cap:
        model(x)
        block = model.lm_block
        tokens = model.blocks(model.norm_pre(model._pos_embed(model.patch_embed(x))))
    torch.testing.assert_close(cap.features["post_proj_out"], tokens)
    torch.testing.assert_close(cap.features["post_lm"], block.lm(block.proj_in(cap.features["pre_proj_in"])))
    torch.testing.assert_close(cap.features["post_norm"], model.norm(tokens))


def test_unknown_stage_names_the_available_ones():
    with pytest.raises(ValueError, match="available: last_block, post_norm"):
        with capture(tiny_vit(lm=False), stages=["post_lm"]):
            pass


def test_host_attention_matches_timm_unfused_path():
    model = tiny_vit(lm=False)
    attn = model.blocks[-1].attn
    attn.fused_attn = False  # timm's explicit path computes the probabilities; read them there
    seen = {}
    handle = attn.attn_drop.register_forward_hook(lambda m, a, out: seen.setdefault("p", out))
    with torch.no_grad(), capture(model) as cap:
        model(torch.randn(2, 1, 32, 32))
    handle.remove()
    torch.testing.assert_close(cap.attention["host_attn"], seen["p"])


def test_lm_attention_is_a_distribution_over_keys():
    model = tiny_vit(lm=True)
    with torch.no_grad(), capture(model) as cap:
        model(torch.randn(2, 1, 32, 32))
    probs = cap.attention["lm_attn.0"]
    heads = model.lm_block.lm.config.num_heads
    assert probs.shape == (2, heads, 65, 65)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, heads, 65))


def test_timm_attention_probs_masks():
    model = tiny_vit(lm=False)
    x = torch.randn(1, 5, model.embed_dim)
    mask = torch.ones(5, 5, dtype=torch.bool)
    mask[:, -1] = False  # nobody may attend to the last token
    probs = timm_attention_probs(model.blocks[0].attn, x, mask)
    assert torch.all(probs[..., -1] == 0)
