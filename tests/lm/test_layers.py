"""The shared layer stack: bidirectional, padding-aware, frozen, dtype-preserving."""

from __future__ import annotations

import copy

import pytest
import torch

from lm4vis.lm import LMAttention, LMStack, random_lm, tiny_config
from lm4vis.lm.config import SUPPORTED_FAMILIES
import lm4vis.lm.layers as layers_mod
from lm4vis.lm.layers import rope_tables

# Every family's tiny config, plus the variants that take another code path.
CONFIGS = {
    **{family: {} for family in SUPPORTED_FAMILIES},
    "opt_post_norm": dict(family="opt", norm_position="post"),
    "gpt_neox_sequential": dict(family="gpt_neox", parallel_residual=False),
    "gemma_softcap": dict(family="gemma", attn_softcap=2.0),  # the non-SDPA attention path
    "llama_qk_norm_bias": dict(family="llama", qk_norm=True, qkv_bias=True, o_bias=True, mlp_bias=True),
}


def _config(name: str):
    overrides = dict(CONFIGS[name])
    family = overrides.pop("family", name)
    return tiny_config(family, **overrides)


@torch.no_grad()
def _stack(name: str, layers: int = 2) -> LMStack:
    """A random stack whose norms and biases are off their identity values too."""
    config = _config(name)
    stack = random_lm(config, range(layers), seed=0)
    gen = torch.Generator().manual_seed(1)
    for p in stack.parameters():
        p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return stack


ROTARY = [name for name in CONFIGS if _config(name).rope_theta is not None]


@pytest.fixture(params=list(CONFIGS))
def name(request) -> str:
    return request.param


def test_bidirectional(name):
    stack = _stack(name)
    x = torch.randn(2, 6, stack.lm_dim)
    y = x.clone()
    y[:, -1] += torch.randn_like(y[:, -1])  # random: a constant shift is invisible to LayerNorm
    with torch.no_grad():
        change = (stack(x)[:, 0] - stack(y)[:, 0]).abs().max()
    assert change > 1e-4


def test_causal_switch_hides_later_tokens(name):
    stack = _stack(name)
    x = torch.randn(2, 6, stack.lm_dim)
    y = x.clone()
    y[:, -1] += torch.randn_like(y[:, -1])
    with torch.no_grad():
        torch.testing.assert_close(stack(x, causal=True)[:, :-1], stack(y, causal=True)[:, :-1])


@pytest.mark.parametrize("name", ROTARY)
def test_identity_rotary_is_no_rotary(name):
    stack = _stack(name)
    x = torch.randn(2, 5, stack.lm_dim)
    cos, sin = rope_tables(stack.config, 5)
    with torch.no_grad():
        torch.testing.assert_close(stack(x, rope=(torch.ones_like(cos), torch.zeros_like(sin))), stack(x))
        assert (stack(x, rope=(cos, sin)) - stack(x)).abs().max() > 1e-4


def test_key_padding_mask(name):
    stack = _stack(name)
    valid, padded = 4, 3
    x = torch.randn(2, valid + padded, stack.lm_dim)
    mask = torch.zeros(2, valid + padded, dtype=torch.bool)
    mask[:, valid:] = True  # True marks padding
    noisy = x.clone()
    noisy[:, valid:] = torch.randn(2, padded, stack.lm_dim) * 10
    with torch.no_grad():
        out = stack(x, mask)[:, :valid]
        torch.testing.assert_close(out, stack(noisy, mask)[:, :valid])
        torch.testing.assert_close(out, stack(x[:, :valid]), atol=1e-5, rtol=1e-5)
        # Without the mask the padding does leak in, so the checks above are not vacuous.
        assert (stack(noisy)[:, :valid] - out).abs().max() > 1e-4


def _hf_attention_mask(n: int) -> torch.Tensor:
    keep = torch.ones(2, n, dtype=torch.long)
    keep[1, -2:] = 0
    return keep


_CONVENTION = r"boolean tensor of shape \(B, N\), True where a token is padding; got "


