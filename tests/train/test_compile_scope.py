"""trainer.compile takes the whole host where no hook applies an LM block, else the block only."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from lm4vis.hosts import LMSlot, attach
from lm4vis.lm import random_lm, tiny_config
from lm4vis.train.run import compile_model, compile_scope


class _SlotHost(nn.Module):
    """Tokens -> an LM slot -> mean: a host written for lm4vis."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(4, width)
        self.lm_slot = LMSlot(width)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lm_slot(self.embed(x)).mean(1))


def _vit() -> nn.Module:
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=16, patch_size=4, in_chans=1,
                             num_classes=3, embed_dim=32, depth=1, num_heads=2)


def test_the_scope_follows_how_the_block_is_reached() -> None:
    slot_host = _SlotHost()
    assert compile_scope(slot_host) == "host"  # a baseline: nothing stands in dynamo's way
    attach(slot_host, random_lm(tiny_config("llama"), [0]))
    assert compile_scope(slot_host) == "host"  # the slot calls the block as a module
    vit = _vit()
    assert compile_scope(vit) == "host"
    attach(vit, random_lm(tiny_config("llama"), [0]))
    assert compile_scope(vit) == "block"  # a forward hook applies it: dynamo would not guard it


@pytest.mark.slow
def test_a_slot_host_is_compiled_whole_and_computes_what_the_eager_one_does() -> None:
    torch.manual_seed(0)
    host = _SlotHost()
    attach(host, random_lm(tiny_config("llama"), [0]))
    x = torch.randn(2, 5, 4)
    eager = host(x)
    assert compile_model(host) == "host"
    assert host._compiled_call_impl is not None and host.lm_slot.block._compiled_call_impl is None
    compiled = host(x)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
    compiled.sum().backward()  # the compiled graph trains
    assert host.lm_slot.block.proj_in.weight.grad is not None
    assert "lm_slot.block.proj_in.weight" in host.state_dict()  # keys as eager: checkpoints load either way
