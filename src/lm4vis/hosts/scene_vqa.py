"""Situated 3D VQA: a point-cloud scene encoder, a text encoder and METER-style co-attention,
with an `LMSlot` on the scene tokens and one after the fusion (`SceneVQA`).

::

    points (x,y,z,r,g,b) -> FPS (or sampled) + kNN groups -> mini-PointNet -> + pos(centre) -> [CLS] + blocks
        -> scene_lm_slot -> norm -> proj --> scene layers -> fusion_lm_slot -> pool --+
                                                ^   |                                 +-> answer classifier
    question, situation -> text encoder -> proj --> text layers --------------> pool --+   (+ aux heads)

The scene encoder is Point-BERT's tokenizer (`lm4vis.hosts.pointbert.PointGrouper`,
`PointNetTokenizer`) over a whole scene, colours riding along as point features; the text
encoder, the co-attention layers and the poolers are the vision-language host's
(`lm4vis.hosts.fusion`). The question and the situation are encoded separately (each with its
own positions and padding mask) and joined as one text stream, a segment embedding telling
them apart; the text pooler reads the question's [CLS]. ``scene_lm_slot`` is the paper's
placement (a visual encoder layer after the last scene block); ``fusion_lm_slot`` takes the
block after the fusion instead. With ``aux_heads`` the fused feature also predicts the
situation's position and orientation (SQA3D's auxiliary tasks).
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from .fusion import Pooler, TextEncoder, TextEncoderConfig, coattend, coattention_layers
from .pointbert import PointGrouper, PointNetTokenizer
from .scene_vqa_config import SceneVQAConfig
from .slot import LMSlot

#: Segments of the joined streams: which input a token came from.
QUESTION, SITUATION, SCENE = 0, 1, 2


class SampledGrouper(PointGrouper):
    """Centres at a fixed random set of point indices (the same for every cloud of ``N``
    points), and their kNN neighbourhoods: a uniform sample of the points, so the centres follow
    the point density (FPS spreads them by distance instead, over the floor and the walls of a
    room, which hold few points). Deterministic, like FPS.

    Args:
        num_groups: centres per cloud.
        group_size: neighbours per centre.
    """

    def __init__(self, num_groups: int, group_size: int) -> None:
        super().__init__(num_groups, group_size)
        self._indices: dict[int, Tensor] = {}

    def centres(self, points: Tensor) -> Tensor:
        batch, num_points = points.shape[:2]
        if num_points not in self._indices:  # seeded apart from the model's own generator
            perm = torch.randperm(num_points, generator=torch.Generator().manual_seed(0))
            self._indices[num_points] = perm[: self.num_groups]
        return self._indices[num_points].to(points.device).expand(batch, -1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, centres=sample"


#: ``host.centres`` -> the grouper that picks the centres (`CENTRES` names the same keys; a test
#: keeps them equal).
GROUPERS: dict[str, type[PointGrouper]] = {"fps": PointGrouper, "sample": SampledGrouper}


class SceneEncoder(nn.Module):
    """Scene tokens ``(B, 1 + num_groups, scene_dim)`` (CLS first) from ``(B, N, in_chans)`` points.

    Args:
        cfg: the host's sizes.
    """

    def __init__(self, cfg: SceneVQAConfig) -> None:
        super().__init__()
        self.grouper = GROUPERS[cfg.centres](cfg.num_groups, cfg.group_size)
        self.tokenizer = PointNetTokenizer(cfg.in_chans, cfg.tokenizer_dims, cfg.encoder_dim)
        self.token_proj = nn.Linear(cfg.encoder_dim, cfg.scene_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.scene_dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, cfg.scene_dim))
        self.pos_embed = nn.Sequential(nn.Linear(3, cfg.pos_hidden_dim), nn.GELU(),
                                       nn.Linear(cfg.pos_hidden_dim, cfg.scene_dim))
        self.blocks = nn.ModuleList(Block(cfg.scene_dim, cfg.scene_heads, mlp_ratio=cfg.mlp_ratio,
                                          norm_layer=nn.LayerNorm) for _ in range(cfg.scene_depth))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.cls_pos, std=0.02)

    def forward(self, points: Tensor) -> Tensor:
        groups = self.grouper(points)
        x = self.token_proj(self.tokenizer(groups.neighbourhoods))
        batch = x.shape[0]
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x], dim=1)
        pos = torch.cat([self.cls_pos.expand(batch, -1, -1), self.pos_embed(groups.centres)], dim=1)
        for block in self.blocks:
            x = block(x + pos)
        return x + pos if not self.blocks else x


class SceneVQA(nn.Module):
    """Answer logits over the training vocabulary from a scene, a situation and a question.

    Args:
        cfg: the host's sizes.
        vocab_size: the text tokeniser's vocabulary (the dataset's ``info.vocab_size``).
        pad_id: its padding id.
        num_answers: the answer vocabulary (``info.num_answers``).
    """

    def __init__(self, cfg: SceneVQAConfig, vocab_size: int, pad_id: int, num_answers: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_dim = cfg.scene_dim
        self.scene_encoder = SceneEncoder(cfg)
        self.scene_lm_slot = LMSlot(cfg.scene_dim)
        self.scene_norm = nn.LayerNorm(cfg.scene_dim)
        self.text_encoder = TextEncoder(TextEncoderConfig(
            vocab_size=vocab_size, pad_id=pad_id, embed_dim=cfg.text_dim, depth=cfg.text_depth,
            num_heads=cfg.text_heads, mlp_ratio=cfg.mlp_ratio, max_length=cfg.max_length, dropout=cfg.dropout))
        d = cfg.fusion_dim
        self.scene_proj = nn.Linear(cfg.scene_dim, d)
        self.text_proj = nn.Linear(self.text_encoder.embed_dim, d)
        self.segment_embed = nn.Embedding(3, d)  # QUESTION, SITUATION, SCENE
        self.text_layers, self.scene_layers = coattention_layers(d, cfg.fusion_depth, cfg.fusion_heads,
                                                                 cfg.mlp_ratio, cfg.dropout)
        self.fusion_lm_slot = LMSlot(d)
        self.text_pooler, self.scene_pooler = Pooler(d), Pooler(d)
        # METER's VQA head: 2d -> 2d -> answers, with LayerNorm and GELU between.
        self.classifier = nn.Sequential(nn.Linear(2 * d, 2 * d), nn.LayerNorm(2 * d), nn.GELU(),
                                        nn.Linear(2 * d, num_answers))
        self.position_head = self.orientation_head = None
        if cfg.aux_heads:
            self.position_head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 3))
            self.orientation_head = nn.Sequential(nn.Linear(2 * d, d), nn.GELU(), nn.Linear(d, 4))

    def no_weight_decay(self) -> set[str]:
        return {"scene_encoder.cls_token", "scene_encoder.cls_pos"}

    def forward_scene(self, points: Tensor) -> Tensor:
        """Normalised scene tokens ``(B, 1 + num_groups, scene_dim)``, after the scene LM slot."""
        if points.dim() != 3 or points.shape[-1] != self.cfg.in_chans:
            raise ValueError(f"SceneVQA needs points (B, N, {self.cfg.in_chans}), got {tuple(points.shape)}")
        return self.scene_norm(self.scene_lm_slot(self.scene_encoder(points)))

    def forward_features(self, points: Tensor, question_ids: Tensor, question_padding_mask: Tensor,
                         situation_ids: Tensor, situation_padding_mask: Tensor) -> Tensor:
        """The fused feature ``(B, 2 * fusion_dim)``: [text pool, scene pool].

        Args:
            points: float (B, N, in_chans).
            question_ids, situation_ids: int64 (B, Lq) and (B, Ls).
            question_padding_mask, situation_padding_mask: bool, True = padding.
        """
        seg = self.segment_embed.weight
        question = self.text_proj(self.text_encoder(question_ids, question_padding_mask)) + seg[QUESTION]
        situation = self.text_proj(self.text_encoder(situation_ids, situation_padding_mask)) + seg[SITUATION]
        text = torch.cat([question, situation], dim=1)  # the question's [CLS] first: the pooler reads it
        text_mask = torch.cat([question_padding_mask, situation_padding_mask], dim=1)
        scene = self.scene_proj(self.forward_scene(points)) + seg[SCENE]
        scene_mask = torch.zeros(scene.shape[:2], dtype=torch.bool, device=scene.device)
        text, scene = coattend(self.text_layers, self.scene_layers, text, scene, text_mask, scene_mask)
        scene = self.fusion_lm_slot(scene)
        return torch.cat([self.text_pooler(text), self.scene_pooler(scene)], dim=-1)

    def forward(self, points: Tensor, question_ids: Tensor, question_padding_mask: Tensor,
                situation_ids: Tensor, situation_padding_mask: Tensor) -> dict[str, Tensor]:
        """``{"logits": (B, num_answers)}``, plus ``position`` (B, 3) and ``orientation`` (B, 4,
        unit quaternions) with the auxiliary heads; arguments as `forward_features`."""
        feature = self.forward_features(points, question_ids, question_padding_mask, situation_ids,
                                        situation_padding_mask)
        out = {"logits": self.classifier(feature)}
        if self.position_head is not None:
            out["position"] = self.position_head(feature)
            out["orientation"] = nn.functional.normalize(self.orientation_head(feature), dim=-1)
        return out


# -- the registered host (`lm4vis.hosts.scene_vqa_config` names these) -----------------------------
def build_scene_vqa(cfg: SceneVQAConfig, info: Any = None) -> SceneVQA:
    """The ``scene-vqa`` host, sized by the dataset's description.

    Args:
        cfg: the host config.
        info: a `lm4vis.data.vqa3d.SceneQAInfo` (``vocab_size``, ``pad_id``, ``num_answers``).
    """
    if info is None or not hasattr(info, "num_answers") or not hasattr(info, "vocab_size"):
        raise ValueError("the scene-vqa host is sized by its dataset (info.vocab_size, info.num_answers); build it "
                         "with the dataset's info, e.g. build_model(cfg.host, cfg.block, info=source.info)")
    return SceneVQA(cfg, info.vocab_size, info.pad_id, info.num_answers)


def check_data(cfg: SceneVQAConfig, info: Any) -> None:
    """The host must fit the data: channels per point, enough points, text positions."""
    from ..train.config import ConfigError

    channels = getattr(info, "num_channels", None)
    if channels is not None and channels != cfg.in_chans:
        raise ConfigError(f"host.in_chans={cfg.in_chans} but dataset {info.name!r} gives {channels} channels per "
                          f"point ({', '.join(info.channels)}); set host.in_chans={channels}")
    if not hasattr(info, "num_answers"):
        raise ConfigError(f"the scene-vqa host answers questions about scenes; dataset {info.name!r} has none "
                          "(use data.name=rooms3d-qa or sqa3d)")


def describe(cfg: SceneVQAConfig) -> str:
    """One line for reports."""
    return (f"scene-VQA ({cfg.num_groups} groups of {cfg.group_size}, scene depth {cfg.scene_depth} x "
            f"{cfg.scene_dim}, text {cfg.text_depth} x {cfg.text_dim}, co-attention {cfg.fusion_depth} x "
            f"{cfg.fusion_dim})")


__all__ = ["SceneVQA", "SceneEncoder", "SampledGrouper", "GROUPERS", "build_scene_vqa", "check_data", "describe", "QUESTION", "SITUATION", "SCENE"]
