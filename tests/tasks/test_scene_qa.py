"""EM@1 and its normalisation against hand-computed cases; per-type sums; answers outside the
vocabulary scored wrong and never trained on."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lm4vis.tasks.scene_qa import SceneQATask, exact_match


@pytest.mark.parametrize("prediction, references, hit", [
    ("table", ["table"], True),
    ("Table.", ["the table"], True),         # case, the period, the article
    ("2", ["two"], True),                     # number words
    ("chair", ["table", "chair"], True),      # any reference
    ("chairs", ["chair"], False),             # no stemming
    ("left", ["right"], False),
    ("dont know", ["don't know"], True),      # the contraction table
])
def test_exact_match_after_normalisation(prediction, references, hit):
    assert exact_match(prediction, references) is hit


def targets(answer, mask_rows, types):
    return {"answer": torch.tensor(answer), "answer_mask": torch.tensor(mask_rows, dtype=torch.bool),
            "question_type": torch.tensor(types), "position": torch.zeros(len(answer), 3),
            "orientation": torch.zeros(len(answer), 4)}


def test_em1_overall_and_per_type():
    task = SceneQATask(("what", "is"))
    # 4 answers; sample 3 has no reference in the vocabulary (answer -1, empty mask).
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 0, 5.0], [5.0, 0, 0, 0]])
    t = targets([0, 2, 3, -1], [[1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0]], [0, 0, 1, 1])
    sums = task.batch_sums({"logits": logits}, t)
    metrics = task.epoch_metrics(sums)
    # Right: sample 0 (0 in {0}), sample 2 (3 in {2, 3}); wrong: sample 1 (1 not in {2, 3}) and
    # sample 3 (out of vocabulary, whatever it predicts).
    assert metrics["em1"] == pytest.approx(2 / 4)
    assert metrics["em1/what"] == pytest.approx(1 / 2) and metrics["em1/is"] == pytest.approx(1 / 2)
    # The loss counts the three in-vocabulary samples only.
    ce = F.cross_entropy(logits[:3], torch.tensor([0, 2, 3]), reduction="sum").item()
    assert metrics["loss"] == pytest.approx(ce / 3)
    assert task.loss({"logits": logits}, t, train=False).item() == pytest.approx(ce / 3, rel=1e-6)
    # Sums add up across batches exactly.
    twice = task.epoch_metrics({k: 2 * v for k, v in sums.items()})
    assert twice["em1"] == metrics["em1"]


def test_a_batch_of_only_unknown_answers_trains_nothing():
    task = SceneQATask(("what",))
    logits = torch.zeros(2, 3, requires_grad=True)
    loss = task.loss({"logits": logits}, targets([-1, -1], [[0, 0, 0]] * 2, [0, 0]), train=True)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_situation_loss_is_zero_at_the_truth_and_sign_blind():
    task = SceneQATask(("what",))
    q = torch.tensor([[math.cos(0.3), 0, 0, math.sin(0.3)]])
    t = {"position": torch.tensor([[1.0, 2.0, 0.0]]), "orientation": q}
    assert task.situation_loss({"position": t["position"], "orientation": q}, t).item() == pytest.approx(0, abs=1e-6)
    assert task.situation_loss({"position": t["position"], "orientation": -q}, t).item() == pytest.approx(0, abs=1e-6)
    off = task.situation_loss({"position": t["position"] + 1, "orientation": q}, t).item()
    assert off == pytest.approx(1.0)
