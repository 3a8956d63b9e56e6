"""Vision-language hosts: METER-style co-attention fusion for VQA, and a dual encoder for
image-text retrieval, each with `LMSlot` s where the paper puts the frozen LM block.

`CoAttentionFusion` (Dou et al., METER, CVPR 2022)::

    image -> timm ViT / CLIP -> image_lm_slot -> proj --> image layers -> fusion_lm_slot -> pool --+
                                                             ^   |                                 +-> classifier
    text  -> text encoder --------------------> proj --> text layers -----------------------> pool --+

    a layer: self-attention -> cross-attention to the other stream -> FFN

Each co-attention layer is transformers' ``BertLayer`` built with ``add_cross_attention``; the
two streams are updated in parallel from the previous layer's outputs, as in METER
(`coattention_layers`, `coattend`: the scene-VQA host of `lm4vis.hosts.scene_vqa` fuses with them too). The two
slots are the placements to compare: on the visual tokens after the image encoder (after its
last block and final norm) and on the visual stream after the fusion. Both stay identities
until `lm4vis.attach` fills them, so the baseline is the same module tree minus the block.
The registered host ``fusion-vqa`` (`build_fusion_vqa`; its config and placements are in
`lm4vis.hosts.fusion_vqa_config`) sizes the model from the dataset.

`DualEncoder` (the registered ``dual-encoder`` host; its config is in
`lm4vis.hosts.dual_encoder_config`): image and text encoders, each pooled and projected into one
space; cosine similarities scaled by a learned temperature, trained with symmetric InfoNCE.

Images come in normalised (float [B, 3, H, W]); token ids and ``text_padding_mask`` (True =
padding) as `lm4vis.data.vl.collate_vl` makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .configs import TimmViTConfig
from .dual_encoder_config import DualEncoderConfig
from .fusion_vqa_config import FusionVQAConfig, ImageEncoderConfig, TextEncoderConfig
from .slot import LMSlot
from .vit import build_timm_vit


def _default_image() -> TimmViTConfig:
    return TimmViTConfig(name="vit_tiny_patch16_224", img_size=64, patch_size=8, in_chans=3, num_classes=0)


def build_image_encoder(cfg: TimmViTConfig) -> nn.Module:
    """The timm ViT of ``cfg`` without its classifier; ``forward_features`` gives its tokens."""
    return build_timm_vit(replace(cfg, num_classes=0))


class TextEncoder(nn.Module):
    """Token ids -> contextual token features [B, L, width] (bidirectional, padding ignored).

    Args:
        cfg: a small BERT's sizes, or a local pretrained folder.
    """

    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        from transformers import AutoModel, BertConfig, BertModel

        if cfg.pretrained is not None:
            self.model = AutoModel.from_pretrained(cfg.pretrained, local_files_only=True)
        else:
            if cfg.vocab_size < 1:
                raise ValueError("text.vocab_size must be set (the dataset's info.vocab_size; the "
                                 "registered hosts' builders fill it)")
            self.model = BertModel(BertConfig(
                vocab_size=cfg.vocab_size, hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth,
                num_attention_heads=cfg.num_heads, intermediate_size=round(cfg.embed_dim * cfg.mlp_ratio),
                max_position_embeddings=cfg.max_length, pad_token_id=cfg.pad_id, type_vocab_size=1,
                hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
            ), add_pooling_layer=False)
        self.embed_dim: int = self.model.config.hidden_size

    def forward(self, input_ids: Tensor, text_padding_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=(~text_padding_mask).long()).last_hidden_state


def additive_mask(padding_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """[B, K] bool (True = padding) -> [B, 1, 1, K] float: 0 to attend, the dtype's min to ignore."""
    return torch.zeros(padding_mask.shape, dtype=dtype, device=padding_mask.device).masked_fill(
        padding_mask, torch.finfo(dtype).min)[:, None, None, :]


