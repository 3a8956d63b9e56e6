"""The ``scene-vqa`` host's typed config and its registration (light: no torch).

`SceneVQAConfig` is the ``host:`` section of a run that says ``host.kind: scene-vqa``: the sizes
of the scene encoder (Point-BERT's grouping and mini-PointNet, over x, y, z and colour), of the
text encoder, and of the METER-style co-attention fusion (`lm4vis.hosts.scene_vqa.SceneVQA`).
The text vocabulary and the number of answers are the dataset's (``info.vocab_size``,
``info.num_answers``), read when the model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import register_host
from .configs import HostConfig

#: The host's LM slots: on the scene tokens (a visual encoder layer, the paper's placement) or
#: on the scene stream after the fusion.
SLOTS: tuple[str, ...] = ("scene_lm_slot", "fusion_lm_slot")
#: ``host.centres``: `lm4vis.hosts.scene_vqa.GROUPERS`'s keys (this module stays light).
CENTRES: tuple[str, ...] = ("fps", "sample")


@dataclass
class SceneVQAConfig(HostConfig):
    """Sizes of a scene-VQA model.

    Args:
        kind: ``scene-vqa``.
        in_chans: channels per point (x, y, z, r, g, b).
        num_groups: centres over the whole scene (scene tokens besides CLS).
        group_size: neighbours per centre.
        centres: ``fps`` (farthest point sampling, Point-BERT's) or ``sample`` (a fixed random
            set of point indices: centres follow the point density, so in a room they land on
            the objects rather than spread over floor and walls).
        tokenizer_dims: the mini-PointNet's widths (point hidden, point out, context hidden).
        encoder_dim: width of a group's feature.
        scene_dim: width of the scene tokens (the LM block's ``in_dim`` on ``scene_lm_slot``).
        scene_depth: transformer blocks over the scene tokens before their LM slot (0: none).
        scene_heads: their attention heads.
        pos_hidden_dim: hidden width of the centres' position MLP.
        text_dim, text_depth, text_heads: the small BERT that reads situation and question.
        max_length: positions the text encoder embeds (at least ``data.max_length``).
        fusion_dim: width of the co-attention layers (the LM block's ``in_dim`` on ``fusion_lm_slot``).
        fusion_depth: co-attention layers per stream.
        fusion_heads: their attention heads.
        mlp_ratio: FFN width over the layer width, everywhere.
        dropout: dropout of the text encoder and the co-attention layers.
        aux_heads: SQA3D's auxiliary heads: the situation's position (3) and orientation
            (a quaternion) predicted from the fused feature (trained when ``task.aux_weight > 0``).
    """

    kind: str = "scene-vqa"
    in_chans: int = 6
    num_groups: int = 256
    group_size: int = 32
    centres: str = "fps"
    tokenizer_dims: tuple[int, int, int] = (64, 128, 256)
    encoder_dim: int = 128
    scene_dim: int = 192
    scene_depth: int = 2
    scene_heads: int = 4
    pos_hidden_dim: int = 64
    text_dim: int = 192
    text_depth: int = 2
    text_heads: int = 4
    max_length: int = 64
    fusion_dim: int = 192
    fusion_depth: int = 2
    fusion_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    aux_heads: bool = False

    def __post_init__(self) -> None:
        self.tokenizer_dims = tuple(self.tokenizer_dims)
        if len(self.tokenizer_dims) != 3:
            raise ValueError(f"host.tokenizer_dims needs 3 widths, got {list(self.tokenizer_dims)}")
        sizes = dict(num_groups=self.num_groups, group_size=self.group_size, encoder_dim=self.encoder_dim,
                     scene_dim=self.scene_dim, scene_heads=self.scene_heads, pos_hidden_dim=self.pos_hidden_dim,
                     text_dim=self.text_dim, text_depth=self.text_depth, text_heads=self.text_heads,
                     max_length=self.max_length, fusion_dim=self.fusion_dim, fusion_depth=self.fusion_depth,
                     fusion_heads=self.fusion_heads, **{f"tokenizer_dims[{i}]": d for i, d in enumerate(self.tokenizer_dims)})
        bad = {k: v for k, v in sizes.items() if v < 1}
        if bad:
            raise ValueError(f"host sizes must be positive: {bad}")
        if self.centres not in CENTRES:
            raise ValueError(f"host.centres={self.centres!r}: choose one of {', '.join(CENTRES)}")
        if self.scene_depth < 0:
            raise ValueError(f"host.scene_depth={self.scene_depth} must be >= 0")
        if self.in_chans < 3:
            raise ValueError(f"host.in_chans={self.in_chans} must be at least 3 (x, y, z)")
        for dim, heads in (("scene_dim", "scene_heads"), ("text_dim", "text_heads"), ("fusion_dim", "fusion_heads")):
            if getattr(self, dim) % getattr(self, heads):
                raise ValueError(f"host.{dim}={getattr(self, dim)} is not a multiple of host.{heads}={getattr(self, heads)}")
        if not self.mlp_ratio > 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"host.mlp_ratio={self.mlp_ratio} must be positive and host.dropout={self.dropout} in [0, 1)")

    def check_run(self, run: Any) -> None:
        # "last", the default placement, means the paper's: after the visual (scene) encoder.
        if run.block.where == "last":
            run.block.where = SLOTS[0]
        elif run.block.where not in SLOTS:
            raise ValueError(f"block.where={run.block.where!r}: the scene-vqa host has the slots "
                             f"{', '.join(SLOTS)} (last = {SLOTS[0]})")
        max_length = getattr(run.data, "max_length", None)
        if max_length is not None and max_length > self.max_length:
            raise ValueError(f"data.max_length={max_length} exceeds host.max_length={self.max_length}, the positions "
                             f"the text encoder embeds; set host.max_length={max_length} or lower data.max_length")
        points = getattr(run.data, "num_points", None)
        if points is not None and points < max(self.num_groups, self.group_size):
            raise ValueError(f"data.num_points={points} cannot make host.num_groups={self.num_groups} groups of "
                             f"host.group_size={self.group_size}; raise data.num_points or shrink the groups")


register_host(
    "scene-vqa", config=SceneVQAConfig, builder="lm4vis.hosts.scene_vqa:build_scene_vqa",
    check_data="lm4vis.hosts.scene_vqa:check_data", describe="lm4vis.hosts.scene_vqa:describe",
)

__all__ = ["SceneVQAConfig", "SLOTS", "CENTRES"]
