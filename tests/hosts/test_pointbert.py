"""PointBERT: shapes on any cloud size, the LM slot, learning, and the released checkpoints'
names and shapes."""

from __future__ import annotations

import pytest
import torch

from lm4vis.hosts.pointbert import (CheckpointMismatchError, PointBERT, PointBERTConfig,
                                    load_pointbert_checkpoint, map_pointbert_keys)
from lm4vis.ops import farthest_point_sample, gather_points

TINY = dict(num_classes=5, num_groups=8, group_size=6, tokenizer_dims=(16, 24, 32), encoder_dim=20,
            embed_dim=24, depth=2, num_heads=2, pos_hidden_dim=12, head_hidden_dim=16)


def tiny(**overrides) -> PointBERT:
    torch.manual_seed(0)
    return PointBERT(PointBERTConfig(**{**TINY, **overrides}))


@pytest.mark.parametrize("batch, num_points, in_chans", [(2, 97, 3), (1, 8, 3), (3, 64, 6)])
def test_forward_shapes_on_any_cloud_size(batch, num_points, in_chans):
    model = tiny(in_chans=in_chans).eval()
    points = torch.randn(batch, num_points, in_chans)
    logits = model(points)
    assert logits.shape == (batch, 5) and torch.isfinite(logits).all()
    tokens, centres = model.forward_tokens(points)
    assert tokens.shape == (batch, 1 + 8, 24)
    # The centres are the FPS picks of the input (from point 0), in order.
    torch.testing.assert_close(centres, gather_points(points[..., :3], farthest_point_sample(points, 8)))
    torch.testing.assert_close(model.forward_head(model.forward_features(points)), logits)
    assert model.forward_head(tokens, pre_logits=True).shape == (batch, 48)


def test_grouper_hook_sees_every_group_member():
    model = tiny().eval()
    seen = []
    handle = model.grouper.register_forward_hook(lambda m, args, out: seen.append(out))
    model(torch.randn(2, 50, 3))
    handle.remove()
    assert seen[0].idx.shape == (2, 8, 6) and seen[0].centres.shape == (2, 8, 3)


@pytest.mark.parametrize("shape, match", [((2, 5, 3), "cannot make 8 groups of 6"), ((2, 50, 4), r"\(B, N, 3\)")])
def test_bad_clouds_are_named(shape, match):
    with pytest.raises(ValueError, match=match):
        tiny()(torch.randn(*shape))


SHIFT = torch.linspace(-1, 1, 24)  # not constant: the final LayerNorm would undo a constant