def coattention_layers(dim: int, depth: int, num_heads: int, mlp_ratio: float,
                       dropout: float) -> tuple[nn.ModuleList, nn.ModuleList]:
    """METER's co-attention layers: ``depth`` transformers ``BertLayer`` s per stream, each
    self-attention -> cross-attention to the other stream -> FFN.

    Args:
        dim: token width of both streams.
        depth: layers per stream.
        num_heads: attention heads.
        mlp_ratio: FFN width over ``dim``.
        dropout: hidden and attention dropout.
    """
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    # BertLayer builds cross-attention only as a "decoder", whose self-attention SDPA would
    # then run causally when given no mask: `coattend` always passes masks, so it never is.
    layer_cfg = BertConfig(hidden_size=dim, num_attention_heads=num_heads, intermediate_size=round(dim * mlp_ratio),
                           is_decoder=True, add_cross_attention=True, hidden_dropout_prob=dropout,
                           attention_probs_dropout_prob=dropout, attn_implementation="sdpa")
    return (nn.ModuleList(BertLayer(layer_cfg) for _ in range(depth)),
            nn.ModuleList(BertLayer(layer_cfg) for _ in range(depth)))


def coattend(text_layers: nn.ModuleList, visual_layers: nn.ModuleList, text: Tensor, visual: Tensor,
             text_padding_mask: Tensor, visual_padding_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Both streams through their co-attention layers (from `coattention_layers`); each layer
    reads the other stream's output of the previous layer (METER's order).

    Args:
        text_layers, visual_layers: the two streams' layers.
        text, visual: [B, L, d] and [B, N, d] tokens.
        text_padding_mask, visual_padding_mask: bool [B, L] and [B, N], True = padding.
    """
    text_mask = additive_mask(text_padding_mask, text.dtype)
    visual_mask = additive_mask(visual_padding_mask, visual.dtype)
    for text_layer, visual_layer in zip(text_layers, visual_layers):
        text, visual = (
            text_layer(text, text_mask, encoder_hidden_states=visual, encoder_attention_mask=visual_mask),
            visual_layer(visual, visual_mask, encoder_hidden_states=text, encoder_attention_mask=text_mask),
        )
    return text, visual


class Pooler(nn.Module):
    """The first token through a linear layer and tanh (BERT's and METER's pooler)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)

    def forward(self, tokens: Tensor) -> Tensor:
        return torch.tanh(self.dense(tokens[:, 0]))


class CLIPVisionTokens(nn.Module):
    """transformers' CLIP vision tower as an image encoder: every token of its last layer after
    its final LayerNorm (``post_layernorm``), as METER feeds CLIP's tokens to the fusion.

    Args:
        folder: a local folder saved by ``CLIPVisionModel`` or ``CLIPModel.save_pretrained``.
    """

    def __init__(self, folder: str) -> None:
        super().__init__()
        from transformers import CLIPVisionModel

        self.model = CLIPVisionModel.from_pretrained(folder, local_files_only=True)
        # transformers 4 nests the tower under `vision_model`; 5 puts its parts on the model itself.
        self.tower_path = "model.vision_model" if hasattr(self.model, "vision_model") else "model"
        self.embed_dim: int = self.model.config.hidden_size
        self.img_size: int = self.model.config.image_size
        self.patch_size: int = self.model.config.patch_size
        self.num_prefix_tokens = 1  # CLS

    def forward_features(self, image: Tensor) -> Tensor:
        tokens = self.model(pixel_values=image).last_hidden_state
        return self.get_submodule(self.tower_path).post_layernorm(tokens)


def build_vqa_image_encoder(cfg: ImageEncoderConfig) -> nn.Module:
    """The image encoder ``cfg`` names: a timm ViT (no classifier) or a local CLIP tower.
    Either has ``embed_dim`` and ``forward_features(image) -> tokens [B, 1 + N, embed_dim]``."""
    if cfg.encoder == "clip":
        encoder = CLIPVisionTokens(cfg.clip_dir)
        if cfg.img_size is not None and cfg.img_size != encoder.img_size:
            raise ValueError(f"host.image.img_size={cfg.img_size} but the CLIP tower in {cfg.clip_dir} "
                             f"takes {encoder.img_size} px images; set host.image.img_size={encoder.img_size}")
        return encoder
    return build_image_encoder(cfg)


