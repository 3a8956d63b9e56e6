"""The ``videomae`` host's typed config and its registration (light: no torch, no transformers).

The host is transformers' own ``VideoMAEForVideoClassification``, built from scratch from these
sizes or loaded from a local Hugging Face directory (``pretrained``); see `lm4vis.hosts.videomae`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_host
from .configs import HostConfig

POS_EMBEDS: tuple[str, ...] = ("sincos", "learned")

#: The sizes a pretrained checkpoint fixes: host field -> `VideoMAEConfig` attribute. A preset
#: states them (so a config says what it trains) and loading checks them against the checkpoint.
CHECKPOINT_SIZES: dict[str, str] = {
    "embed_dim": "hidden_size", "depth": "num_hidden_layers", "num_heads": "num_attention_heads",
    "patch_size": "patch_size", "tubelet_size": "tubelet_size", "in_chans": "num_channels",
}


@dataclass
class VideoMAEHostConfig(HostConfig):
    """transformers' VideoMAE video classifier: a ViT over tubelets of ``tubelet_size`` frames
    by ``patch_size`` pixels, mean-pooled, then ``fc_norm`` and a linear head.

    Args:
        pretrained: a local Hugging Face directory (``save_pretrained`` output: config.json and
            model.safetensors) of a VideoMAE model; None builds it from scratch from the sizes.
            Loading is checked: a size here that disagrees with the checkpoint's, or any missing
            encoder weight, is an error.
        num_classes: classes of the head (must be the dataset's).
        in_chans: channels of the frames (1 for motion-mnist, 3 for RGB video).
        num_frames: frames per clip (must be the dataset's).
        image_size: side of the square frames (must be the dataset's).
        patch_size: side of a tubelet in pixels.
        tubelet_size: frames per tubelet.
        embed_dim, depth, num_heads: width, layers and attention heads of the encoder.
        mlp_ratio: width of the MLP of each layer, as a multiple of ``embed_dim``.
        pos_embed: ``sincos`` (VideoMAE's fixed table, transformers' own) or ``learned`` (a
            trainable table in its place, truncated-normal initialised).
        dropout: transformers' hidden and attention dropout.
        layer_decay: VideoMAE's layer-wise learning-rate decay: layer ``i`` of ``depth`` trains
            at ``layer_decay ** (depth + 1 - i)`` times the rate (embeddings: ``i = 0``, head:
            ``depth + 1``, the LM block's adapters at the head's rate); None: off.
        config: any other `VideoMAEConfig` argument (``layer_norm_eps``, ``qkv_bias``, ...).
    """

    kind: str = "videomae"
    pretrained: str | None = None
    num_classes: int = 14
    in_chans: int = 1
    num_frames: int = 16
    image_size: int = 32
    patch_size: int = 8
    tubelet_size: int = 2
    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    pos_embed: str = "sincos"
    dropout: float = 0.0
    layer_decay: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = dict(num_classes=self.num_classes, in_chans=self.in_chans, num_frames=self.num_frames,
                     image_size=self.image_size, patch_size=self.patch_size, tubelet_size=self.tubelet_size,
                     embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads)
        bad = {k: v for k, v in sizes.items() if v <= 0}
        if bad or self.mlp_ratio <= 0:
            raise ValueError(f"host sizes must be positive: {bad or {'mlp_ratio': self.mlp_ratio}}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"host.embed_dim={self.embed_dim} is not a multiple of host.num_heads={self.num_heads}")
        if self.image_size % self.patch_size:
            raise ValueError(f"host.image_size={self.image_size} is not a multiple of host.patch_size={self.patch_size}")
        if self.num_frames % self.tubelet_size:
            raise ValueError(
                f"host.num_frames={self.num_frames} is not a multiple of host.tubelet_size={self.tubelet_size}"
            )
        if self.pos_embed not in POS_EMBEDS:
            raise ValueError(f"host.pos_embed={self.pos_embed!r} is unknown; choose one of {', '.join(POS_EMBEDS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"host.dropout={self.dropout} must be in [0, 1)")
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"host.layer_decay={self.layer_decay} must be in (0, 1] (or null for none)")
        if self.pretrained == "":
            raise ValueError("host.pretrained='' names no directory; give a Hugging Face VideoMAE folder or null")

    @property
    def grid(self) -> tuple[int, int, int]:
        """Tokens per axis: (time, height, width)."""
        side = self.image_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side


register_host(
    "videomae", config=VideoMAEHostConfig, builder="lm4vis.hosts.videomae:build_videomae",
    layout="lm4vis.hosts.videomae:videomae_layout", stages="lm4vis.hosts.videomae:videomae_stages",
    check_data="lm4vis.hosts.videomae:check_data", describe="lm4vis.hosts.videomae:describe",
)

__all__ = ["VideoMAEHostConfig", "POS_EMBEDS", "CHECKPOINT_SIZES"]
