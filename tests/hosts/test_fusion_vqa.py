"""The registered ``fusion-vqa`` host: built from its light config and the dataset's sizes, every
variant at every placement (visual, fusion, both), masks honoured, a training step lowers the
loss, and the pretrained parts (a CLIP vision tower, a BERT text encoder) read from local folders."""

from __future__ import annotations

import pytest
import torch

from lm4vis.data.vl.items import VQAInfo
from lm4vis.hosts import build_model, find_attachments
from lm4vis.hosts.configs import BlockConfig
from lm4vis.hosts.fusion import CLIPVisionTokens, fusion_vqa_layout, fusion_vqa_stages
from lm4vis.hosts.fusion_vqa_config import PLACEMENTS, FusionVQAConfig
from lm4vis.tasks.vqa import VQATask
from lm4vis.train.config import ConfigError

ANSWERS, VOCAB, PAD, SIZE = 6, 30, 0, 16
INFO = VQAInfo("tiny-vqa", SIZE, tuple(f"a{i}" for i in range(ANSWERS)), ("yes/no", "number", "other"), (),
               VOCAB, PAD, max_length=12)


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory) -> str:
    """A 2-layer random LLaMA (width 32) saved by transformers."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(path)
    return str(path)


def _host(**over) -> FusionVQAConfig:
    return FusionVQAConfig(**{
        "image": {"img_size": SIZE, "patch_size": 8, "kwargs": {"embed_dim": 24, "depth": 1, "num_heads": 2}},
        "text": {"embed_dim": 16, "depth": 1, "num_heads": 2, "max_length": 16},
        "embed_dim": 24, "depth": 1, "num_heads": 2, **over})


def _batch(extra_padding: int = 0, filler: int = PAD, seed: int = 1) -> dict:
    """Three questions of lengths 7, 5, 3, right-padded with `extra_padding` more positions."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 5, 3])
    width = 7 + extra_padding
    ids = torch.randint(4, VOCAB, (3, width), generator=g)
    mask = torch.arange(width)[None] >= lengths[:, None]
    target = torch.zeros(3, ANSWERS)
    target[0, 1], target[1, [2, 3]], target[2, 5] = 1.0, torch.tensor([0.6, 0.3]), 0.9
    return {"image": torch.randn(3, 3, SIZE, SIZE, generator=g), "input_ids": ids.masked_fill(mask, filler),
            "text_padding_mask": mask, "target": target, "accuracy": target.clone(),
            "answer_type": torch.tensor([0, 2, 1])}


def _model(lm_dir: str, variant: str, where: str, seed: int = 0):
    return build_model(_host(), BlockConfig(variant=variant, source=lm_dir, where=where), seed=seed, info=INFO)


VARIANT_PLACEMENTS = [("baseline", "visual")] + [(v, w) for v in ("frozen-lm", "mlp") for w in ("visual", "fusion", "both")]