def _meter_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def answer_prior_logit(num_answers: int) -> float:
    """log(p / (1 - p)) of p = 1 / num_answers: each answer's logit when one answer in
    ``num_answers`` is right and nothing is known yet (-3.0 for 22 answers, -8.0 for 3,129)."""
    return -math.log(max(num_answers - 1, 1))


class CoAttentionFusion(nn.Module):
    """METER-style VQA model: answer logits [B, num_answers] from an image and a question.

    Args:
        cfg: the model's configuration, with ``num_answers`` and ``text.vocab_size`` set
            (`build_fusion_vqa` fills them from the dataset).
    """

    def __init__(self, cfg: FusionVQAConfig) -> None:
        super().__init__()
        if cfg.num_answers < 1:
            raise ValueError("num_answers must be set (the dataset's info.num_answers)")
        self.cfg = cfg
        self.image_encoder = build_vqa_image_encoder(cfg.image)
        self.image_lm_slot = LMSlot(self.image_encoder.embed_dim)
        self.text_encoder = TextEncoder(cfg.text)
        d = cfg.embed_dim
        self.image_proj = nn.Linear(self.image_encoder.embed_dim, d)
        self.text_proj = nn.Linear(self.text_encoder.embed_dim, d)
        self.modality_embed = nn.Embedding(2, d)  # 0 text, 1 image: which stream a token is from
        self.text_layers, self.image_layers = coattention_layers(d, cfg.depth, cfg.num_heads, cfg.mlp_ratio,
                                                                 cfg.dropout)
        self.fusion_lm_slot = LMSlot(d)
        self.text_pooler, self.image_pooler = Pooler(d), Pooler(d)
        # METER's VQA head: 2d -> 2d -> answers, with LayerNorm and GELU between.
        self.classifier = nn.Sequential(nn.Linear(2 * d, 2 * d), nn.LayerNorm(2 * d), nn.GELU(),
                                        nn.Linear(2 * d, cfg.num_answers))
        # METER's init of everything it adds to the two encoders (`objectives.init_weights`):
        # N(0, 0.02) weights and embeddings, zero biases. torch's N(0, 1) embedding would make
        # the modality embedding drown every token in the same constant.
        for part in (self.image_proj, self.text_proj, self.modality_embed, self.text_layers, self.image_layers,
                     self.text_pooler, self.image_pooler, self.classifier):
            part.apply(_meter_init)
        # Soft BCE scores every answer as its own yes/no, and nearly all are "no": from a zero
        # bias (p = 0.5 each) the first hundreds of AdamW steps go into pushing every logit
        # down, which a bias moves by only ~lr per step. Starting at the prior of one answer
        # in A (RetinaNet's prior init) skips that: 64 fixed shapes-vqa questions were
        # memorised in 100 steps (53% after 200 from a zero bias).
        nn.init.constant_(self.classifier[-1].bias, answer_prior_logit(cfg.num_answers))

    def forward_features(self, image: Tensor, input_ids: Tensor,
                         text_padding_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Fused (text [B, L, d], image [B, N, d]) tokens.

        Args:
            image: float [B, 3, H, W], normalised.
            input_ids: int64 [B, L].
            text_padding_mask: bool [B, L], True = padding.
        """
        text = self.text_proj(self.text_encoder(input_ids, text_padding_mask))
        visual = self.image_proj(self.image_lm_slot(self.image_encoder.forward_features(image)))
        kinds = self.modality_embed.weight
        text, visual = text + kinds[0], visual + kinds[1]
        image_padding_mask = torch.zeros(visual.shape[:2], dtype=torch.bool, device=visual.device)
        text, visual = coattend(self.text_layers, self.image_layers, text, visual, text_padding_mask,
                                image_padding_mask)
        return text, self.fusion_lm_slot(visual)

    def forward(self, image: Tensor, input_ids: Tensor, text_padding_mask: Tensor) -> Tensor:
        """Answer logits [B, num_answers]; see `forward_features` for the arguments."""
        text, visual = self.forward_features(image, input_ids, text_padding_mask)
        return self.classifier(torch.cat([self.text_pooler(text), self.image_pooler(visual)], dim=-1))


# -- the registered ``fusion-vqa`` host (`lm4vis.hosts.fusion_vqa_config` names these) -------------
def build_fusion_vqa(cfg: FusionVQAConfig, info: Any = None) -> CoAttentionFusion:
    """The ``fusion-vqa`` host, sized by the dataset: its answers, vocabulary and padding id.

    Args:
        cfg: the host config (``num_answers`` and ``text.vocab_size`` 0: the dataset's).
        info: the dataset's `lm4vis.data.vl.VQAInfo`.
    """
    if info is not None:
        check_data(cfg, info)
        text = cfg.text if cfg.text.pretrained is not None else replace(
            cfg.text, vocab_size=info.vocab_size, pad_id=info.pad_id)
        cfg = replace(cfg, num_answers=info.num_answers, text=text)
    return CoAttentionFusion(cfg)


def check_data(cfg: FusionVQAConfig, info: Any) -> None:
    """The host must fit the data: answers, vocabulary and image size, where the config sets them."""
    from ..train.config import ConfigError

    answers = getattr(info, "num_answers", None)
    if answers is None:
        raise ConfigError(f"host.kind=fusion-vqa answers questions, but dataset {info.name!r} has no answer "
                          "vocabulary; use a VQA dataset (shapes-vqa, vqav2)")
    if cfg.num_answers and cfg.num_answers != answers:
        raise ConfigError(f"host.num_answers={cfg.num_answers} but dataset {info.name!r} has {answers} answers; "
                          "set host.num_answers=0 (the dataset's) or to that number")
    if cfg.text.pretrained is None and cfg.text.vocab_size and cfg.text.vocab_size != info.vocab_size:
        raise ConfigError(f"host.text.vocab_size={cfg.text.vocab_size} but the dataset's tokeniser has "
                          f"{info.vocab_size} ids; set host.text.vocab_size=0 (the dataset's)")
    if cfg.text.pretrained is None and info.vocab_size and getattr(info, "max_length", 0) > cfg.text.max_length:
        raise ConfigError(f"questions are up to {info.max_length} tokens but host.text.max_length="
                          f"{cfg.text.max_length}; raise host.text.max_length or lower data.max_length")
    if cfg.image.encoder == "timm" and cfg.image.img_size != info.image_size:
        raise ConfigError(f"host.image.img_size={cfg.image.img_size} but the dataset's images are "
                          f"{info.image_size} px; set data.image_size={cfg.image.img_size} (or leave it null)")


def describe(cfg: FusionVQAConfig) -> str:
    """One line for reports."""
    image = (f"CLIP from {cfg.image.clip_dir}" if cfg.image.encoder == "clip" else
             f"{cfg.image.name} ({cfg.image.img_size} px, patch {cfg.image.patch_size}"
             + "".join(f", {k}={v}" for k, v in cfg.image.kwargs.items()) + ")")
    text = (f"text from {cfg.text.pretrained}" if cfg.text.pretrained else
            f"text BERT {cfg.text.depth}x{cfg.text.embed_dim}")
    return f"METER-style fusion: {image}, {text}, {cfg.depth} co-attention layers of {cfg.embed_dim}"


def fusion_vqa_stages(model: CoAttentionFusion) -> dict[str, tuple[str, str]]:
    """The host's own hook points: its image encoder's (``last_block``, ``post_norm``) and the
    visual tokens at each slot (``visual_in``/``visual_out``: the image encoder's tokens before and
    after the ``visual`` slot; ``fused_in``/``fused_out``: the visual stream before and after the
    ``fusion`` slot). An empty slot passes its tokens through, so a baseline has the same points."""
    from .vit import vit_stages

    encoder = model.image_encoder
    if isinstance(encoder, CLIPVisionTokens):
        tower = encoder.tower_path
        layers = encoder.get_submodule(tower).encoder.layers
        own = {"last_block": (f"{tower}.encoder.layers.{len(layers) - 1}", "output"),
               "post_norm": (f"{tower}.post_layernorm", "output")}
    else:
        own = vit_stages(encoder)
    points = {k: (f"image_encoder.{path}", side) for k, (path, side) in own.items()}
    points.update({"visual_in": ("image_lm_slot", "input"), "visual_out": ("image_lm_slot", "output"),
                   "fused_in": ("fusion_lm_slot", "input"), "fused_out": ("fusion_lm_slot", "output")})
    return points


def fusion_vqa_layout(model: CoAttentionFusion, batch: Any = None) -> Any:
    """The image tokens' patch grid after the CLS token (timm's or CLIP's)."""
    from ..analysis.layout import GridLayout
    from .vit import vit_layout

    encoder = model.image_encoder
    if isinstance(encoder, CLIPVisionTokens):
        side = encoder.img_size // encoder.patch_size
        return GridLayout(1, (side, side))
    return vit_layout(encoder)


#: How a tower pools its tokens (`lm4vis.hosts.dual_encoder_config.POOLS`; a test keeps the two equal).
POOLS: tuple[str, ...] = ("cls", "mean")


class DualEncoder(nn.Module):
    """Image and text towers in one embedding space, for retrieval (CLIP's shape)::

        image (uint8) -> normalise -> ViT (timm, or CLIP's vision tower) -> image_lm_slot -> pool -> image_proj -+
        text ids + padding mask -> text encoder (small BERT, or BERT/RoBERTa) -> text_lm_slot -> pool -> text_proj -+-> cosine x logit_scale

    Both slots stay identities until `lm4vis.attach` fills them (``block.where: image_lm_slot``;
    ``image_lm_slot,text_lm_slot`` for a block in each tower). The text slot receives the
    padding mask, so padded positions reach no embedding anywhere.

    Args:
        cfg: the host's light config (`lm4vis.hosts.dual_encoder_config.DualEncoderConfig`).
        vocab_size: the text vocabulary (the dataset's ``info.vocab_size``); a pretrained text
            encoder must cover it.
        pad_id: the id of padded text positions (the dataset's ``info.pad_id``).
    """

    def __init__(self, cfg: DualEncoderConfig, vocab_size: int, pad_id: int) -> None:
        super().__init__()
        self.cfg = cfg
        im, tx = cfg.image, cfg.text
        if im.pretrained is not None:
            from transformers import CLIPVisionModel

            self.image_encoder = CLIPVisionModel.from_pretrained(im.pretrained, local_files_only=True)
            image_width = self.image_encoder.config.hidden_size
            self.image_prefix_tokens = 1
        else:
            self.image_encoder = build_image_encoder(TimmViTConfig(
                name=im.name, img_size=im.img_size, patch_size=im.patch_size, in_chans=3, num_classes=0,
                drop_path_rate=im.drop_path_rate, kwargs=dict(im.kwargs)))
            image_width = self.image_encoder.embed_dim
            self.image_prefix_tokens = int(getattr(self.image_encoder, "num_prefix_tokens", 1))
        self.register_buffer("image_mean", torch.tensor(im.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(im.std).view(1, 3, 1, 1), persistent=False)
        self.image_lm_slot = LMSlot(image_width)
        self.text_encoder = TextEncoder(TextEncoderConfig(
            vocab_size=vocab_size, pad_id=pad_id, embed_dim=tx.embed_dim, depth=tx.depth, num_heads=tx.num_heads,
            mlp_ratio=tx.mlp_ratio, max_length=tx.max_length, dropout=tx.dropout, pretrained=tx.pretrained))
        if tx.pretrained is not None and self.text_encoder.model.config.vocab_size < vocab_size:
            raise ValueError(f"the text encoder in {tx.pretrained} embeds {self.text_encoder.model.config.vocab_size} "
                             f"tokens but the dataset's tokeniser has {vocab_size}; point data.tokenizer at "
                             "the same folder")
        self.text_lm_slot = LMSlot(self.text_encoder.embed_dim)
        self.image_proj = nn.Linear(image_width, cfg.embed_dim, bias=False)
        self.text_proj = nn.Linear(self.text_encoder.embed_dim, cfg.embed_dim, bias=False)
        # Learned as log(1 / temperature), as CLIP does, so the scale stays positive.
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1 / cfg.temperature)))

    @property
    def logit_scale(self) -> Tensor:
        return self.log_logit_scale.exp().clamp(max=self.cfg.max_logit_scale)

    def image_tokens(self, image: Tensor) -> Tensor:
        """Visual tokens [B, N, width] after the image encoder's final norm and ``image_lm_slot``.

        Args:
            image: uint8 [B, 3, H, W] (normalised here with ``host.image.mean/std``), or float
                [B, 3, H, W] already normalised.
        """
        if not image.is_floating_point():
            image = (image.float() / 255.0 - self.image_mean) / self.image_std
        if self.cfg.image.pretrained is not None:
            # CLIP applies post_layernorm to the pooled token only; per token it is the same
            # LayerNorm, so the CLS row here is CLIP's own pooled output.
            out = self.image_encoder(pixel_values=image.to(self.image_proj.weight.dtype))
            # transformers 5 keeps the layers on the model itself, earlier releases under .vision_model
            tower = getattr(self.image_encoder, "vision_model", self.image_encoder)
            tokens = tower.post_layernorm(out.last_hidden_state)
        else:
            tokens = self.image_encoder.forward_features(image)
        return self.image_lm_slot(tokens)

    def text_tokens(self, input_ids: Tensor, text_padding_mask: Tensor) -> Tensor:
        """Text tokens [B, L, width] after ``text_lm_slot`` (padding masked everywhere)."""
        return self.text_lm_slot(self.text_encoder(input_ids, text_padding_mask), text_padding_mask)

    def _pool(self, tokens: Tensor, padding_mask: Tensor | None, prefix: int) -> Tensor:
        if self.cfg.pool == "cls":
            return tokens[:, 0]
        if padding_mask is None:
            return tokens[:, prefix:].mean(dim=1)
        keep = (~padding_mask).to(tokens.dtype)[..., None]
        return (tokens * keep).sum(1) / keep.sum(1).clamp_min(1.0)

    def encode_image(self, image: Tensor) -> Tensor:
        """Unit-norm image embeddings [B, embed_dim]; see `image_tokens` for the input."""
        pooled = self._pool(self.image_tokens(image), None, self.image_prefix_tokens)
        return F.normalize(self.image_proj(pooled), dim=-1)

    def encode_text(self, input_ids: Tensor, text_padding_mask: Tensor) -> Tensor:
        """Unit-norm text embeddings [B, embed_dim] of ids [B, L] with their padding mask (True = pad)."""
        pooled = self._pool(self.text_tokens(input_ids, text_padding_mask), text_padding_mask, 0)
        return F.normalize(self.text_proj(pooled), dim=-1)

    def forward(self, image: Tensor, input_ids: Tensor, text_padding_mask: Tensor) -> tuple[Tensor, Tensor]:
        """(image embeddings, text embeddings) of paired images and captions."""
        return self.encode_image(image), self.encode_text(input_ids, text_padding_mask)

    def loss(self, image_embeds: Tensor, text_embeds: Tensor, image_ids: Tensor | None = None) -> Tensor:
        """Symmetric InfoNCE of paired embeddings (row i of each is one pair).

        Args:
            image_embeds, text_embeds: [B, embed_dim], from `forward`.
            image_ids: int64 [B], which image each pair shows; two captions of one image in a
                batch are then not counted as each other's negatives.
        """
        return info_nce(image_embeds, text_embeds, self.logit_scale, image_ids)


