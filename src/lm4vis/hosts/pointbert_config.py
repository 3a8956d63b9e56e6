"""The ``point-bert`` host's typed config and its registration (light: no torch).

`PointBERTConfig` is both what `lm4vis.hosts.pointbert.PointBERT` is built from and the
``host:`` section of a run config that says ``host.kind: point-bert``, so the sizes have one
name and one default each. The builder, the data check, the analysis layout and hook points
are named by reference and imported when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import register_host
from .configs import HostConfig


@dataclass
class PointBERTConfig(HostConfig):
    """Sizes of a Point-BERT encoder; the defaults are the released fine-tuning models'.

    Args:
        kind: ``point-bert``.
        num_classes: classes of the head (ModelNet40 40, ScanObjectNN 15).
        in_chans: channels per point the tokenizer reads (3 = xyz; 6 with normals).
        num_groups: centres taken by farthest point sampling (tokens besides CLS).
        group_size: neighbours per centre.
        tokenizer_dims: the mini-PointNet's widths: per-point hidden and output, then the
            hidden width after each point is joined with its group's max-pooled feature.
        encoder_dim: width of a group's feature (Point-BERT's ``encoder_dims``).
        embed_dim: token width of the transformer.
        depth: transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden width of the blocks' MLPs over ``embed_dim``.
        qkv_bias: bias on the query/key/value projection (Point-BERT: none).
        drop_path_rate: stochastic depth of the last block (linear from 0).
        pos_hidden_dim: hidden width of the position MLP.
        head_hidden_dim: hidden width of the classification head.
        head_dropout: dropout inside the head.
        pretrained: a released Point-BERT checkpoint to start from (``Point-BERT.pth`` or a
            fine-tuned ``.pth``), read by `load_pointbert_checkpoint`; None: random init.
        pretrained_partial: load what fits and log the rest (missing, unused, mismatched
            keys) instead of refusing a checkpoint that does not match the model exactly.
            ``Point-BERT.pth`` has no classification head, so fine-tuning from it needs this.
    """

    kind: str = "point-bert"
    num_classes: int = 40
    in_chans: int = 3
    num_groups: int = 64
    group_size: int = 32
    tokenizer_dims: tuple[int, int, int] = (128, 256, 512)
    encoder_dim: int = 256
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    drop_path_rate: float = 0.1
    pos_hidden_dim: int = 128
    head_hidden_dim: int = 256
    head_dropout: float = 0.5
    pretrained: str | None = None
    pretrained_partial: bool = False

    def __post_init__(self) -> None:
        self.tokenizer_dims = tuple(self.tokenizer_dims)  # a YAML list is fine too
        if len(self.tokenizer_dims) != 3:
            raise ValueError(f"tokenizer_dims needs 3 widths (point hidden, point out, context hidden), "
                             f"got {self.tokenizer_dims}")
        sizes = dict(num_classes=self.num_classes, num_groups=self.num_groups, group_size=self.group_size,
                     encoder_dim=self.encoder_dim, embed_dim=self.embed_dim, depth=self.depth,
                     num_heads=self.num_heads, pos_hidden_dim=self.pos_hidden_dim,
                     head_hidden_dim=self.head_hidden_dim)
        bad = {k: v for k, v in sizes.items() if v <= 0} | {"tokenizer_dims": d for d in self.tokenizer_dims if d <= 0}
        if bad:
            raise ValueError(f"PointBERTConfig sizes must be positive: {bad}")
        if self.in_chans < 3:
            raise ValueError(f"in_chans must be at least 3 (x, y, z), got {self.in_chans}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}")
        if not 0.0 <= self.drop_path_rate < 1.0 or not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"drop_path_rate={self.drop_path_rate} and head_dropout={self.head_dropout} "
                             "must be in [0, 1)")
        if self.pretrained == "":
            raise ValueError("pretrained='' names no file; give a Point-BERT .pth path or null")


register_host(
    "point-bert", config=PointBERTConfig, builder="lm4vis.hosts.pointbert:build_point_bert",
    layout="lm4vis.hosts.pointbert:pointbert_layout", stages="lm4vis.hosts.pointbert:pointbert_stages",
    check_data="lm4vis.hosts.pointbert:check_data", describe="lm4vis.hosts.pointbert:describe",
)

__all__ = ["PointBERTConfig"]
