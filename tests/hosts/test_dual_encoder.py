"""The registered ``dual-encoder`` host on tiny configs: every variant and placement built by
`build_model`, padding honoured, a training step lowers the loss, frozen weights stay put, and
the pretrained towers (CLIP vision, BERT) load from local folders."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from lm4vis.hosts import build_model, find_attachments
from lm4vis.hosts.configs import BlockConfig
from lm4vis.hosts.dual_encoder_config import POOLS, DualEncoderConfig, ImageTowerConfig, TextTowerConfig
from lm4vis.hosts.fusion import POOLS as TORCH_POOLS
from lm4vis.hosts.fusion import DualEncoder, check_dual_encoder_data, info_nce
from lm4vis.registry import HOSTS
from lm4vis.train.config import ConfigError

VOCAB, PAD = 20, 0


@dataclass(frozen=True)
class Info:  # the fields of CaptionInfo a host reads
    name: str = "captions"
    image_size: int = 16
    num_images: int = 4
    num_captions: int = 8
    vocab_size: int = VOCAB
    pad_id: int = PAD


def _cfg(**kw) -> DualEncoderConfig:
    return DualEncoderConfig(
        image=ImageTowerConfig(img_size=16, patch_size=8, kwargs=dict(embed_dim=24, depth=1, num_heads=2)),
        text=TextTowerConfig(embed_dim=16, depth=1, num_heads=2, max_length=16), embed_dim=8, **kw)


def _model(variant: str, where: str, tiny_llama: str, **kw) -> torch.nn.Module:
    return build_model(_cfg(**kw), BlockConfig(variant=variant, source=tiny_llama, where=where), seed=0, info=Info())


def _batch(batch: int = 4, length: int = 6, extra_padding: int = 0, pad_with: int = PAD):
    """uint8 images and captions of lengths 6, 5, 4, ... right-padded by ``extra_padding`` more."""
    gen = torch.Generator().manual_seed(1)
    image = torch.randint(0, 256, (batch, 3, 16, 16), generator=gen, dtype=torch.uint8)
    ids = torch.randint(1, VOCAB, (batch, length + extra_padding), generator=gen)
    lengths = torch.tensor([length - k % 3 for k in range(batch)])
    mask = torch.arange(length + extra_padding)[None] >= lengths[:, None]
    return image, ids.masked_fill(mask, pad_with), mask


VARIANTS = [  # (variant, where, pool)
    ("baseline", "image_lm_slot", "cls"),
    ("frozen-lm", "image_lm_slot", "cls"),
    ("frozen-lm", "image_lm_slot,text_lm_slot", "cls"),
    ("frozen-lm", "text_lm_slot", "mean"),
    ("mlp", "image_lm_slot", "cls"),
    ("random-lm", "image_lm_slot,text_lm_slot", "mean"),
]
IDS = [f"{v}-{w.replace('_lm_slot', '').replace(',', '+')}-{p}" for v, w, p in VARIANTS]


def test_registered_with_its_light_config() -> None:
    part = HOSTS.get("dual-encoder")
    assert part.config is DualEncoderConfig and POOLS == TORCH_POOLS
    assert set(part.get("stages")(DualEncoder(_cfg(), VOCAB, PAD))) == {"last_block", "host_attn", "post_norm"}


@pytest.mark.parametrize("variant, where, pool", VARIANTS, ids=IDS)
@pytest.mark.parametrize("pad_with", [PAD, 7], ids=["pad-id", "other-ids"])
def test_padding_changes_no_embedding(variant: str, where: str, pool: str, pad_with: int, tiny_llama: str) -> None:
    model = _model(variant, where, tiny_llama, pool=pool).eval()
    _, ids, mask = _batch()
    _, padded_ids, padded_mask = _batch(extra_padding=5, pad_with=pad_with)
    padded_ids[:, :6], padded_mask[:, :6] = ids, mask  # the same captions, five more padded positions
    with torch.no_grad():
        a, b = model.encode_text(ids, mask), model.encode_text(padded_ids, padded_mask)
        unmasked = model.encode_text(padded_ids, torch.zeros_like(padded_mask))
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    if pad_with != PAD:  # the mask is what hides them: unmasked, the extra ids change the embedding
        assert not torch.allclose(a, unmasked, atol=1e-3)


@pytest.mark.parametrize("variant, where, pool", VARIANTS, ids=IDS)
def test_training_step_lowers_the_loss(variant: str, where: str, pool: str, tiny_llama: str) -> None:
    model = _model(variant, where, tiny_llama, pool=pool).train()
    attached = find_attachments(model)
    expected = {} if variant == "baseline" else (
        {"image_lm_block", "text_lm_block"} if "," in where else {"lm_block"})
    assert set(attached) == set(expected)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert bool(frozen) == (variant in ("frozen-lm", "random-lm"))
    image, ids, mask = _batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(4):
        loss = model.loss(*model(image, ids, mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    assert model.log_logit_scale.grad is not None  # the temperature is learned
    params = dict(model.named_parameters())
    for name, value in frozen.items():
        assert torch.equal(params[name], value), name
    for slot in where.split(","):  # every named block sits in its tower's slot and is used
        assert getattr(model, slot).filled == (variant != "baseline")


def test_two_named_blocks_are_distinct_modules(tiny_llama: str) -> None:
    model = _model("random-lm", "image_lm_slot,text_lm_slot", tiny_llama)
    blocks = find_attachments(model)
    image, text = blocks["image_lm_block"].block, blocks["text_lm_block"].block
    assert image is not text and image.in_dim == 24 and text.in_dim == 16
    # random-lm draws each block's layers from its own seed
    first = lambda b: next(p for n, p in b.named_parameters() if "lm." in n and p.dim() == 2)  # noqa: E731
    assert not torch.equal(first(image), first(text))


def test_uint8_images_are_normalised_by_the_config() -> None:
    model = DualEncoder(_cfg(), VOCAB, PAD).eval()
    image, _, _ = _batch()
    by_hand = (image.float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        assert torch.allclose(model.encode_image(image), model.encode_image(by_hand), atol=1e-6)


def test_bad_placement_and_data_are_named(tiny_llama: str) -> None:
    with pytest.raises(ValueError, match="2 LM slots"):
        _model("frozen-lm", "last", tiny_llama)
    with pytest.raises(ValueError, match="distinct placements"):
        _model("frozen-lm", "image_lm_slot,image_lm_slot", tiny_llama)
    with pytest.raises(ConfigError, match="data.image_size=16"):
        check_dual_encoder_data(_cfg(), Info(image_size=32))
    with pytest.raises(ValueError, match="tokeniser"):
        build_model(_cfg(), BlockConfig(variant="baseline"), info=None)


@pytest.mark.parametrize("make, message", [
    (lambda: DualEncoderConfig(pool="max"), "host.pool"),
    (lambda: DualEncoderConfig(temperature=0.001), "max_logit_scale"),
    (lambda: ImageTowerConfig(img_size=20, patch_size=8), "multiple"),
    (lambda: TextTowerConfig(embed_dim=10, num_heads=3), "multiple"),
])
def test_config_checks(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_pretrained_towers_from_local_folders(tmp_path) -> None:
    """transformers' CLIP vision tower and a BERT, each saved by ``save_pretrained`` and used as
    they are; CLIP's CLS row after post_layernorm is CLIP's own pooled output."""
    from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel

    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                            num_attention_heads=4, image_size=16, patch_size=8)).eval()
    clip.save_pretrained(tmp_path / "clip")
    BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path / "bert")
    cfg = DualEncoderConfig(image=ImageTowerConfig(pretrained=str(tmp_path / "clip"), img_size=16, patch_size=8),
                            text=TextTowerConfig(pretrained=str(tmp_path / "bert")), embed_dim=8)
    model = DualEncoder(cfg, vocab_size=30, pad_id=0).eval()
    assert model.image_lm_slot.width == 32 and model.text_lm_slot.width == 16
    image, ids, mask = _batch()
    pixels = (image.float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        assert torch.allclose(model.image_tokens(image)[:, 0], clip(pixel_values=pixels).pooler_output, atol=1e-5)
        img, txt = model(image, ids, mask)
    assert img.shape == txt.shape == (4, 8)
    assert info_nce(img, txt, model.logit_scale).isfinite()
    with pytest.raises(ValueError, match="embeds 30 tokens"):
        DualEncoder(cfg, vocab_size=31, pad_id=0)