def build_dual_encoder(cfg: DualEncoderConfig, info: Any = None) -> DualEncoder:
    """The registered ``dual-encoder`` host, sized by the dataset's tokeniser.

    Args:
        cfg: the host's light config.
        info: the dataset's `lm4vis.data.vl.CaptionInfo` (``vocab_size``, ``pad_id``).
    """
    if info is None or not getattr(info, "vocab_size", 0):
        raise ValueError("the dual-encoder host is sized by its dataset's tokeniser: build it with the "
                         "dataset's info (a caption dataset: karpathy-captions, shapes-captions)")
    return DualEncoder(cfg, info.vocab_size, info.pad_id)


def check_dual_encoder_data(cfg: DualEncoderConfig, info: Any) -> None:
    """The data must be image-caption pairs at the image tower's size."""
    from ..train.config import ConfigError

    if not hasattr(info, "num_captions"):
        raise ConfigError(f"host.kind=dual-encoder needs an image-caption dataset (karpathy-captions, "
                          f"shapes-captions); {info.name!r} is not one")
    if cfg.image.pretrained is None and info.image_size != cfg.image.img_size:
        raise ConfigError(f"host.image.img_size={cfg.image.img_size} but dataset {info.name!r} gives "
                          f"{info.image_size}-pixel images; set data.image_size={cfg.image.img_size}")


