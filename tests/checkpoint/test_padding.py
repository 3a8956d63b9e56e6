"""Key padding with every family of the parity table and both attention kernels.

The convention is one boolean (B, N) mask, True at padding. What padding holds must change
nothing at the real tokens, neither the values nor the gradients, and a sample that is all
padding must stay finite, so that one empty sample cannot turn a batch's loss into NaN.
"""

from __future__ import annotations

import pytest
import torch

import lm4vis

KERNELS = ["sdpa", "matmul"]
LENGTHS = (4, 7)  # real tokens per sample; sample 0 is padded to the longer one
NUM_TOKENS = max(LENGTHS)


@pytest.fixture(params=KERNELS)
def kernel(request) -> str:
    return request.param


def _stack(tiny_hf, name: str, kernel: str) -> lm4vis.LMStack:
    _, path = tiny_hf.get(name)
    return lm4vis.load_lm_layers(path, layers="-2:").set_attention(kernel)


def _padding_mask(lengths: tuple[int, ...]) -> torch.Tensor:
    return torch.arange(NUM_TOKENS)[None, :] >= torch.tensor(lengths)[:, None]


def test_padding_changes_nothing_at_real_tokens(tiny_hf, hf_case, kernel):
    stack = _stack(tiny_hf, hf_case, kernel)
    mask = _padding_mask(LENGTHS)
    x = torch.randn(len(LENGTHS), NUM_TOKENS, stack.lm_dim)
    x[mask] = 10 * torch.randn(int(mask.sum()), stack.lm_dim)  # loud padding
    weights = torch.randn(len(LENGTHS), NUM_TOKENS, stack.lm_dim)  # a loss on real tokens only

    padded = x.clone().requires_grad_()
    out = stack(padded, mask)
    ((out * weights)[~mask]).sum().backward()
    for b, n in enumerate(LENGTHS):
        alone = x[b:b + 1, :n].clone().requires_grad_()
        expected = stack(alone)
        (expected * weights[b:b + 1, :n]).sum().backward()
        torch.testing.assert_close(out[b, :n], expected[0].detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(padded.grad[b, :n], alone.grad[0], atol=1e-5, rtol=1e-5)
        assert not padded.grad[b, n:].any()  # nothing flows into the padding
    # Without the mask the padding reaches the real tokens: the checks above are not vacuous.
    with torch.no_grad():
        leaked = stack(x)[0, :LENGTHS[0]]
    assert (leaked - out[0, :LENGTHS[0]]).abs().max() > 1e-3


def test_sample_of_padding_only_is_finite(tiny_hf, hf_case, kernel):
    stack = _stack(tiny_hf, hf_case, kernel)
    mask = _padding_mask((NUM_TOKENS, 0))  # sample 1: no real token at all
    x = torch.randn(2, NUM_TOKENS, stack.lm_dim, requires_grad=True)
    out = stack(x, mask)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    with torch.no_grad():  # and the real sample next to it is untouched
        torch.testing.assert_close(out[0].detach(), stack(x[:1].detach())[0], atol=1e-5, rtol=1e-5)