@pytest.mark.parametrize("make_mask, error, match", [
    pytest.param(lambda n: _hf_attention_mask(n), TypeError,
                 _CONVENTION + r"a torch\.int64 tensor.*attention_mask \(1 = keep\) is the inverse: "
                 r"pass attention_mask == 0", id="hf-attention-mask"),
    pytest.param(lambda n: _hf_attention_mask(n).float(), TypeError,
                 _CONVENTION + r"a torch\.float32 tensor.*attention_mask == 0", id="float"),
    pytest.param(lambda n: _hf_attention_mask(n).to(torch.uint8), TypeError,
                 _CONVENTION + r"a torch\.uint8 tensor.*attention_mask == 0", id="uint8"),
    pytest.param(lambda n: [[False] * n] * 2, TypeError, _CONVENTION + "a list", id="list"),
    pytest.param(lambda n: torch.zeros(2, n + 1, dtype=torch.bool), ValueError,
                 r"shape \(2, 7\).*must be \(B, N\) = \(2, 6\)", id="longer"),
    pytest.param(lambda n: torch.zeros(2, 1, n, dtype=torch.bool), ValueError,
                 r"shape \(2, 1, 6\).*must be \(B, N\) = \(2, 6\)", id="rank-3"),
    pytest.param(lambda n: torch.zeros(1, n, dtype=torch.bool), ValueError,
                 r"shape \(1, 6\).*must be \(B, N\) = \(2, 6\)", id="broadcast-batch"),
])
def test_key_padding_mask_outside_the_convention_is_refused(make_mask, error, match):
    stack = _stack("llama")
    with pytest.raises(error, match=match):
        stack(torch.randn(2, 6, stack.lm_dim), make_mask(6))


def _ffn_sublayer_by_hand(layer, x: torch.Tensor, style: str) -> torch.Tensor:
    if style == "post-norm":
        return layer.mlp_norm(x + layer.mlp(x))
    h = layer.mlp(layer.mlp_norm(x))
    return x + (layer.post_mlp_norm(h) if style == "sandwich" else h)


@pytest.mark.parametrize("name, style", [
    ("llama", "pre-norm"), ("gpt_neox", "parallel"), ("opt_post_norm", "post-norm"), ("gemma", "sandwich"),
])
def test_skip_attention_keeps_the_ffn_sublayer(name, style):
    config = _config(name)
    assert style == {(False, "pre", False): "pre-norm", (True, "pre", False): "parallel",
                     (False, "post", False): "post-norm", (False, "pre", True): "sandwich",
                     }[config.parallel_residual, config.norm_position, config.sandwich_norm]
    stack = _stack(name)
    x = torch.randn(2, 5, stack.lm_dim)
    expected = x
    with torch.no_grad():
        for layer in stack.layers:  # the original layers' own FFN modules, composed by hand
            expected = _ffn_sublayer_by_hand(layer, expected, style)
        torch.testing.assert_close(stack.without_attention()(x), expected)


def test_skip_attention_leaves_attention_out(name):
    stack = _stack(name)
    ffn = stack.without_attention()
    assert ffn.skip_attention and not any(isinstance(m, LMAttention) for m in ffn.modules())
    assert ffn.frozen and not any(p.requires_grad for p in ffn.parameters())
    # shared, not copied; the original keeps its attention
    shared = dict(stack.named_parameters())
    assert all(p.data_ptr() == shared[k].data_ptr() for k, p in ffn.named_parameters())
    assert sum(isinstance(m, LMAttention) for m in stack.modules()) == len(stack.layers)
    x = torch.randn(2, 6, stack.lm_dim)
    y = x.clone()
    y[:, -1] += torch.randn_like(y[:, -1])
    with torch.no_grad():
        # token-wise: what the other tokens hold no longer reaches a token
        torch.testing.assert_close(ffn(x)[:, :-1], ffn(y)[:, :-1])
        assert (stack(x)[:, :-1] - stack(y)[:, :-1]).abs().max() > 1e-4


def test_frozen_stack_stays_in_eval_mode(name):
    stack = _stack(name)
    stack.train()
    assert not stack.training and not any(m.training for m in stack.modules())
    assert not any(p.requires_grad for p in stack.parameters())
    stack.unfreeze().train()
    assert stack.training and all(p.requires_grad for p in stack.parameters())


def test_bf16_stack_takes_and_returns_fp32(name):
    stack = _stack(name)
    half = copy.deepcopy(stack).to(torch.bfloat16)
    x = torch.randn(2, 6, stack.lm_dim)
    with torch.no_grad():
        ref, got = stack(x), half(x)
    assert half.dtype == torch.bfloat16 and got.dtype == torch.float32
    relative = (got - ref).norm() / ref.norm()
    assert relative < 2e-2, f"bf16 deviates by {relative:.3%} from fp32"


