"""The ``timm-vit`` host: a timm vision transformer, used as it is.

The block reaches it through a forward hook (`lm4vis.attach`), so every module path,
pretrained-weight key and the timm API (``forward_features``, ``forward_head``,
``no_weight_decay``) stay exactly as timm defines them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .configs import TimmViTConfig

if TYPE_CHECKING:
    from torch import nn

    from ..analysis.layout import GridLayout


def build_timm_vit(cfg: TimmViTConfig, info: Any = None) -> nn.Module:
    """`timm.create_model` with the config's arguments and a clear error for unknown names.

    Args:
        cfg: the host config.
        info: the dataset's description (unused: `check_data` compares it with the config).
    """
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


def check_data(cfg: TimmViTConfig, info: Any) -> None:
    """The host must fit the data: classes and channels (a gray image may feed an RGB host)."""
    from ..train.config import ConfigError

    if info.num_classes != cfg.num_classes:
        raise ConfigError(
            f"host.num_classes={cfg.num_classes} but dataset {info.name!r} has "
            f"{info.num_classes} classes; set host.num_classes={info.num_classes}"
        )
    if info.in_chans != cfg.in_chans and not (info.in_chans == 1 and cfg.in_chans == 3):
        raise ConfigError(
            f"host.in_chans={cfg.in_chans} but dataset {info.name!r} has {info.in_chans} "
            f"channel(s); set host.in_chans={info.in_chans}"
        )


def describe(cfg: TimmViTConfig) -> str:
    """One line for reports."""
    extra = ", ".join(f"{k}={v}" for k, v in cfg.kwargs.items())
    return f"{cfg.name} (patch {cfg.patch_size}{', ' + extra if extra else ''})"


def vit_layout(model: nn.Module, batch: Any = None) -> GridLayout:
    """Prefix tokens (CLS, registers) then timm's patch grid, the same for every batch."""
    from ..analysis.layout import GridLayout

    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None:
        raise ValueError(
            f"{type(model).__name__} has no patch_embed.grid_size; give the analysis a layout explicitly"
        )
    return GridLayout(int(getattr(model, "num_prefix_tokens", 1)), tuple(int(g) for g in grid))


def vit_stages(model: nn.Module) -> dict[str, tuple[str, str]]:
    """The host's own hook points for the analysis: ``stage -> (module path, input|output)``.

    ``last_block`` is the last transformer block's output, ``post_norm`` the final norm's, and
    ``host_attn`` the attention module of the last block (its input is read to recompute the
    attention probabilities from ``qkv``).
    """
    from torch import nn

    points: dict[str, tuple[str, str]] = {}
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks) > 0:
        last = f"blocks.{len(blocks) - 1}"
        points["last_block"] = (last, "output")
        if hasattr(blocks[-1], "attn") and hasattr(blocks[-1].attn, "qkv"):
            points["host_attn"] = (f"{last}.attn", "input")
    if isinstance(getattr(model, "norm", None), nn.Module) and not isinstance(model.norm, nn.Identity):
        points["post_norm"] = ("norm", "output")
    return points


__all__ = ["build_timm_vit", "check_data", "describe", "vit_layout", "vit_stages"]
