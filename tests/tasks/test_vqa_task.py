"""The ``vqa`` task: the loss on soft scores, the official accuracy of the top answer as additive
sums overall and per type, questions without an answer in the vocabulary scoring 0, and the
per-type grouping chosen from what the dataset knows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lm4vis.data.vl.items import VQAInfo
from lm4vis.tasks.vqa import VQATask, blind_prior_reference, type_metric
from lm4vis.tasks.vqa_config import VQAConfig
from lm4vis.tasks.vqa_metrics import ANSWER_TYPES

ANSWERS = ("yes", "no", "2", "red")


def _batch(logits_top: list[int]):
    # question 0: yes/no, humans 10x "yes"; 1: number, "2" from 2 of 10 humans (0.6 by leave-one-out:
    # (2 * 1/3 + 8 * 2/3) / 10 = 0.6); 2: other, no answer in the vocabulary (all zero)
    accuracy = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0.6, 0], [0, 0, 0, 0]])
    logits = torch.full((3, 4), -5.0)
    logits[torch.arange(3), torch.tensor(logits_top)] = 5.0
    return logits, {"target": accuracy.clone(), "accuracy": accuracy, "answer_type": torch.tensor([0, 1, 2])}


def test_accuracy_of_the_top_answer_per_type_and_unanswerable_scores_zero() -> None:
    task = VQATask(0, ANSWER_TYPES)
    logits, targets = _batch([0, 2, 3])  # right, the 0.6 answer, anything for the unanswerable one
    m = task.epoch_metrics(task.batch_sums(logits, targets))
    assert m["acc"] == pytest.approx((1.0 + 0.6 + 0.0) / 3)
    assert (m["acc/yes-no"], m["acc/number"], m["acc/other"]) == pytest.approx((1.0, 0.6, 0.0))
    wrong = task.epoch_metrics(task.batch_sums(*_batch([1, 0, 0])))
    assert wrong["acc"] == 0.0
    assert [x.name for x in task.metrics] == ["acc", "acc/yes-no", "acc/number", "acc/other", "loss"]


def test_sums_over_two_batches_equal_one_batch() -> None:
    task = VQATask(0, ANSWER_TYPES)
    logits, targets = _batch([0, 2, 1])
    whole = task.batch_sums(logits, targets)
    parts = [task.batch_sums(logits[s], {k: v[s] for k, v in targets.items()}) for s in (slice(0, 1), slice(1, 3))]
    added = {k: parts[0][k] + parts[1][k] for k in whole}
    assert task.epoch_metrics(added) == pytest.approx(task.epoch_metrics(whole))


def test_loss_is_bce_summed_over_answers_and_falls_towards_the_scores() -> None:
    task = VQATask(0, ANSWER_TYPES)
    logits, targets = _batch([0, 2, 3])
    expected = F.binary_cross_entropy_with_logits(logits, targets["target"]) * len(ANSWERS)
    assert task.loss(logits, targets, train=True).item() == pytest.approx(expected.item(), rel=1e-6)
    x = torch.zeros(3, 4, requires_grad=True)
    opt = torch.optim.SGD([x], lr=1.0)
    losses = []
    for _ in range(5):
        loss = task.loss(x, targets, train=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]


def test_groups_follow_the_dataset() -> None:
    shapes = VQAInfo("shapes-vqa", 32, ANSWERS, ANSWER_TYPES, ("shape", "count"), 10, 0)
    vqav2 = VQAInfo("vqav2", 32, ANSWERS, ANSWER_TYPES, (), 10, 0)
    assert VQATask.from_config(VQAConfig(), shapes).group_key == "question_type"
    assert VQATask.from_config(VQAConfig(), vqav2).groups == ANSWER_TYPES
    assert VQATask.from_config(VQAConfig(by="answer_type"), shapes).group_key == "answer_type"
    with pytest.raises(ValueError, match="task.by=answer_type"):
        VQATask.from_config(VQAConfig(by="question_type"), vqav2)
    with pytest.raises(ValueError, match="task.by"):
        VQAConfig(by="answer")


def test_blind_prior_reference_uses_the_declared_keys() -> None:
    from lm4vis.train.config import load_config
    from lm4vis.train.datamodule import build_source

    cfg = load_config(None, {"host.kind": "fusion-vqa", "host.image.img_size": 32, "host.image.patch_size": 16,
                             "data.name": "shapes-vqa", "data.num_train": 140, "data.num_val": 70,
                             "task.name": "vqa", "block.variant": "baseline"})
    ref = blind_prior_reference(cfg)
    task = VQATask.from_config(cfg.task, build_source(cfg).info)
    assert set(ref["metrics"]) == {m.key for m in task.metrics if m.name != "loss"}
    assert 0.1 < ref["metrics"]["val/acc"] < 0.6 and ref["scenes"] == 70
    assert type_metric("yes/no").name == "acc/yes-no"
