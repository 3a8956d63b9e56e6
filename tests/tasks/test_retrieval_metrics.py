"""Recall@K against a similarity matrix whose ranks were worked out by hand."""

from __future__ import annotations

import pytest
import torch

from lm4vis.tasks.retrieval_metrics import recall_at_k, retrieval_ranks, retrieval_recalls

# Image 0 has captions 0 and 1, image 1 has 2 and 3, image 2 has only caption 4.
CAPTION_IMAGE = torch.tensor([0, 0, 1, 1, 2])
SIMILARITY = torch.tensor([
    #  c0   c1   c2   c3   c4
    [0.9, 0.1, 0.5, 0.8, 0.2],  # best own caption c0 (0.9): no other scores as high -> rank 0
    [0.7, 0.6, 0.3, 0.2, 0.4],  # best own c2 (0.3): c0, c1, c4 score higher -> rank 3
    [0.2, 0.3, 0.1, 0.8, 0.5],  # own c4 (0.5): c3 higher -> rank 1
])
# caption queries, down each column: c0 .9 top; c1 .1 under .6, .3; c2 .3 under .5;
# c3 .2 under .8, .8; c4 .5 top
I2T_RANKS = [0, 3, 1]
T2I_RANKS = [0, 2, 1, 2, 0]


@pytest.mark.parametrize("chunk_size", [1, 2, 1024])
def test_ranks_by_hand(chunk_size: int) -> None:
    i2t, t2i = retrieval_ranks(SIMILARITY, CAPTION_IMAGE, chunk_size=chunk_size)
    assert i2t.tolist() == I2T_RANKS
    assert t2i.tolist() == T2I_RANKS


def test_recalls_by_hand() -> None:
    out = retrieval_recalls(SIMILARITY, CAPTION_IMAGE, ks=(1, 2, 3))
    expected = {"i2t_r1": 1 / 3, "i2t_r2": 2 / 3, "i2t_r3": 2 / 3,
                "t2i_r1": 2 / 5, "t2i_r2": 3 / 5, "t2i_r3": 1.0}
    assert {k: out[k] for k in expected} == pytest.approx(expected)
    assert out["rsum"] == pytest.approx(100 * sum(expected.values()))


def test_any_own_caption_counts_for_image_to_text() -> None:
    # image 0's second caption c1 ranks last, but its first ranks first: a hit at 1
    assert recall_at_k(retrieval_ranks(SIMILARITY, CAPTION_IMAGE)[0][:1], ks=(1,)) == {1: 1.0}


def test_ties_count_against_the_model() -> None:
    constant = torch.ones(3, 6)
    i2t, t2i = retrieval_ranks(constant, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert i2t.tolist() == [4, 4, 4]  # every wrong caption ties with the right ones
    assert t2i.tolist() == [2] * 6
    assert retrieval_recalls(constant, torch.tensor([0, 0, 1, 1, 2, 2]))["t2i_r1"] == 0.0


def test_the_standard_keys() -> None:
    out = retrieval_recalls(SIMILARITY, CAPTION_IMAGE)
    assert set(out) == {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum"}
    assert out["i2t_r5"] == 1.0 and out["t2i_r5"] == 1.0  # every rank here is under 5


@pytest.mark.parametrize("similarity, caption_image, message", [
    (SIMILARITY, torch.tensor([0, 0, 1, 1]), "one image index per column"),
    (SIMILARITY, torch.tensor([0, 0, 1, 1, 3]), "outside"),
    (SIMILARITY, torch.tensor([0, 0, 1, 1, 1]), "images \\[2\\] have no caption"),
    (SIMILARITY.clone().index_put_((torch.tensor([1]), torch.tensor([2])), torch.tensor(float("nan"))),
     CAPTION_IMAGE, "NaN"),
])
def test_bad_input_is_named(similarity, caption_image, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_ranks(similarity, caption_image)
