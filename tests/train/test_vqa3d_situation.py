"""The situation matters: a scene-vqa model trained on rooms3d-qa's egocentric questions answers
worse when the situations are shuffled across samples.

Trained (a tiny host, a few hundred steps) on the "... in front of me?" direction and attribute
questions: the answer is the one object in the sector the situation's heading (a wall or a
corner, from the middle of the room) points at, so the scene alone narrows it to the room's 3-5
objects and only the heading picks one (every room comes back with other headings). Scored on
rooms it never saw, with each sample's own situation and with the situation of another sample.
"""

from __future__ import annotations

import pytest
import torch

from lm4vis.data.vqa3d import RoomsConfig, RoomsQA, SceneQADataset, SceneQAInfo, train_tokenizer
from lm4vis.data.vqa3d.rooms import ANSWERS, QUESTION_TYPES
from lm4vis.hosts import build_model
from lm4vis.tasks.base import build_task
from lm4vis.train.config import load_config

STEPS = 300
HOST = ["host.kind=scene-vqa", "task.name=scene-qa", "data.name=rooms3d-qa", "block.variant=baseline",
        "host.num_groups=16", "host.group_size=16", "host.tokenizer_dims=[16,32,32]", "host.encoder_dim=32",
        "host.scene_dim=48", "host.scene_depth=1", "host.scene_heads=2", "host.pos_hidden_dim=16",
        "host.text_dim=48", "host.text_depth=1", "host.text_heads=2", "host.max_length=32", "host.fusion_dim=48",
        "host.fusion_depth=1", "host.fusion_heads=2", "host.dropout=0.0", "data.num_points=256",
        "host.centres=sample"]


def front_questions(split: str, n: int, rooms: int):
    data = RoomsQA(split, n, rooms, RoomsConfig(num_points=256, data_seed=1))
    records = [r for r in data.records()
               if r.question_type in ("direction", "attribute") and "in front of me" in r.question]
    return records, data.scenes()


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="since the situation names no object (a wall or corner from the middle), "
                   "a tiny model does not learn to read the heading in 300 steps: EM@1 0.244 own vs 0.237 "
                   "shuffled (156 val questions); the demo's situation-blind control equals the baseline too")
def test_shuffled_situations_lower_egocentric_accuracy():
    torch.manual_seed(0)
    cfg = load_config(None, HOST)
    train_records, train_scenes = front_questions("train", 6000, 100)
    val_records, val_scenes = front_questions("val", 1500, 100)
    tokenizer = train_tokenizer(train_records)
    info = SceneQAInfo("rooms3d-qa", ANSWERS, QUESTION_TYPES, tokenizer.vocab_size, tokenizer.pad_id, 256, 32)
    train = SceneQADataset(info, train_records, train_scenes, tokenizer)
    val = SceneQADataset(info, val_records, val_scenes, tokenizer)
    task = build_task(cfg, info)
    model = build_model(cfg.host, cfg.block, seed=0, info=info)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    model.train()
    for step in range(STEPS):
        idx = torch.randint(len(train), (32,), generator=g).tolist()
        batch = task.collate([train[i] for i in idx])
        opt.zero_grad()
        task.loss(*task.forward(model, batch, train=True), train=True).backward()
        opt.step()

    batch = task.collate([val[i] for i in range(len(val))])
    shuffled = dict(batch)
    perm = torch.roll(torch.arange(len(val)), 1)  # every sample gets its neighbour's situation
    shuffled["situation_ids"], shuffled["situation_padding_mask"] = (batch["situation_ids"][perm],
                                                                     batch["situation_padding_mask"][perm])
    model.eval()
    with torch.no_grad():
        own = task.epoch_metrics(task.batch_sums(*task.forward(model, batch, train=False)))["em1"]
        other = task.epoch_metrics(task.batch_sums(*task.forward(model, shuffled, train=False)))["em1"]
    print(f"EM@1 own situation {own:.3f}, shuffled {other:.3f} ({len(val)} questions)")
    assert len(val) >= 100
    # Chance is 1/6 (six shapes, six colours); with its own situation the model can find the
    # object in front, with another's it cannot.
    assert own > 0.5, own
    assert own - other > 0.25, (own, other)
