"""Tiny hosts for the analysis tests: a timm ViT, optionally with an LM block attached, and a
constructed model whose block amplifies exactly the tokens inside a mask."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lm4vis.block import FrozenLMBlock
from lm4vis.hosts import TimmViTConfig, attach, build_host
from lm4vis.lm import random_lm, tiny_config

#: (image size, patch size): the grid shapes every layout-dependent test runs over.
SIZES = [(32, 4), (48, 8), (64, 16)]


def tiny_vit(img: int = 32, patch: int = 4, in_chans: int = 1, lm: bool = True,
             embed_dim: int = 32, depth: int = 2, where: str | int = "last") -> nn.Module:
    torch.manual_seed(0)
    model = build_host(TimmViTConfig(img_size=img, patch_size=patch, in_chans=in_chans,
                                  kwargs=dict(embed_dim=embed_dim, depth=depth, num_heads=2)))
    if lm:
        attach(model, FrozenLMBlock(random_lm(tiny_config("llama"), [1]), embed_dim), where=where)
    return model.eval()


def patch_aligned_masks(n: int, img: int, patch: int, seed: int) -> Tensor:
    """``n`` random rectangles of whole patches, never empty and never the whole image."""
    g = torch.Generator().manual_seed(seed)
    grid = img // patch
    masks = torch.zeros(n, img, img, dtype=torch.bool)
    for i in range(n):
        while True:
            r0, r1 = sorted(torch.randint(0, grid + 1, (2,), generator=g).tolist())
            c0, c1 = sorted(torch.randint(0, grid + 1, (2,), generator=g).tolist())
            area = (r1 - r0) * (c1 - c0)
            if 0 < area < grid * grid:
                break
        masks[i, r0 * patch:r1 * patch, c0 * patch:c1 * patch] = True
    return masks


@torch.no_grad()
def indicator_model(img: int, patch: int, gain: float = 9.0) -> nn.Module:
    """A ViT whose tokens carry a mask indicator, and an LM block that amplifies those tokens.

    Input: 2 channels, channel 0 the mask (0/1), channel 1 positive noise. The patch embedding
    puts the patch's mask coverage in token channel 0 and a random projection of the noise in
    the others; the host blocks and the LM layer are identities (zeroed residual branches);
    ``proj_in`` copies the tokens into the LM width. A forward hook on ``lm_block.lm`` then
    scales each token by ``1 + gain * indicator``: the block "filters information" exactly
    along the mask. Before the block the indicator is drowned by the noise channels.
    """
    embed_dim = 16
    model = tiny_vit(img, patch, in_chans=2, lm=False, embed_dim=embed_dim)
    proj = model.patch_embed.proj
    proj.weight.zero_()
    proj.bias.zero_()
    proj.weight[0, 0] = 1.0 / patch**2  # token channel 0 = mask coverage of the patch
    g = torch.Generator().manual_seed(1)
    proj.weight[1:, 1] = torch.rand(embed_dim - 1, patch, patch, generator=g) / patch
    model.pos_embed.zero_()
    model.cls_token.zero_()
    for blk in model.blocks:
        for lin in (blk.attn.proj, blk.mlp.fc2):
            lin.weight.zero_()
            lin.bias.zero_()
    lm = random_lm(tiny_config("llama"), [1])
    for layer in lm.layers:
        layer.attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    block = FrozenLMBlock(lm, embed_dim)
    block.proj_in.weight.zero_()
    block.proj_in.weight[:embed_dim, :embed_dim] = torch.eye(embed_dim)
    attach(model, block)

    def amplify(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        indicator = args[0][..., :1]
        return output * (1.0 + gain * indicator)

    block.lm.register_forward_hook(amplify)
    return model.eval()


def indicator_inputs(masks: Tensor, seed: int) -> Tensor:
    """Model inputs for `indicator_model`: the mask and uniform noise in [1, 2)."""
    g = torch.Generator().manual_seed(seed)
    noise = 1.0 + torch.rand(masks.shape, generator=g)
    return torch.stack([masks.float(), noise], dim=1)