def describe_dual_encoder(cfg: DualEncoderConfig) -> str:
    """One line for reports."""
    im, tx = cfg.image, cfg.text
    image = f"CLIP vision ({im.pretrained})" if im.pretrained else (
        f"{im.name} (patch {im.patch_size}" + "".join(f", {k}={v}" for k, v in im.kwargs.items()) + ")")
    text = f"text {tx.pretrained}" if tx.pretrained else f"text BERT {tx.depth}x{tx.embed_dim}"
    return f"dual encoder: {image} + {text} -> {cfg.embed_dim}-d, {cfg.pool} pool"


def dual_encoder_stages(model: nn.Module) -> dict[str, tuple[str, str]]:
    """The image tower's hook points for the analysis (the timm ViT's, under ``image_encoder``)."""
    from .vit import vit_stages

    if model.cfg.image.pretrained is not None:
        return {}
    return {stage: (f"image_encoder.{path}", where) for stage, (path, where) in vit_stages(model.image_encoder).items()}


def info_nce(image_embeds: Tensor, text_embeds: Tensor, logit_scale: Tensor | float,
             image_ids: Tensor | None = None) -> Tensor:
    """Mean of the image->text and text->image cross-entropies over scaled cosine similarities.

    Args:
        image_embeds, text_embeds: unit-norm [B, D]; pair i is the positive of row i.
        logit_scale: 1 / temperature.
        image_ids: int64 [B]; off-diagonal pairs of the same image are left out of the softmax
            (they are not negatives), when given.
    """
    logits = logit_scale * image_embeds @ text_embeds.T
    if image_ids is not None:
        same = image_ids[:, None] == image_ids[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


__all__ = ["TextEncoderConfig", "FusionVQAConfig", "ImageEncoderConfig", "DualEncoderConfig", "build_image_encoder",
           "build_vqa_image_encoder",
           "TextEncoder", "CLIPVisionTokens", "CoAttentionFusion", "build_fusion_vqa", "check_data", "describe",
           "fusion_vqa_stages", "fusion_vqa_layout", "DualEncoder", "build_dual_encoder", "POOLS", "Pooler",
           "additive_mask", "answer_prior_logit", "coattention_layers", "coattend", "info_nce"]
