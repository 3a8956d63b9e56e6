"""Image hosts: timm vision transformers, and the model builder every task shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..block import FrozenLMBlock
from ..checkpoint import load_lm_layers
from ..lm.layers import ATTENTION_IMPLS
from .attach import attach, host_width

#: The paper's variants: the method and its controls. Keys are the names users type.
VARIANTS: dict[str, str | None] = {
    "baseline": None,  # no LM block
    "frozen-lm": "frozen",
    "mlp": "mlp",
    "random-lm": "random",
    "finetune-lm": "finetune",
}


@dataclass
class HostConfig:
    """A timm model. ``img_size``/``patch_size``/``in_chans`` are passed only when set.

    Args:
        name: a timm model name with ``blocks`` and a final ``norm`` (vit_*, deit_*, ...).
        pretrained: load timm's pretrained weights (needs them in the local cache here).
        img_size, patch_size, in_chans, num_classes, drop_path_rate: timm arguments.
        kwargs: any other `timm.create_model` argument (e.g. ``embed_dim``, ``depth``).
    """

    name: str = "vit_tiny_patch16_224"
    pretrained: bool = False
    img_size: int | None = 32
    patch_size: int | None = 4
    in_chans: int = 1
    num_classes: int = 10
    drop_path_rate: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class BlockConfig:
    """Which LM block the host gets, if any.

    Args:
        variant: one of ``VARIANTS``: baseline, frozen-lm, mlp, random-lm, finetune-lm.
        source: checkpoint of the LM (path or registered name such as ``smollm2-135m``).
        layers: layer index or span (``-1``, ``"-2:"``, ``"10:12"``).
        where: placement: last, first, middle, a block index or a module path.
        final_norm: unit, pretrained or none (see `FrozenLMBlock`).
        dtype: dtype the LM layers are held in (``bf16`` saves memory), None = as stored.
        attention: attention kernel of the LM layers: ``auto`` (explicit matmuls for short
            bf16 sequences on CPU, SDPA otherwise; see `lm4vis.lm.layers.MATMUL_MAX_TOKENS`),
            ``sdpa`` or ``matmul``; the same function, different speed.
    """

    variant: str = "frozen-lm"
    source: str = "smollm2-135m"
    layers: str | int = -1
    where: str | int = "last"
    final_norm: str = "unit"
    dtype: str | None = None
    attention: str = "auto"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(
                f"block.variant={self.variant!r} is unknown; choose one of {', '.join(VARIANTS)}"
            )
        if self.attention not in ATTENTION_IMPLS:
            raise ValueError(
                f"block.attention={self.attention!r} is unknown; choose one of {', '.join(ATTENTION_IMPLS)}"
            )


def build_host(cfg: HostConfig) -> nn.Module:
    """`timm.create_model` with the config's arguments and a clear error for unknown names."""
    import timm

    if not timm.is_model(cfg.name):
        close = timm.list_models(f"*{cfg.name.split('_')[0]}*")[:5]
        raise ValueError(
            f"unknown timm model {cfg.name!r}; see timm.list_models(), e.g. {', '.join(close) or 'vit_tiny_patch16_224'}"
        )
    kwargs: dict[str, Any] = dict(
        pretrained=cfg.pretrained, in_chans=cfg.in_chans, num_classes=cfg.num_classes,
        drop_path_rate=cfg.drop_path_rate, **cfg.kwargs,
    )
    if cfg.img_size is not None:
        kwargs["img_size"] = cfg.img_size
    if cfg.patch_size is not None:
        kwargs["patch_size"] = cfg.patch_size
    return timm.create_model(cfg.name, **kwargs)


def build_model(host: HostConfig, block: BlockConfig, seed: int = 0) -> nn.Module:
    """The host with the variant's block attached.

    The host is initialised from ``seed`` before anything else, so every variant built with
    the same seed starts from the same host weights; the block's adapters draw from a separate
    stream and never shift the host's initialisation.
    """
    torch.manual_seed(seed)
    model = build_host(host)
    core_variant = VARIANTS[block.variant]
    if core_variant is None:
        return model
    lm = load_lm_layers(
        block.source, block.layers, dtype=block.dtype,
        weights=core_variant in ("frozen", "finetune"),  # the controls need only the config
    ).set_attention(block.attention)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1_000_003)
        lm_block = FrozenLMBlock(
            lm, in_dim=_width(model), variant=core_variant, final_norm=block.final_norm, seed=seed
        )
    attach(model, lm_block, where=block.where)
    return model


def _width(model: nn.Module) -> int:
    width = host_width(model)
    if width is None:
        raise ValueError(f"{type(model).__name__} exposes no embed_dim; cannot size the adapters")
    return width


@dataclass(frozen=True)
class TokenLayout:
    """How a host's tokens map back to the input: prefix tokens (CLS, registers) then a grid."""

    num_prefix_tokens: int
    grid: tuple[int, ...]

    @property
    def num_tokens(self) -> int:
        n = 1
        for g in self.grid:
            n *= g
        return self.num_prefix_tokens + n


def token_layout(model: nn.Module) -> TokenLayout:
    """Layout of a timm ViT's tokens: ``num_prefix_tokens`` then the patch grid."""
    patch_embed = getattr(model, "patch_embed", None)
    grid = getattr(patch_embed, "grid_size", None)
    if grid is None:
        raise ValueError(
            f"{type(model).__name__} has no patch_embed.grid_size; give the analysis a layout explicitly"
        )
    return TokenLayout(int(getattr(model, "num_prefix_tokens", 1)), tuple(int(g) for g in grid))
