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


#: Decoders of the ``vectornet`` host (`lm4vis.hosts.vectornet.DECODERS`; a test keeps the two equal).
VECTORNET_DECODERS: tuple[str, ...] = ("mlp", "queries")
#: Trajectory outputs of the ``vectornet`` host (`lm4vis.hosts.vectornet.TRAJECTORIES`).
VECTORNET_TRAJECTORIES: tuple[str, ...] = ("positions", "steps")


@dataclass
class VectorNetHostConfig(HostConfig):
    """VectorNet (Gao et al., CVPR 2020) over `lm4vis.data.motion` polylines, with an LM slot
    after its global interaction graph (`lm4vis.hosts.vectornet`). The numbers per vector and
    the forecast horizon are the dataset's (``info.num_features``, ``info.pred_len``).

    Args:
        embed_dim: width of vector features and polyline tokens (the LM block's ``in_dim``).
        subgraph_depth: sub-graph layers per polyline.
        depth: global interaction layers (transformer encoder layers, key-padding masked).
        num_heads: attention heads of the global graph and the ``queries`` decoder.
        mlp_ratio: hidden width of the transformer MLPs, as a multiple of ``embed_dim``.
        dropout: dropout in the transformer layers.
        num_modes: trajectories forecast per scene (K); at least the task's largest K.
        decoder: ``mlp`` (all K trajectories from the focal token at once) or ``queries``
            (mmTransformer's K learned mode queries attending to every polyline).
        decoder_depth: transformer decoder layers of the ``queries`` decoder.
        trajectory: ``steps`` (the decoder outputs per-step displacements, summed over time:
            outputs of order one are metres per step, which a fresh decoder reaches in few
            updates) or ``positions`` (each step's position directly).
    """

    kind: str = "vectornet"
    embed_dim: int = 64
    subgraph_depth: int = 3
    depth: int = 1
    num_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    num_modes: int = 6
    decoder: str = "mlp"
    decoder_depth: int = 1
    trajectory: str = "steps"

    def __post_init__(self) -> None:
        for name in ("embed_dim", "subgraph_depth", "depth", "num_heads", "num_modes", "decoder_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"host.{name}={getattr(self, name)} must be at least 1")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"host.embed_dim={self.embed_dim} must be divisible by "
                             f"host.num_heads={self.num_heads}")
        if not self.mlp_ratio > 0:
            raise ValueError(f"host.mlp_ratio={self.mlp_ratio} must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"host.dropout={self.dropout} must be in [0, 1)")
        if self.decoder not in VECTORNET_DECODERS:
            raise ValueError(f"host.decoder={self.decoder!r} is unknown; choose one of "
                             f"{', '.join(VECTORNET_DECODERS)}")
        if self.trajectory not in VECTORNET_TRAJECTORIES:
            raise ValueError(f"host.trajectory={self.trajectory!r} is unknown; choose one of "
                             f"{', '.join(VECTORNET_TRAJECTORIES)}")

    def check_run(self, run: Any) -> None:
        ks = getattr(run.task, "ks", None)
        if ks and max(ks) > self.num_modes:
            raise ValueError(
                f"task.ks={list(ks)} scores up to {max(ks)} modes but host.num_modes={self.num_modes}; "
                f"set host.num_modes={max(ks)} or task.ks=[{', '.join(str(k) for k in ks if k <= self.num_modes)}]"
            )


register_host(
    "timm-vit", config=TimmViTConfig, builder="lm4vis.hosts.vit:build_timm_vit",
    layout="lm4vis.hosts.vit:vit_layout", stages="lm4vis.hosts.vit:vit_stages",
    check_data="lm4vis.hosts.vit:check_data", describe="lm4vis.hosts.vit:describe",
)
register_host(
    "vectornet", config=VectorNetHostConfig, builder="lm4vis.hosts.vectornet:build_vectornet",
    stages="lm4vis.hosts.vectornet:vectornet_stages", check_data="lm4vis.hosts.vectornet:check_data",
    describe="lm4vis.hosts.vectornet:describe", layout="lm4vis.hosts.vectornet:vectornet_layout",
    # `lm4vis analyze` on a motion run: polyline relevance, not pseudo-mask mIoU
    analysis="lm4vis.analysis.motion:analyze_motion",
)

__all__ = ["VARIANTS", "ATTENTION_IMPLS", "FINAL_NORMS", "VECTORNET_DECODERS", "VECTORNET_TRAJECTORIES", "BlockConfig", "HostConfig",
           "TimmViTConfig", "VectorNetHostConfig"]
