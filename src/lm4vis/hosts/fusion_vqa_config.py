"""The ``fusion-vqa`` host's typed config and its registration (light: no torch).

`FusionVQAConfig` is both what `lm4vis.hosts.fusion.CoAttentionFusion` is built from and the
``host:`` section of a run config that says ``host.kind: fusion-vqa``: one name and one default
per size. What the data decides (the answer count, the question vocabulary and its padding
id) is left at 0 here and filled from the dataset's ``info`` by the builder, so a preset never
repeats a number the data already holds; a value set anyway is checked against the data.

Where the frozen LM block goes is ``block.where``; the host declares three named placements
(`PLACEMENTS`) over its two `LMSlot` s:

- ``visual`` (also ``last``, the default): after the image encoder, on the visual tokens only:
  "a visual encoder layer", the paper's reading;
- ``fusion``: after the co-attention layers, on the visual stream;
- ``both``: one block in each slot, attached as two named blocks (``image_lm_block``,
  ``fusion_lm_block``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_host
from .configs import HostConfig, TimmViTConfig

#: Image encoders: a timm ViT from its sizes, or transformers' CLIP vision tower from a folder.
IMAGE_ENCODERS: tuple[str, ...] = ("timm", "clip")
#: ``block.where`` -> the slots that get a block, each attached under the name given.
PLACEMENTS: dict[str, dict[str, str]] = {
    "visual": {"lm_block": "image_lm_slot"},
    "last": {"lm_block": "image_lm_slot"},
    "fusion": {"lm_block": "fusion_lm_slot"},
    "both": {"image_lm_block": "image_lm_slot", "fusion_lm_block": "fusion_lm_slot"},
}


@dataclass
class ImageEncoderConfig(TimmViTConfig):
    """The image encoder: the `TimmViTConfig` fields for a timm ViT (its classifier is never
    built), or a CLIP vision tower read from a local transformers folder.

    Args:
        encoder: ``timm`` or ``clip``.
        clip_dir: for ``clip``: a folder written by ``CLIPVisionModel.save_pretrained`` (or a
            whole ``CLIPModel``'s); its own config sets every size, and ``img_size`` must equal
            its ``image_size``. Nothing is downloaded.
    """

    encoder: str = "timm"
    clip_dir: str | None = None
    img_size: int | None = 64
    patch_size: int | None = 8
    in_chans: int = 3
    num_classes: int = 0

    def __post_init__(self) -> None:
        if self.encoder not in IMAGE_ENCODERS:
            raise ValueError(f"host.image.encoder={self.encoder!r} is unknown; choose one of "
                             f"{', '.join(IMAGE_ENCODERS)}")
        if self.encoder == "clip" and not self.clip_dir:
            raise ValueError("host.image.encoder=clip needs host.image.clip_dir: the local folder of a "
                             "saved transformers CLIP model (CLIPVisionModel.save_pretrained)")
        if self.encoder == "timm" and self.clip_dir:
            raise ValueError("host.image.clip_dir is set but host.image.encoder=timm; set "
                             "host.image.encoder=clip to use it, or drop clip_dir")
        if self.in_chans != 3:
            raise ValueError(f"host.image.in_chans={self.in_chans}: vision-language images are RGB (3)")


@dataclass
class TextEncoderConfig:
    """A text encoder: a small BERT from these sizes, or a pretrained one from a local folder.

    Args:
        vocab_size: token vocabulary; 0 takes the dataset's (``info.vocab_size``).
        pad_id: the padding id (the dataset's ``info.pad_id``, filled with ``vocab_size``).
        embed_dim, depth, num_heads, mlp_ratio: sizes of the small BERT.
        max_length: positions it can embed (at least the dataset's ``max_length``).
        dropout: hidden and attention dropout.
        pretrained: a local transformers folder (``AutoModel.from_pretrained``: BERT, RoBERTa)
            instead of a small random BERT; its own config then sets every size, and the data
            must be tokenised by its tokeniser (``data.tokenizer`` = the same folder).
    """

    vocab_size: int = 0
    pad_id: int = 0
    embed_dim: int = 192
    depth: int = 2
    num_heads: int = 3
    mlp_ratio: float = 4.0
    max_length: int = 64
    dropout: float = 0.0
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.pretrained is not None:
            return  # the checkpoint's config sets the sizes
        if self.vocab_size < 0:
            raise ValueError(f"text.vocab_size={self.vocab_size} must be >= 0 (0: the dataset's)")
        if self.vocab_size and not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"text.pad_id={self.pad_id} is outside the vocabulary of {self.vocab_size}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"text.embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}")
        if self.depth < 1 or self.max_length < 3:
            raise ValueError(f"text.depth={self.depth} must be >= 1 and text.max_length={self.max_length} >= 3")


@dataclass
class FusionVQAConfig(HostConfig):
    """A METER-style co-attention VQA model (Dou et al., CVPR 2022).

    Args:
        kind: ``fusion-vqa``.
        image: the image encoder (`ImageEncoderConfig`).
        text: the text encoder (`TextEncoderConfig`).
        num_answers: outputs of the answer classifier; 0 takes the dataset's
            (``info.num_answers``: 3,129 for VQAv2).
        embed_dim: width of the co-attention layers (METER: 768).
        depth: co-attention layers per modality (METER: 6).
        num_heads: attention heads of the co-attention layers.
        mlp_ratio: FFN width over ``embed_dim``.
        dropout: dropout of the co-attention layers.
    """

    kind: str = "fusion-vqa"
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    num_answers: int = 0
    embed_dim: int = 192
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.image, dict):  # from YAML
            self.image = ImageEncoderConfig(**self.image)
        if isinstance(self.text, dict):
            self.text = TextEncoderConfig(**self.text)
        if self.num_answers < 0:
            raise ValueError(f"host.num_answers={self.num_answers} must be >= 0 (0: the dataset's)")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"host.embed_dim={self.embed_dim} is not a multiple of host.num_heads={self.num_heads}")
        if self.depth < 1:
            raise ValueError(f"host.depth must be at least 1, got {self.depth}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"host.dropout={self.dropout} must be in [0, 1)")

    @property
    def img_size(self) -> int | None:
        """The image side, which the data's ``image_size`` takes when left null."""
        return self.image.img_size

    def check_run(self, run: Any) -> None:
        if self.text.pretrained is not None and getattr(run.data, "tokenizer", "") is None:
            raise ValueError(f"host.text.pretrained={self.text.pretrained} reads token ids of its own "
                             f"tokeniser; set data.tokenizer={self.text.pretrained}")
        where = str(run.block.where)
        if run.block.variant != "baseline" and where not in PLACEMENTS and not where.endswith("lm_slot"):
            raise ValueError(f"block.where={where!r}: the fusion-vqa host places its block at "
                             f"{', '.join(p for p in PLACEMENTS if p != 'last')} (or a slot path: "
                             "image_lm_slot, fusion_lm_slot)")


register_host(
    "fusion-vqa", config=FusionVQAConfig, builder="lm4vis.hosts.fusion:build_fusion_vqa",
    placements=PLACEMENTS, stages="lm4vis.hosts.fusion:fusion_vqa_stages",
    layout="lm4vis.hosts.fusion:fusion_vqa_layout", check_data="lm4vis.hosts.fusion:check_data",
    describe="lm4vis.hosts.fusion:describe", analysis="lm4vis.analysis.vqa:analyze_vqa_runs",
)

__all__ = ["FusionVQAConfig", "ImageEncoderConfig", "TextEncoderConfig", "IMAGE_ENCODERS", "PLACEMENTS"]