class Recorder(torch.nn.Module):
    """An LM block stand-in: records what reaches it and shifts the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = []

    def forward(self, tokens, key_padding_mask=None):
        self.calls.append((tokens.shape, key_padding_mask))
        return tokens + SHIFT


def test_lm_slot_takes_every_token_after_the_last_block():
    model = tiny().eval()
    points = torch.randn(2, 40, 3)
    empty = model(points)
    recorder = Recorder()
    model.lm_slot.fill(recorder)
    filled = model(points)
    assert recorder.calls == [((2, 9, 24), None)]
    assert not torch.allclose(empty, filled)
    # The block's output goes on through the final norm: the same as shifting the last block's output.
    model.lm_slot.empty()
    handle = model.blocks[-1].register_forward_hook(lambda m, args, out: out + SHIFT)
    torch.testing.assert_close(model(points), filled)
    handle.remove()


def test_a_training_step_on_a_fixed_batch_lowers_the_loss():
    from lm4vis.data.points import build_shapes3d, collate_points

    ds = build_shapes3d("train", num_points=96, train_per_class=1)
    batch = collate_points([ds[i] for i in range(len(ds))])
    model = tiny(num_classes=ds.info.num_classes, head_dropout=0.0, drop_path_rate=0.0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):  # enough steps that the drop does not hinge on the thread count's rounding
        loss = torch.nn.functional.cross_entropy(model(batch["points"]), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_config_checks():
    with pytest.raises(ValueError, match="not a multiple of num_heads"):
        PointBERTConfig(embed_dim=10, num_heads=3)
    with pytest.raises(ValueError, match="must be positive"):
        PointBERTConfig(num_groups=0)
    with pytest.raises(ValueError, match="3 widths"):
        PointBERTConfig(tokenizer_dims=(1, 2))
    assert PointBERTConfig(tokenizer_dims=[4, 5, 6]).tokenizer_dims == (4, 5, 6)


def test_defaults_are_the_released_models_sizes():
    cfg = PointBERTConfig()
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.num_groups, cfg.group_size, cfg.encoder_dim) == \
        (384, 12, 6, 64, 32, 256)


# -- checkpoints -------------------------------------------------------------------------------------
def official_shapes(embed: int, depth: int, encoder: int, classes: int, in_chans: int = 3) -> dict[str, tuple]:
    """Names and shapes of Point-BERT's ``PointTransformer`` state dict (models/Point_BERT.py
    and the ``Encoder`` of models/dvae.py), whose hidden widths are fixed: 128/256/512 in the
    encoder, 128 in ``pos_embed``, 256 in ``cls_head_finetune``, MLP ratio 4, no qkv bias."""
    bn = lambda prefix, n: {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),  # noqa: E731
                            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}
    shapes = {"cls_token": (1, 1, embed), "cls_pos": (1, 1, embed),
              "encoder.first_conv.0.weight": (128, in_chans, 1), "encoder.first_conv.0.bias": (128,),
              **bn("encoder.first_conv.1", 128),
              "encoder.first_conv.3.weight": (256, 128, 1), "encoder.first_conv.3.bias": (256,),
              "encoder.second_conv.0.weight": (512, 512, 1), "encoder.second_conv.0.bias": (512,),
              **bn("encoder.second_conv.1", 512),
              "encoder.second_conv.3.weight": (encoder, 512, 1), "encoder.second_conv.3.bias": (encoder,),
              "reduce_dim.weight": (embed, encoder), "reduce_dim.bias": (embed,),
              "pos_embed.0.weight": (128, 3), "pos_embed.0.bias": (128,),
              "pos_embed.2.weight": (embed, 128), "pos_embed.2.bias": (embed,),
              "norm.weight": (embed,), "norm.bias": (embed,),
              "cls_head_finetune.0.weight": (256, 2 * embed), "cls_head_finetune.0.bias": (256,),
              "cls_head_finetune.3.weight": (classes, 256), "cls_head_finetune.3.bias": (classes,)}
    for i in range(depth):
        b = f"blocks.blocks.{i}"
        shapes |= {f"{b}.norm1.weight": (embed,), f"{b}.norm1.bias": (embed,),
                   f"{b}.attn.qkv.weight": (3 * embed, embed),
                   f"{b}.attn.proj.weight": (embed, embed), f"{b}.attn.proj.bias": (embed,),
                   f"{b}.norm2.weight": (embed,), f"{b}.norm2.bias": (embed,),
                   f"{b}.mlp.fc1.weight": (4 * embed, embed), f"{b}.mlp.fc1.bias": (4 * embed,),
                   f"{b}.mlp.fc2.weight": (embed, 4 * embed), f"{b}.mlp.fc2.bias": (embed,)}
    return shapes


def random_state(shapes: dict[str, tuple], prefix: str = "", seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {prefix + k: (torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(s, generator=gen))
            for k, s in shapes.items()}


OFFICIAL_SIZES = dict(tokenizer_dims=(128, 256, 512), pos_hidden_dim=128, head_hidden_dim=256)


def official_model(embed=32, depth=2, encoder=64, classes=40, **kw) -> PointBERT:
    return PointBERT(PointBERTConfig(embed_dim=embed, depth=depth, encoder_dim=encoder, num_classes=classes,
                                     num_heads=4, **OFFICIAL_SIZES, **kw))


def finetuned_file(tmp_path, state, top_key="base_model"):
    # The released files as Point-BERT's trainer saves them: weights beside optimizer and metrics.
    path = tmp_path / "ModelNet_1k.pth"
    torch.save({top_key: state, "optimizer": {"state": {}, "param_groups": [{"lr": 5e-4}]}, "epoch": 299,
                "metrics": {"acc": 93.2}, "best_metrics": {"acc": 93.2}}, path)
    return path


@pytest.mark.parametrize("prefix", ["", "module.", "base_model.", "module.transformer_q."])
@pytest.mark.parametrize("top_key", ["base_model", "model"])
def test_finetuned_checkpoint_loads_every_tensor_where_it_belongs(tmp_path, prefix, top_key):
    shapes = official_shapes(embed=32, depth=2, encoder=64, classes=40)
    state = random_state(shapes, prefix)
    model = official_model()
    report = load_pointbert_checkpoint(model, finetuned_file(tmp_path, state, top_key))
    assert report.clean and not report.pretraining_only
    assert len(report.loaded) == len(shapes) == len(model.state_dict())
    own = model.state_dict()
    mapped, _, _ = map_pointbert_keys(state)
    for ours, tensor in mapped.items():
        assert torch.equal(own[ours], tensor), ours
    # spot checks of the table's meaning
    assert torch.equal(model.blocks[1].attn.qkv.weight, state[prefix + "blocks.blocks.1.attn.qkv.weight"])
    assert torch.equal(model.tokenizer.context_mlp[1].running_var, state[prefix + "encoder.second_conv.1.running_var"])
    assert torch.equal(model.head[3].bias, state[prefix + "cls_head_finetune.3.bias"])
    assert torch.equal(model.token_proj.weight, state[prefix + "reduce_dim.weight"])


def test_the_released_default_sizes_match_the_released_shapes():
    shapes = official_shapes(embed=384, depth=12, encoder=256, classes=40)
    with torch.device("meta"):  # names and shapes only: no 22M parameters to initialise
        own = {k: tuple(v.shape) for k, v in PointBERT(PointBERTConfig()).state_dict().items()}
    mapped, _, unknown = map_pointbert_keys({k: torch.empty(s, device="meta") for k, s in shapes.items()})
    assert not unknown and {k: tuple(v.shape) for k, v in mapped.items()} == own


def test_pretrained_point_bert_pth_needs_strict_false_and_reports_the_head(tmp_path):
    shapes = official_shapes(embed=32, depth=2, encoder=64, classes=40)
    encoder = {k: s for k, s in shapes.items() if not k.startswith("cls_head_finetune")}
    state = random_state(encoder, "module.transformer_q.")
    state |= random_state(encoder, "module.transformer_k.", seed=1)  # the momentum encoder
    state |= {"module.transformer_q.mask_token": torch.zeros(1, 1, 32),
              "module.transformer_q.lm_head.weight": torch.zeros(16, 32), "module.transformer_q.lm_head.bias": torch.zeros(16),
              "module.transformer_q.cls_head.0.weight": torch.zeros(8, 32),
              "module.dvae.encoder.first_conv.0.weight": torch.zeros(128, 3, 1),
              "module.queue": torch.zeros(8, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    path = tmp_path / "Point-BERT.pth"
    torch.save({"base_model": state, "epoch": 299}, path)
    model = official_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=r"missing \(left at init\): head.0.weight, head.0.bias, head.3.weight"):
        load_pointbert_checkpoint(model, path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # refused whole
    report = load_pointbert_checkpoint(model, path, strict=False)
    assert report.missing == ["head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"]
    assert not report.unused and not report.mismatched
    assert len(report.pretraining_only) == len(encoder) + 7
    assert torch.equal(model.cls_pos, state["module.transformer_q.cls_pos"])
    assert torch.equal(model.head[0].weight, before["head.0.weight"])


def test_head_of_another_dataset_is_refused_with_the_fix(tmp_path):
    path = finetuned_file(tmp_path, random_state(official_shapes(32, 2, 64, classes=15)))  # ScanObjectNN
    model = official_model(classes=40)
    with pytest.raises(CheckpointMismatchError, match=r"head.3.weight: checkpoint \[15, 256\], model \[40, 256\]"
                                                      r"(.|\n)*PointBERTConfig\(num_classes=15\)"):
        load_pointbert_checkpoint(model, path)
    before = model.head[3].weight.clone()
    report = load_pointbert_checkpoint(model, path, strict=False)
    assert [k for k, _, _ in report.mismatched] == ["head.3.weight", "head.3.bias"]
    assert torch.equal(model.head[3].weight, before)  # a wrong shape is never loaded


def test_unknown_keys_are_reported(tmp_path):
    state = random_state(official_shapes(32, 2, 64, 40)) | {"extra_head.weight": torch.zeros(2)}
    with pytest.raises(CheckpointMismatchError, match="unused: extra_head.weight"):
        load_pointbert_checkpoint(official_model(), finetuned_file(tmp_path, state))
    deeper = random_state(official_shapes(32, 3, 64, 40))  # a 3-block checkpoint, a 2-block model
    with pytest.raises(CheckpointMismatchError, match="unused: blocks.2.norm1.weight"):
        load_pointbert_checkpoint(official_model(depth=2), finetuned_file(tmp_path, deeper))


def test_not_a_point_bert_file(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"epoch": 3, "weights": [1, 2]}, path)
    with pytest.raises(CheckpointMismatchError, match=r"no state dict under 'base_model'.*found \['epoch', 'weights'\]"):
        load_pointbert_checkpoint(official_model(), path)