@pytest.mark.parametrize("case", ["plain", "padding", "causal+padding"])
def test_attention_kernels_agree(name, case):
    """SDPA and the explicit-matmul kernel compute the same function, values and gradients."""
    stack = _stack(name)
    x = torch.randn(2, 7, stack.lm_dim)
    mask = None
    if case != "plain":
        mask = torch.zeros(2, 7, dtype=torch.bool)
        mask[0, 5:] = True  # padding differs per sample, so the mask's batch axis matters
    causal = case.startswith("causal")
    results = []
    for impl in ("sdpa", "matmul"):
        xi = x.clone().requires_grad_()
        out = stack.set_attention(impl)(xi, mask, causal=causal)
        out.square().sum().backward()
        results.append((out.detach(), xi.grad))
    (out_sdpa, grad_sdpa), (out_mm, grad_mm) = results
    torch.testing.assert_close(out_mm, out_sdpa, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_mm, grad_sdpa, atol=1e-4, rtol=1e-4)


def test_auto_attention_takes_matmuls_for_short_bf16_sequences_on_cpu(monkeypatch):
    import lm4vis.lm.layers as layers

    stack = copy.deepcopy(_stack("llama")).to(torch.bfloat16)  # grouped-query heads
    limit = layers.MATMUL_MAX_TOKENS[torch.bfloat16]
    calls = []
    sdpa = layers.F.scaled_dot_product_attention

    def counting_sdpa(*args, **kwargs):
        calls.append(args[0].shape[-2])
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(layers.F, "scaled_dot_product_attention", counting_sdpa)
    with torch.no_grad():
        for n in (3, limit, limit + 1):
            mask = torch.zeros(1, n, dtype=torch.bool)
            mask[0, n - 1:] = True
            stack(torch.randn(1, n, stack.lm_dim), mask)
        assert calls == [limit + 1] * 2  # both layers; the shorter inputs took matmuls
        calls.clear()
        stack.set_attention("sdpa")(torch.randn(1, 3, stack.lm_dim))
        assert calls == [3, 3]
        calls.clear()
        stack.set_attention("matmul")(torch.randn(1, limit + 1, stack.lm_dim))
        assert calls == []
        calls.clear()
        stack.float().set_attention("auto")(torch.randn(1, 3, stack.lm_dim))
        assert calls == [3, 3]  # fp32 keeps SDPA


def test_bf16_matmul_attention_close_to_fp32():
    stack = _stack("llama")
    half = copy.deepcopy(stack).to(torch.bfloat16).set_attention("matmul")
    x = torch.randn(2, 6, stack.lm_dim)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 4:] = True
    with torch.no_grad():
        ref, got = stack(x, mask), half(x, mask)
    relative = (got - ref).norm() / ref.norm()
    assert relative < 2e-2, f"bf16 matmul attention deviates by {relative:.3%} from fp32"


def test_unknown_attention_kernel_is_refused():
    with pytest.raises(ValueError, match="attention='flash'.*auto, sdpa, matmul"):
        _stack("llama").set_attention("flash")


@pytest.mark.parametrize("name", ["llama", "gemma", "gemma_softcap", "opt"])
def test_attention_weights_are_the_ones_applied(name):
    """The analysis reads `attention_weights`; they must be the probabilities the layer uses:
    rows sum to 1, padded keys get 0, and probs @ v gives the layer's attention output."""
    attn = _stack(name).layers[0].attn
    x = torch.randn(2, 6, attn.q_proj.in_features)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    probs = attn.attention_weights(x, pad)
    assert probs.shape == (2, attn.num_heads, 6, 6)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, attn.num_heads, 6))
    assert probs[1, :, :, 4:].abs().max() == 0
    with torch.no_grad():
        q, k, v = attn._qkv(x, None)
        groups = attn.num_heads // attn.num_kv_heads
        from_probs = probs @ v.repeat_interleave(groups, dim=1)
        keep = ~pad[:, None, None, :]
        if attn.softcap is None:  # independent of lm4vis's kernels
            applied = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=keep, scale=attn.scale, enable_gqa=groups > 1)
        else:  # SDPA has no soft-capping
            applied = layers_mod.matmul_attention(q, k, v, keep, attn.scale, attn.softcap)
    torch.testing.assert_close(from_probs, applied, atol=1e-5, rtol=1e-5)
