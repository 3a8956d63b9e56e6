"""The vision-language hosts on tiny configs: masks honoured, slots in place, training works."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lm4vis.block import FrozenLMBlock
from lm4vis.hosts.dual_encoder_config import DualEncoderConfig, ImageTowerConfig, TextTowerConfig
from lm4vis.hosts.configs import TimmViTConfig
from lm4vis.hosts.fusion import (CoAttentionFusion, DualEncoder, FusionVQAConfig, ImageEncoderConfig, TextEncoder, TextEncoderConfig, additive_mask,
                                 info_nce)
from lm4vis.lm import random_lm, tiny_config

VOCAB, PAD, ANSWERS = 20, 0, 7


def _image() -> ImageEncoderConfig:
    return ImageEncoderConfig(name="vit_tiny_patch16_224", img_size=16, patch_size=8,
                              kwargs=dict(embed_dim=24, depth=1, num_heads=2))


def _text() -> TextEncoderConfig:
    return TextEncoderConfig(vocab_size=VOCAB, pad_id=PAD, embed_dim=16, depth=1, num_heads=2, max_length=16)


def _fusion() -> CoAttentionFusion:
    return CoAttentionFusion(FusionVQAConfig(image=_image(), text=_text(), num_answers=ANSWERS, embed_dim=32,
                                             depth=2, num_heads=4)).eval()


def _dual() -> DualEncoder:
    cfg = DualEncoderConfig(image=ImageTowerConfig(img_size=16, patch_size=8, kwargs=dict(embed_dim=24, depth=1, num_heads=2)),
                            text=TextTowerConfig(embed_dim=16, depth=1, num_heads=2, max_length=16), embed_dim=8)
    return DualEncoder(cfg, VOCAB, PAD).eval()


def _batch(batch: int = 3, length: int = 6, extra_padding: int = 0, pad_with: int | None = None):
    """Images, and questions of lengths 6, 5, 4 ... right-padded by `extra_padding` more."""
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(batch, 3, 16, 16, generator=gen)
    ids = torch.randint(1, VOCAB, (batch, length + extra_padding), generator=gen)
    lengths = torch.tensor([length - k for k in range(batch)])
    mask = torch.arange(length + extra_padding)[None] >= lengths[:, None]
    ids = ids.masked_fill(mask, PAD if pad_with is None else pad_with)
    return image, ids, mask


@pytest.mark.parametrize("make", [_fusion, _dual], ids=["fusion", "dual"])
@pytest.mark.parametrize("pad_with", [PAD, 7], ids=["pad-id", "other-ids"])
def test_padding_changes_no_prediction(make, pad_with: int) -> None:
    model = make()
    image, ids, mask = _batch()
    _, padded_ids, padded_mask = _batch(extra_padding=5, pad_with=pad_with)
    padded_ids[:, :6] = ids  # the same questions, five more padded positions (holding any id)
    padded_mask[:, :6] = mask
    with torch.no_grad():
        if isinstance(model, CoAttentionFusion):
            a, b = model(image, ids, mask), model(image, padded_ids, padded_mask)
        else:
            a, b = model.encode_text(ids, mask), model.encode_text(padded_ids, padded_mask)
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_fusion_output_and_streams() -> None:
    model = _fusion()
    image, ids, mask = _batch()
    logits = model(image, ids, mask)
    assert logits.shape == (3, ANSWERS)
    text, visual = model.forward_features(image, ids, mask)
    assert text.shape == (3, 6, 32) and visual.shape == (3, 1 + 4, 32)  # CLS + (16/8)^2 patches


@pytest.mark.parametrize("stream", ["text_layers", "image_layers"])
def test_co_attention_is_not_causal(stream: str) -> None:
    # BertLayer with cross-attention is a "decoder": SDPA would attend causally without a mask.
    layer = getattr(_fusion(), stream)[0]
    x, other = torch.randn(1, 5, 32), torch.randn(1, 3, 32)
    no_pad = additive_mask(torch.zeros(1, 5, dtype=torch.bool), x.dtype)
    other_mask = additive_mask(torch.zeros(1, 3, dtype=torch.bool), x.dtype)
    changed = x.clone()
    changed[:, -1] += 1.0
    with torch.no_grad():
        a = layer(x, no_pad, encoder_hidden_states=other, encoder_attention_mask=other_mask)
        b = layer(changed, no_pad, encoder_hidden_states=other, encoder_attention_mask=other_mask)
    assert not torch.allclose(a[:, 0], b[:, 0])  # the first token sees the last one


def test_cross_attention_ignores_padded_question_tokens() -> None:
    model = _fusion()
    image, ids, mask = _batch()
    text = model.text_proj(model.text_encoder(ids, mask))
    visual = model.image_proj(model.image_encoder.forward_features(image))
    layer = model.image_layers[0]
    image_mask = additive_mask(torch.zeros(visual.shape[:2], dtype=torch.bool), visual.dtype)
    scrambled = text.clone()
    scrambled[mask] = 100.0  # whatever sits at padded positions
    with torch.no_grad():
        a = layer(visual, image_mask, encoder_hidden_states=text, encoder_attention_mask=additive_mask(mask, text.dtype))
        b = layer(visual, image_mask, encoder_hidden_states=scrambled, encoder_attention_mask=additive_mask(mask, text.dtype))
    assert torch.allclose(a, b, atol=1e-5)


def _lm_block(width: int) -> FrozenLMBlock:
    return FrozenLMBlock(random_lm(tiny_config("llama"), [1]), in_dim=width)


@pytest.mark.parametrize("slot", ["image_lm_slot", "fusion_lm_slot"])
def test_filled_slot_is_used_and_stays_frozen(slot: str) -> None:
    model = _fusion()
    image, ids, mask = _batch()
    before = model(image, ids, mask).detach()
    getattr(model, slot).fill(_lm_block(getattr(model, slot).width))
    assert [n for n, _ in model.named_modules() if n.endswith(".block")] == [f"{slot}.block"]
    model.train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen, "the LM layers are frozen"
    _train_steps(model, lambda: F.binary_cross_entropy_with_logits(model(image, ids, mask), _targets()), 2)
    model.eval()
    assert not torch.allclose(model(image, ids, mask), before)
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name


def _targets() -> torch.Tensor:
    target = torch.zeros(3, ANSWERS)
    target[0, 1], target[1, 4], target[2, [2, 5]] = 1.0, 0.6, torch.tensor([0.9, 0.3])
    return target


def _train_steps(model: torch.nn.Module, loss_fn, steps: int) -> list[float]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_fusion_training_step_lowers_the_loss() -> None:
    model = _fusion().train()
    image, ids, mask = _batch()
    # soft targets, trained as ViLT and METER do: BCE scaled by the number of answers
    losses = _train_steps(model, lambda: F.binary_cross_entropy_with_logits(
        model(image, ids, mask), _targets()) * ANSWERS, 5)
    assert losses[-1] < losses[0]


def test_dual_encoder_training_step_lowers_the_loss() -> None:
    model = _dual().train()
    image, ids, mask = _batch(batch=4, length=6)
    losses = _train_steps(model, lambda: model.loss(*model(image, ids, mask)), 5)
    assert losses[-1] < losses[0]
    assert model.log_logit_scale.grad is not None  # the temperature is learned


def test_logit_scale_starts_at_the_temperature_and_is_capped() -> None:
    model = _dual()
    assert model.logit_scale.item() == pytest.approx(1 / 0.07)
    with torch.no_grad():
        model.log_logit_scale.fill_(10.0)
    assert model.logit_scale.item() == 100.0


def test_info_nce_by_hand() -> None:
    img = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    txt = F.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0], [1.0, 0.9]]), dim=-1)
    logits = 10.0 * img @ txt.T
    labels = torch.arange(3)
    by_hand = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert info_nce(img, txt, 10.0) == pytest.approx(by_hand.item())
    # pairs 0 and 2 show the same image: neither is the other's negative
    ids = torch.tensor([5, 6, 5])
    masked = logits.clone()
    masked[0, 2] = masked[2, 0] = float("-inf")
    expected = (F.cross_entropy(masked, labels) + F.cross_entropy(masked.T, labels)) / 2
    assert info_nce(img, txt, 10.0, ids) == pytest.approx(expected.item())
    assert info_nce(img, txt, 10.0, ids) < info_nce(img, txt, 10.0)


def test_dual_encoder_embeddings() -> None:
    model = _dual()
    image, ids, mask = _batch()
    img, txt = model(image, ids, mask)
    assert img.shape == txt.shape == (3, 8)
    assert torch.allclose(img.norm(dim=-1), torch.ones(3)) and torch.allclose(txt.norm(dim=-1), torch.ones(3))


@pytest.mark.parametrize("make, message", [
    (lambda: TextEncoder(TextEncoderConfig()), "vocab_size"),  # 0: the dataset's, filled by the builder
    (lambda: TextEncoderConfig(vocab_size=5, pad_id=5), "pad_id"),
    (lambda: TextEncoderConfig(vocab_size=5, embed_dim=10, num_heads=3), "multiple"),
    (lambda: CoAttentionFusion(FusionVQAConfig(image=_image(), text=_text())), "num_answers"),
    (lambda: FusionVQAConfig(image=_image(), text=_text(), num_answers=3, embed_dim=30, num_heads=4), "multiple"),
    (lambda: ImageEncoderConfig(encoder="clip"), "clip_dir"),
    (lambda: ImageEncoderConfig(encoder="vit"), "unknown"),
])
def test_config_checks(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
