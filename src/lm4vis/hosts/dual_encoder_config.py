"""The ``dual-encoder`` host's typed config and its registration (light: no torch).

`DualEncoderConfig` is both what `lm4vis.hosts.fusion.DualEncoder` is built from and the
``host:`` section of a run config that says ``host.kind: dual-encoder``::

    host:
      kind: dual-encoder
      image: {name: vit_tiny_patch16_224, img_size: 64, patch_size: 8}   # or pretrained: /models/clip-vit-b16
      text: {embed_dim: 128, depth: 2, num_heads: 4}                     # or pretrained: /models/bert-base-uncased
      embed_dim: 128                                                     # the joint space

Each tower ends in an `LMSlot`: ``image_lm_slot`` after the image encoder's last block and
final norm (the paper's "visual encoder layer"), ``text_lm_slot`` after the text encoder.
``block.where: image_lm_slot`` puts the frozen LM block in the image tower;
``block.where: image_lm_slot,text_lm_slot`` puts one in each tower, as two named blocks
(``image_lm_block``, ``text_lm_block``). The vocabulary size and padding id come from the
dataset (``info.vocab_size``, ``info.pad_id``), never from this config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_host
from .configs import HostConfig

#: How a tower turns its tokens into one vector (`lm4vis.hosts.fusion.POOLS`; a test keeps the two equal).
POOLS: tuple[str, ...] = ("cls", "mean")


@dataclass
class ImageTowerConfig:
    """The image encoder: a timm ViT from these sizes, or a pretrained CLIP vision tower.

    Args:
        name: a timm ViT (``vit_*``, ``deit_*``) built without its classifier.
        img_size: side of the square input images (the dataset's ``image_size``).
        patch_size: timm's patch size.
        drop_path_rate: timm's stochastic depth.
        kwargs: any other `timm.create_model` argument (``embed_dim``, ``depth``, ``num_heads``).
        pretrained: a local transformers folder holding a CLIP model or CLIP vision model
            (``CLIPVisionModel.from_pretrained``, nothing downloaded); it replaces the timm ViT
            and its own config sets every size.
        mean, std: per-channel normalisation of uint8 images (0..1 scale); a pretrained tower
            wants its own (CLIP: mean 0.481, 0.458, 0.408, std 0.269, 0.261, 0.276).
    """

    name: str = "vit_tiny_patch16_224"
    img_size: int = 64
    patch_size: int = 8
    drop_path_rate: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])

    def __post_init__(self) -> None:
        if self.img_size < 1 or self.patch_size < 1 or self.img_size % self.patch_size:
            raise ValueError(f"host.image.img_size={self.img_size} must be a positive multiple of "
                             f"host.image.patch_size={self.patch_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError(f"host.image.mean={self.mean} and std={self.std} need 3 values each (RGB), std > 0")
        if self.pretrained == "":
            raise ValueError("host.image.pretrained='' names no folder; give a local CLIP folder or null")


@dataclass
class TextTowerConfig:
    """The text encoder: a small BERT from these sizes, or a pretrained BERT/RoBERTa.

    Args:
        embed_dim: token width.
        depth: transformer layers.
        num_heads: attention heads.
        mlp_ratio: FFN width over ``embed_dim``.
        max_length: positions it can embed: at least the dataset's ``max_length``.
        dropout: hidden and attention dropout.
        pretrained: a local transformers folder (``AutoModel.from_pretrained``, nothing
            downloaded); its own config then sets the sizes, and the dataset must use its
            tokeniser (``data.tokenizer`` pointing at the same folder).
    """

    embed_dim: int = 128
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    max_length: int = 64
    dropout: float = 0.0
    pretrained: str | None = None

    def __post_init__(self) -> None:
        for name in ("embed_dim", "depth", "num_heads", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"host.text.{name}={getattr(self, name)} must be at least 1")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"host.text.embed_dim={self.embed_dim} is not a multiple of "
                             f"host.text.num_heads={self.num_heads}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"host.text.dropout={self.dropout} must be in [0, 1)")
        if self.pretrained == "":
            raise ValueError("host.text.pretrained='' names no folder; give a local BERT/RoBERTa folder or null")


@dataclass
class DualEncoderConfig(HostConfig):
    """Two towers projected into one space, for image-text retrieval (CLIP's shape).

    Args:
        kind: ``dual-encoder``.
        image: the image tower.
        text: the text tower.
        embed_dim: width of the joint space (bias-free projections of each tower's pooled token).
        pool: ``cls`` (the first token, as CLIP's ViT and BERT) or ``mean`` (mean over the
            unpadded tokens).
        temperature: initial softmax temperature of the InfoNCE loss (CLIP's 0.07); learned,
            as ``log(1 / temperature)``.
        max_logit_scale: cap of 1 / temperature, so training cannot make it blow up (CLIP's 100).
    """

    kind: str = "dual-encoder"
    image: ImageTowerConfig = field(default_factory=ImageTowerConfig)
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    embed_dim: int = 128
    pool: str = "cls"
    temperature: float = 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if isinstance(self.image, dict):  # built directly from YAML-like mappings
            self.image = ImageTowerConfig(**self.image)
        if isinstance(self.text, dict):
            self.text = TextTowerConfig(**self.text)
        if self.embed_dim < 1:
            raise ValueError(f"host.embed_dim={self.embed_dim} must be at least 1")
        if self.pool not in POOLS:
            raise ValueError(f"host.pool={self.pool!r} is unknown; choose one of {', '.join(POOLS)}")
        if self.temperature <= 0 or 1 / self.temperature > self.max_logit_scale:
            raise ValueError(f"host.temperature={self.temperature} must be positive with 1/temperature "
                             f"<= host.max_logit_scale={self.max_logit_scale}")

    def check_run(self, run: Any) -> None:
        max_length = getattr(run.data, "max_length", None)
        if self.text.pretrained is None and max_length is not None and max_length > self.text.max_length:
            raise ValueError(f"data.max_length={max_length} is longer than host.text.max_length="
                             f"{self.text.max_length}; raise host.text.max_length to {max_length}")
        image_size = getattr(run.data, "image_size", None)
        if self.image.pretrained is None and image_size is not None and image_size != self.image.img_size:
            raise ValueError(f"data.image_size={image_size} but host.image.img_size={self.image.img_size}; "
                             "set them to the same size")


register_host(
    "dual-encoder", config=DualEncoderConfig, builder="lm4vis.hosts.fusion:build_dual_encoder",
    check_data="lm4vis.hosts.fusion:check_dual_encoder_data", describe="lm4vis.hosts.fusion:describe_dual_encoder",
    stages="lm4vis.hosts.fusion:dual_encoder_stages",
)

__all__ = ["POOLS", "ImageTowerConfig", "TextTowerConfig", "DualEncoderConfig"]
