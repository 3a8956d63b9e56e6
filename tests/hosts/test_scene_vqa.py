"""The scene-vqa host: padding changes no prediction, the LM block goes on the scene tokens or
after the fusion through `attach`, a training step lowers the loss for every variant, and the
auxiliary situation heads train when asked."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lm4vis.data.vqa3d.source import SceneQASource
from lm4vis.hosts import build_model
from lm4vis.tasks.base import build_task
from lm4vis.train.config import ConfigError, load_config

TINY = ["host.kind=scene-vqa", "task.name=scene-qa", "data.name=rooms3d-qa", "data.num_points=128",
        "data.num_train=64", "data.num_val=32", "data.train_rooms=8", "data.val_rooms=8", "data.max_length=32",
        "host.num_groups=8", "host.group_size=16", "host.tokenizer_dims=[16,32,32]", "host.encoder_dim=32",
        "host.scene_dim=32", "host.scene_depth=1", "host.scene_heads=2", "host.pos_hidden_dim=16",
        "host.text_dim=32", "host.text_depth=1", "host.text_heads=2", "host.max_length=32", "host.fusion_dim=32",
        "host.fusion_depth=1", "host.fusion_heads=2", "host.dropout=0.0"]


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config(None, TINY)
    source = SceneQASource(cfg)
    train = source.dataset("train", True)
    task = build_task(cfg, source.info)
    return cfg, source.info, task, task.collate([train[i] for i in range(16)])


def model_of(cfg, info, variant: str, where: str, lm: str):
    block = dataclasses.replace(cfg.block, variant=variant, where=where, source=lm, layers=-1)
    return build_model(cfg.host, block, seed=0, info=info)


def pad_more(batch, extra: int, pad_id: int):
    """The same batch with ``extra`` more padding columns on both texts."""
    out = dict(batch)
    for key in ("question", "situation"):
        ids, mask = batch[f"{key}_ids"], batch[f"{key}_padding_mask"]
        out[f"{key}_ids"] = torch.cat([ids, torch.full((len(ids), extra), pad_id)], dim=1)
        out[f"{key}_padding_mask"] = torch.cat([mask, torch.ones(len(ids), extra, dtype=torch.bool)], dim=1)
    return out


@pytest.mark.parametrize("variant, where", [("baseline", "scene_lm_slot"), ("frozen-lm", "scene_lm_slot"),
                                            ("frozen-lm", "fusion_lm_slot")])
def test_padding_changes_no_prediction(tiny, tiny_llama, variant, where):
    cfg, info, task, batch = tiny
    model = model_of(cfg, info, variant, where, tiny_llama).eval()
    assert batch["question_padding_mask"].any() and batch["situation_padding_mask"].any()
    with torch.no_grad():
        a = task.forward(model, batch, train=False)[0]["logits"]
        b = task.forward(model, pad_more(batch, 5, info.pad_id), train=False)[0]["logits"]
        # Garbage under the padding must not leak either.
        junk = pad_more(batch, 5, info.pad_id)
        junk["question_ids"] = junk["question_ids"].masked_fill(junk["question_padding_mask"], 7)
        c = task.forward(model, junk, train=False)[0]["logits"]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("where", ["scene_lm_slot", "fusion_lm_slot"])
def test_block_goes_where_the_config_says(tiny, tiny_llama, where):
    cfg, info, _, _ = tiny
    model = model_of(cfg, info, "frozen-lm", where, tiny_llama)
    assert model.get_submodule(where).filled
    other = ({"scene_lm_slot", "fusion_lm_slot"} - {where}).pop()
    assert not model.get_submodule(other).filled
    # The default placement is the paper's: a visual encoder layer on the scene tokens.
    assert load_config(None, TINY).block.where == "scene_lm_slot"
    with pytest.raises(ConfigError, match="slots scene_lm_slot, fusion_lm_slot"):
        load_config(None, [*TINY, "block.where=blocks.0"])


@pytest.mark.parametrize("variant, where", [("baseline", "scene_lm_slot"), ("frozen-lm", "scene_lm_slot"),
                                            ("frozen-lm", "fusion_lm_slot"), ("mlp", "scene_lm_slot")])
def test_a_training_step_lowers_the_loss(tiny, tiny_llama, variant, where):
    cfg, info, task, batch = tiny
    model = model_of(cfg, info, variant, where, tiny_llama)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert bool(frozen) == (variant == "frozen-lm")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)

    def loss() -> torch.Tensor:
        return task.loss(*task.forward(model, batch, train=True), train=True)

    model.train()
    before = loss()
    for _ in range(3):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < before.item() - 1e-3
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


def test_aux_heads_predict_the_situation(tiny, tiny_llama):
    cfg = load_config(None, [*TINY, "host.aux_heads=true", "task.aux_weight=1.0"])
    _, info, _, batch = tiny
    task = build_task(cfg, info)
    model = build_model(cfg.host, dataclasses.replace(cfg.block, variant="baseline"), seed=0, info=info)
    out, targets = task.forward(model, batch, train=True)
    assert out["position"].shape == (16, 3) and out["orientation"].shape == (16, 4)
    torch.testing.assert_close(out["orientation"].norm(dim=-1), torch.ones(16))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = task.situation_loss(out, targets).item()
    for _ in range(5):
        opt.zero_grad()
        task.loss(*task.forward(model, batch, train=True), train=True).backward()
        opt.step()
    assert task.situation_loss(*task.forward(model, batch, train=True)).item() < first
    with pytest.raises(ConfigError, match="host.aux_heads=true"):
        load_config(None, [*TINY, "task.aux_weight=1.0"])


def test_every_centres_option_has_a_grouper():
    from lm4vis.hosts.scene_vqa import GROUPERS
    from lm4vis.hosts.scene_vqa_config import CENTRES

    assert tuple(GROUPERS) == CENTRES


def test_sampled_centres_land_on_the_objects():
    """``host.centres: sample`` puts most centres on the objects of a room, where FPS spreads them
    over floor and walls; the centres are points of the cloud, the same on every call."""
    import numpy as np

    from lm4vis.data.vqa3d.rooms import RoomsConfig, RoomsQA
    from lm4vis.hosts.pointbert import PointGrouper
    from lm4vis.hosts.scene_vqa import SampledGrouper

    rooms = RoomsQA("train", 1, 20, RoomsConfig(num_points=512))
    points = torch.from_numpy(np.stack([rooms.points(r) for r in range(20)]))
    share = {}
    for name, grouper in (("fps", PointGrouper(16, 16)), ("sample", SampledGrouper(16, 16))):
        centres = grouper(points).centres.numpy()
        on = 0
        for r in range(20):
            c = centres[r]
            for o in rooms.room(r).objects:
                on += ((np.hypot(c[:, 0] - o.centre[0], c[:, 1] - o.centre[1]) <= o.radius + 1e-4)
                       & (c[:, 2] > 0.02)).sum()
        share[name] = on / centres[..., 0].size
    assert share["sample"] > 0.5 and share["sample"] > 2 * share["fps"], share
    grouper = SampledGrouper(16, 16)
    a, b = grouper(points[:2]).centres, grouper(points[:2]).centres
    assert torch.equal(a, b)
    assert all((points[0, :, :3] == a[0, g]).all(dim=1).any() for g in range(16)), "centres are cloud points"


def test_centres_choice_is_checked():
    with pytest.raises((ConfigError, ValueError), match="host.centres"):
        load_config(None, TINY + ["host.centres=middle"])
    cfg = load_config(None, TINY + ["host.centres=sample"])
    assert cfg.host.centres == "sample"
