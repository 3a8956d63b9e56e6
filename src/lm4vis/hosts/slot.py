"""`LMSlot`: the place a host written for lm4vis leaves for an LM block.

A host calls its slot where the paper puts the block (after the last encoder block), with its
tokens and, when token counts vary, a key-padding mask::

    self.lm_slot = LMSlot(embed_dim)
    ...
    x = self.lm_slot(x, key_padding_mask)   # identity until `lm4vis.attach` fills it

An empty slot returns the tokens unchanged, so the baseline is the same module tree minus the
block. A filled slot calls the block directly, with no hook in the way: the mask reaches it as
an argument, and the whole host can be compiled (dynamo traces module calls; it does not guard
on hooks). Third-party hosts (timm, transformers) have no slot; `attach` reaches them through
forward hooks instead.
"""

from __future__ import annotations

from torch import Tensor, nn


class LMSlot(nn.Module):
    """Identity, or the LM block that `lm4vis.attach` put here.

    Args:
        width: width of the tokens that pass through (lets `attach` size the block).
    """

    def __init__(self, width: int | None = None) -> None:
        super().__init__()
        self.width = width
        self.block: nn.Module | None = None

    @property
    def filled(self) -> bool:
        return self.block is not None

    def fill(self, block: nn.Module) -> None:
        if self.block is not None:
            raise ValueError("this slot already holds an LM block; detach it first")
        self.block = block

    def empty(self) -> nn.Module:
        block, self.block = self.block, None
        if block is None:
            raise ValueError("this slot holds no LM block")
        return block

    def forward(self, tokens: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        if self.block is None:
            return tokens
        return self.block(tokens, key_padding_mask)

    def extra_repr(self) -> str:
        return f"width={self.width}"


__all__ = ["LMSlot"]
