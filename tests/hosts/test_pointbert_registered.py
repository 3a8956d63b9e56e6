"""The registered ``point-bert`` host: typed config, every variant learns through it, the data
check, the analysis layout and hook points, and ``host.pretrained``."""

from __future__ import annotations

import logging

import pytest
import torch

from lm4vis.hosts import BlockConfig, build_model
from lm4vis.hosts.configs import VARIANTS
from lm4vis.hosts.pointbert import CheckpointMismatchError, PointBERT
from lm4vis.hosts.pointbert_config import PointBERTConfig
from lm4vis.registry import HOSTS
from lm4vis.train.config import ConfigError, load_config

TINY = dict(num_classes=4, num_groups=8, group_size=8, tokenizer_dims=(16, 24, 32), encoder_dim=20,
            embed_dim=24, depth=2, num_heads=2, pos_hidden_dim=12, head_hidden_dim=16, drop_path_rate=0.0,
            head_dropout=0.0)


def test_config_selects_the_host_and_types_its_keys():
    cfg = load_config(None, ["host.kind=point-bert", "host.num_groups=16", "host.tokenizer_dims=[8,16,32]"])
    assert type(cfg.host) is PointBERTConfig and HOSTS.get("point-bert").config is PointBERTConfig
    assert cfg.host.num_groups == 16 and cfg.host.tokenizer_dims == (8, 16, 32)
    again = cfg.replace({})  # resolving a resolved config gives it back (resume compares them)
    assert again.diff(cfg) == []
    with pytest.raises(ConfigError, match=r"host.num_groups='many' fits none|must be an integer"):
        load_config(None, ["host.kind=point-bert", "host.num_groups=many"])


def test_unknown_key_lists_the_classes_keys():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["host.kind=point-bert", "host.patch_size=4"])
    text = str(e.value)
    assert "host.patch_size" in text and "valid keys of host" in text
    for key in ("num_groups", "group_size", "embed_dim", "pretrained", "pretrained_partial"):
        assert key in text


def test_bad_sizes_name_the_section():
    with pytest.raises(ConfigError, match="embed_dim=30 is not a multiple of num_heads=4"):
        load_config(None, ["host.kind=point-bert", "host.embed_dim=30", "host.num_heads=4"])


@pytest.fixture(scope="module")
def shapes_batch():
    from lm4vis.data.points import build_shapes3d, collate_points

    ds = build_shapes3d("train", num_points=64, train_per_class=1)
    return collate_points([ds[i] for i in range(len(ds))])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_training_step_on_a_fixed_batch_lowers_the_loss(variant, tiny_llama, shapes_batch):
    from lm4vis.train.optim import param_groups

    cfg = PointBERTConfig(**{**TINY, "num_classes": 14})
    model = build_model(cfg, BlockConfig(variant=variant, source=tiny_llama, layers=-1), seed=0).train()
    assert model.lm4vis_host_kind == "point-bert"
    assert model.lm_slot.filled == (variant != "baseline")
    points, labels = shapes_batch["points"], shapes_batch["label"]
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert bool(frozen) == (variant in ("frozen-lm", "frozen-ffn", "random-lm"))
    # The engine's groups: the MLP control trains at its declared rate factors.
    opt = torch.optim.AdamW(param_groups(model, 0.0, peak_lr=3e-3), lr=3e-3)
    losses = []
    for _ in range(60):  # the MLP control sits at chance for the first few steps
        loss = torch.nn.functional.cross_entropy(model(points), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses  # at 40 steps the mlp control was 0.86 with 2 threads
    for name, before in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], before), name


class Info:
    def __init__(self, num_classes=4, channels=("x", "y", "z"), num_points=64):
        self.name, self.num_classes, self.channels, self.num_points = "toy", num_classes, channels, num_points
        self.num_channels = len(channels)


@pytest.mark.parametrize("info, words", [
    (Info(num_classes=15), "set host.num_classes=15"),
    (Info(channels=("x", "y", "z", "nx", "ny", "nz")), "set host.in_chans=6"),
    (Info(num_points=6), "data.num_points >= 8"),
])
def test_check_data_names_the_fix(info, words):
    check = HOSTS.get("point-bert").get("check_data")
    check(PointBERTConfig(**TINY), Info())  # fits
    with pytest.raises(ConfigError, match=words):
        check(PointBERTConfig(**TINY), info)


