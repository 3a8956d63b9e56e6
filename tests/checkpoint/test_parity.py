"""Numerical parity of layers read by `HFReader` with transformers' own decoder layers.

The reference is the transformers layer module itself, called with rotary switched off
(cos = 1, sin = 0) and no attention mask under eager attention, which is exactly the
bidirectional, position-free layer lm4vis runs. The verification switch (``rope=``,
``causal=True``) is checked against real rotary tables and a causal mask, which proves the
q/k layouts (head order, fused splits, partial rotary) are right and not merely symmetric.
"""

from __future__ import annotations

import pytest
import torch

import lm4vis
from lm4vis.lm.layers import rope_tables

ATOL = RTOL = 1e-5
NUM_TOKENS = 7


def _tokens(width: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, NUM_TOKENS, width)


def _rotary(tiny_hf, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The reference model's own cos/sin for positions 0..N-1, or None without rotary."""
    case = tiny_hf.case(name)
    if case.rotary is None:
        return None
    rotary = tiny_hf.module(name, case.rotary)
    positions = torch.arange(x.shape[1])[None].expand(x.shape[0], -1)
    if case.rotary_layer_type is not None:
        return rotary(x, positions, case.rotary_layer_type)
    return rotary(x, positions)


@torch.no_grad()
def _reference(tiny_hf, name: str, indices: list[int], x: torch.Tensor, *, positional: bool = False,
               causal: bool = False) -> torch.Tensor:
    """transformers' layers ``indices`` in sequence; rotary off and no mask unless asked."""
    layers = tiny_hf.layers(name)
    kwargs: dict = {"attention_mask": None}
    tables = _rotary(tiny_hf, name, x)
    if tables is not None:
        cos, sin = tables
        identity = (torch.ones_like(cos), torch.zeros_like(sin))
        kwargs["position_embeddings"] = (cos, sin) if positional else identity
    if causal:
        n = x.shape[1]
        kwargs["attention_mask"] = torch.full((n, n), torch.finfo(x.dtype).min).triu(1)[None, None]
    h = x
    for i in indices:
        out = layers[i](h, **kwargs)
        h = out[0] if isinstance(out, tuple) else out
    return h


def test_reference_without_mask_is_bidirectional(tiny_hf, hf_case):
    # The whole comparison rests on this: no mask under eager attention must mean no mask.
    x = _tokens(tiny_hf.model(hf_case).config.hidden_size)
    y = x.clone()
    y[:, -1] += torch.randn_like(y[:, -1])  # random: a constant shift is invisible to LayerNorm
    first_x = _reference(tiny_hf, hf_case, [1], x)[:, 0]
    first_y = _reference(tiny_hf, hf_case, [1], y)[:, 0]
    assert (first_x - first_y).abs().max() > 1e-4


@pytest.mark.parametrize("layers, indices", [(1, [1]), (-1, [2]), ("-2:", [1, 2])])
def test_layers_match_transformers(tiny_hf, hf_case, layers, indices):
    _, path = tiny_hf.get(hf_case)
    stack = lm4vis.load_lm_layers(path, layers=layers)
    assert list(stack.layer_indices) == indices
    x = _tokens(stack.lm_dim)
    with torch.no_grad():
        got = stack(x)
    torch.testing.assert_close(got, _reference(tiny_hf, hf_case, indices, x), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("fmt", ["sharded", "bin", "bin_sharded"])
def test_every_weight_format_matches(tiny_hf, hf_case, fmt):
    _, path = tiny_hf.get(hf_case, fmt)
    if fmt != "bin":  # the checkpoint really is split over several files
        assert len(list(path.glob("*-of-*"))) > 1
    reader = lm4vis.open_checkpoint(path)
    expected_format = "safetensors" if fmt == "sharded" else "pytorch_model.bin"
    assert reader.format == expected_format
    stack = lm4vis.load_lm_layers(path, layers="-2:")
    x = _tokens(stack.lm_dim)
    with torch.no_grad():
        got = stack(x)
    torch.testing.assert_close(got, _reference(tiny_hf, hf_case, [1, 2], x), atol=ATOL, rtol=RTOL)


def test_final_norm_matches(tiny_hf, hf_case):
    _, path = tiny_hf.get(hf_case)
    stack = lm4vis.load_lm_layers(path, layers=-1)
    reference = tiny_hf.module(hf_case, tiny_hf.case(hf_case).final_norm)
    if reference is None:  # post-norm OPT: no final norm in the model, none read
        assert stack.final_norm is None
        return
    x = _tokens(stack.lm_dim)
    with torch.no_grad():
        torch.testing.assert_close(stack.final_norm(x), reference(x), atol=ATOL, rtol=RTOL)


def test_rotary_and_causal_switch_matches(tiny_hf, hf_rotary_case):
    """With real rotary and a causal mask both sides are the original LM: proves q/k layouts."""
    _, path = tiny_hf.get(hf_rotary_case)
    stack = lm4vis.load_lm_layers(path, layers=-1)
    x = _tokens(stack.lm_dim)
    with torch.no_grad():
        got = stack(x, rope=rope_tables(stack.config, NUM_TOKENS), causal=True)
    expected = _reference(tiny_hf, hf_rotary_case, [2], x, positional=True, causal=True)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)
    # The switch must matter, or the check above proves nothing about the layout.
    with torch.no_grad():
        plain = stack(x)
    assert (plain - expected).abs().max() > 1e-3
