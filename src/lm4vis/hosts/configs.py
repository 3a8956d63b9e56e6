"""Typed configs of the block and of the built-in hosts, and the hosts' registrations.

Light by design (no torch): a config is resolved and checked, and a typo refused, before any
model code is imported. Each host's builder is named by reference and imported when a model
is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_host

#: The paper's variants: the method and its controls, under the one set of names that Python,
#: configs and the command line share. The value is what `FrozenLMBlock` builds (None: no block).
VARIANTS: dict[str, str | None] = {
    "baseline": None,  # no LM block
    "frozen-lm": "frozen-lm",
    "frozen-ffn": "frozen-ffn",  # the frozen layers' FFN sub-layers alone (the video code's only_mlp)
    "mlp": "mlp",
    "random-lm": "random-lm",
    "finetune-lm": "finetune-lm",
}
#: Attention kernels of the LM layers (`lm4vis.lm.layers.ATTENTION_IMPLS`; a test keeps the two equal).
ATTENTION_IMPLS: tuple[str, ...] = ("auto", "sdpa", "matmul")
FINAL_NORMS: tuple[str, ...] = ("unit", "pretrained", "none")


@dataclass
class BlockConfig:
    """Which LM block the host gets, if any.

    Args:
        variant: one of ``VARIANTS``: baseline, frozen-lm, frozen-ffn, mlp, random-lm, finetune-lm.
        source: checkpoint of the LM (path or registered name such as ``smollm2-135m``).
        layers: layer index or span (``-1``, ``"-2:"``, ``"10:12"``).
        where: placement: ``last``, ``first``, ``middle``, a block index, a module path (after
            that module), ``before:PATH``, or the path of an `LMSlot` the host declares.
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
        for key, value, choices in (("variant", self.variant, VARIANTS),
                                    ("attention", self.attention, ATTENTION_IMPLS),
                                    ("final_norm", self.final_norm, FINAL_NORMS)):
            if value not in choices:
                raise ValueError(f"block.{key}={value!r} is unknown; choose one of {', '.join(choices)}")


@dataclass
class HostConfig:
    """Base of every host's config: ``kind`` names the registered host.

    Args:
        kind: a registered host (``timm-vit``; see ``lm4vis.registry.HOSTS.names()``).
    """

    kind: str = "timm-vit"

    def check_run(self, run: Any) -> None:
        """Cross-section checks against the whole run config (override where needed)."""


@dataclass
class TimmViTConfig(HostConfig):
    """A timm vision transformer. ``img_size``/``patch_size`` are passed only when set.

    Args:
        name: a timm model name with ``blocks`` and a final ``norm`` (vit_*, deit_*, ...).
        pretrained: load timm's pretrained weights (needs them in the local cache here).
        img_size, patch_size, in_chans, num_classes, drop_path_rate: timm arguments.
        kwargs: any other `timm.create_model` argument (e.g. ``embed_dim``, ``depth``).
    """

    kind: str = "timm-vit"
    name: str = "vit_tiny_patch16_224"
    pretrained: bool = False
    img_size: int | None = 32
    patch_size: int | None = 4
    in_chans: int = 1
    num_classes: int = 10
    drop_path_rate: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)


register_host(
    "timm-vit", config=TimmViTConfig, builder="lm4vis.hosts.vit:build_timm_vit",
    layout="lm4vis.hosts.vit:vit_layout", stages="lm4vis.hosts.vit:vit_stages",
    check_data="lm4vis.hosts.vit:check_data", describe="lm4vis.hosts.vit:describe",
)

__all__ = ["VARIANTS", "ATTENTION_IMPLS", "FINAL_NORMS", "BlockConfig", "HostConfig", "TimmViTConfig"]