@pytest.mark.parametrize("variant, where", VARIANT_PLACEMENTS)
def test_every_variant_and_placement_trains_and_ignores_padding(tiny_lm_dir, variant, where) -> None:
    model = _model(tiny_lm_dir, variant, where)
    blocks = find_attachments(model)
    expected = {} if variant == "baseline" else PLACEMENTS[where]
    assert {name: att.target_path for name, att in blocks.items()} == expected
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert bool(frozen) == (variant == "frozen-lm")  # the mlp control trains all it has

    task = VQATask(PAD, INFO.answer_types)
    batch = _batch()
    model.eval()
    with torch.no_grad():
        short = model(batch["image"], batch["input_ids"], batch["text_padding_mask"])
        for filler in (PAD, 9):  # five more padded positions, holding the pad id or any other id
            longer = _batch(extra_padding=5, filler=filler)
            longer["input_ids"][:, :7] = batch["input_ids"]
            assert torch.allclose(short, model(batch["image"], longer["input_ids"], longer["text_padding_mask"]),
                                  atol=1e-5)

    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(4):
        loss = task.loss(*task.forward(model, batch, train=True), train=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name


def test_both_is_visual_plus_a_second_block(tiny_lm_dir) -> None:
    # The visual block of `both` starts as the block of `visual` does (same seed, same draws).
    single = dict(_model(tiny_lm_dir, "frozen-lm", "visual").named_parameters())
    both = dict(_model(tiny_lm_dir, "frozen-lm", "both").named_parameters())
    for name in ("image_lm_slot.block.proj_in.weight", "image_lm_slot.block.proj_out.weight"):
        assert torch.equal(single[name], both[name])
    assert not torch.equal(both["image_lm_slot.block.proj_in.weight"], both["fusion_lm_slot.block.proj_in.weight"])


def test_sizes_come_from_the_dataset_and_are_checked(tiny_lm_dir) -> None:
    model = _model(tiny_lm_dir, "baseline", "visual")
    assert model.classifier[-1].out_features == ANSWERS
    assert model.text_encoder.model.config.vocab_size == VOCAB
    bad = [(_host(num_answers=ANSWERS + 1), "num_answers"),
           (_host(image={"img_size": 32, "patch_size": 8}), "img_size"),
           (_host(text={"vocab_size": VOCAB + 3}), "vocab_size"),
           (_host(text={"max_length": 8}), "max_length")]
    for cfg, message in bad:
        with pytest.raises(ConfigError, match=message):
            build_model(cfg, BlockConfig(variant="baseline"), info=INFO)


def test_registered_stages_and_layout_exist(tiny_lm_dir) -> None:
    model = _model(tiny_lm_dir, "frozen-lm", "both")
    names = {n for n, _ in model.named_modules()}
    stages = fusion_vqa_stages(model)
    assert {"last_block", "post_norm", "visual_in", "visual_out", "fused_in", "fused_out"} <= set(stages)
    assert all(path in names for path, _ in stages.values())
    layout = fusion_vqa_layout(model)
    assert (layout.num_prefix_tokens, layout.grid) == (1, (2, 2))


def test_clip_tower_and_bert_from_local_folders(tmp_path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast, CLIPVisionConfig, CLIPVisionModel

    clip_dir, bert_dir = tmp_path / "clip", tmp_path / "bert"
    CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                     num_attention_heads=2, image_size=SIZE, patch_size=8)).save_pretrained(clip_dir)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "colour", "is", "it", "?"]
    bert_dir.mkdir()
    (bert_dir / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt")).save_pretrained(bert_dir)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(bert_dir)
    info = VQAInfo("tiny-vqa", SIZE, INFO.answers, INFO.answer_types, (), len(words), 0, max_length=12)
    cfg = _host(image={"encoder": "clip", "clip_dir": str(clip_dir), "img_size": SIZE},
                text={"pretrained": str(bert_dir)})
    model = build_model(cfg, BlockConfig(variant="baseline"), info=info).eval()
    assert isinstance(model.image_encoder, CLIPVisionTokens) and model.image_proj.in_features == 32
    assert model.text_proj.in_features == 16
    batch = _batch()
    ids = batch["input_ids"] % len(words)
    assert model(batch["image"], ids, batch["text_padding_mask"]).shape == (3, ANSWERS)
    stages = fusion_vqa_stages(model)
    names = {n for n, _ in model.named_modules()}
    assert all(path in names for path, _ in stages.values())
    assert fusion_vqa_layout(model).grid == (2, 2)
    with pytest.raises(ValueError, match="img_size"):
        build_model(_host(image={"encoder": "clip", "clip_dir": str(clip_dir), "img_size": 32}, num_answers=ANSWERS),
                    BlockConfig(variant="baseline"), info=None)


def test_the_placement_sweep_reads_the_declared_placements() -> None:
    from lm4vis.train.config import load_config
    from lm4vis.train.sweep import sweep_cells

    cfg = load_config(None, {"host.kind": "fusion-vqa", "data.name": "shapes-vqa", "task.name": "vqa"})
    cells = sweep_cells("placement", cfg)
    assert [(c.label, c.overrides.get("block.where")) for c in cells] == [
        ("baseline", None), ("visual", "visual"), ("fusion", "fusion"), ("both", "both")]
    timm = sweep_cells("placement", load_config(None, {}))
    assert [c.label for c in timm] == ["baseline", "head", "middle", "tail", "two-layers"]  # the paper's Table D


def test_answer_head_starts_at_the_one_in_a_prior(tiny_lm_dir) -> None:
    """Soft BCE treats each answer as a yes/no that is nearly always "no": a fresh head must say
    so (p ~ 1/A per answer), not 0.5, or the first hundreds of steps go into lowering every logit."""
    model = _model(tiny_lm_dir, "baseline", "visual").eval()
    batch = _batch()
    with torch.no_grad():
        probs = model(batch["image"], batch["input_ids"], batch["text_padding_mask"]).sigmoid()
    assert probs.shape == (3, ANSWERS)
    assert torch.allclose(probs.mean(), torch.tensor(1 / ANSWERS), rtol=0.1)
    task = VQATask(PAD, INFO.answer_types)
    # The loss of a one-hot target at the prior: A binary entropies of p = 1/A, far below A * log 2.
    fresh = task.loss(model(batch["image"], batch["input_ids"], batch["text_padding_mask"]), batch, True)
    assert fresh.item() < 0.75 * ANSWERS * torch.log(torch.tensor(2.0))