def test_layout_assigns_each_point_to_its_nearest_centre():
    from lm4vis.analysis import PointGroupLayout, layout_of

    model = build_model(PointBERTConfig(**TINY), BlockConfig(variant="baseline"), seed=0).eval()
    points = torch.randn(3, 50, 3)
    layout = layout_of(model, points)
    assert isinstance(layout, PointGroupLayout)
    assert layout.num_prefix_tokens == 1 and layout.num_patches == 8 and layout.assignment.shape == (3, 50)
    centres = model.grouper(points).centres
    nearest = torch.cdist(points, centres).argmin(-1)
    assert torch.equal(layout.assignment, nearest)
    # Each centre is a point of the cloud: it belongs to its own group.
    for b in range(3):
        for g, c in enumerate(centres[b]):
            i = int((points[b] - c).norm(dim=-1).argmin())
            assert layout.assignment[b, i] == g
    # A per-token score painted on the points and the mask averaged per token agree.
    scores = torch.arange(8.0).expand(3, 8)
    assert torch.equal(layout.render(scores, (50,)), layout.assignment.float())
    assert torch.allclose(layout.coverage(torch.ones(3, 50, dtype=torch.bool)).max(), torch.tensor(1.0))
    tokens = model.forward_features(points)
    assert tokens.shape[1] == layout.num_prefix_tokens + layout.num_patches


def test_analysis_captures_every_stage_of_a_point_batch(tiny_llama):
    from lm4vis.analysis import available_stages, capture

    model = build_model(PointBERTConfig(**TINY), BlockConfig(source=tiny_llama, layers=-1), seed=0).eval()
    assert {"pre_proj_in", "post_lm", "post_proj_out", "post_norm"} <= set(available_stages(model))
    with torch.no_grad(), capture(model) as cap:
        model(torch.randn(2, 40, 3))
    assert cap.features["post_norm"].shape == (2, 9, 24)
    assert cap.attention["host_attn"].shape == (2, 2, 9, 9)


def _save_released(path, model: PointBERT, drop=()):
    """A state dict under Point-BERT's names (the inverse of the key map), as its trainer saves it."""
    from lm4vis.hosts.pointbert import KEY_MAP

    state = {}
    for key, tensor in model.state_dict().items():
        for theirs, ours in KEY_MAP:
            if key == ours or (ours.endswith(".") and key.startswith(ours)):
                state["module." + theirs + key[len(ours):]] = tensor.clone()
                break
    for key in drop:
        state = {k: v for k, v in state.items() if not k.startswith(key)}
    torch.save({"base_model": state, "epoch": 3}, path)


def test_pretrained_loads_exactly_and_refuses_a_mismatch_unless_partial(tmp_path, caplog):
    torch.manual_seed(1)
    source = PointBERT(PointBERTConfig(**TINY))
    full, headless = tmp_path / "finetuned.pth", tmp_path / "Point-BERT.pth"
    _save_released(full, source)
    _save_released(headless, source, drop=("module.cls_head_finetune.",))
    model = build_model(PointBERTConfig(**TINY, pretrained=str(full)), BlockConfig(variant="baseline"), seed=0)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    with pytest.raises(CheckpointMismatchError, match=r"missing(.|\n)*head\.(.|\n)*host.pretrained_partial=true"):
        build_model(PointBERTConfig(**TINY, pretrained=str(headless)), BlockConfig(variant="baseline"))
    with caplog.at_level(logging.WARNING, logger="lm4vis.hosts.pointbert"):
        model = build_model(PointBERTConfig(**TINY, pretrained=str(headless), pretrained_partial=True),
                            BlockConfig(variant="baseline"), seed=0)
    assert "loaded in part" in caplog.text and "head.0.weight" in caplog.text
    assert torch.equal(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    assert not torch.equal(model.head[0].weight, source.head[0].weight)
    with pytest.raises(FileNotFoundError, match="host.pretrained=.*nope.pth: no such file"):
        build_model(PointBERTConfig(**TINY, pretrained=str(tmp_path / "nope.pth")), BlockConfig(variant="baseline"))


def test_describe_is_one_line():
    text = HOSTS.get("point-bert").get("describe")(PointBERTConfig(**TINY, pretrained="/x/Point-BERT.pth"))
    assert text == "Point-BERT (depth 2, width 24, 8 groups of 8, from Point-BERT.pth)"
