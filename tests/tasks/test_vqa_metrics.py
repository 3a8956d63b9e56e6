"""VQA metrics against cases worked out by hand from the official evaluation script's rules."""

from __future__ import annotations

import itertools

import pytest
import torch

from lm4vis.tasks.vqa_metrics import (ANSWER_TYPES, accuracy_from_sums, accuracy_sums,
                                      answer_vocabulary, leave_one_out_accuracy,
                                      normalize_answer, soft_scores, vqa_accuracy)


@pytest.mark.parametrize("raw, expected", [
    ("Two", "2"),                      # number words become digits, after lower-casing
    ("none", "0"),
    ("ten dogs", "10 dogs"),
    ("eleven", "eleven"),              # only none, zero..ten are mapped
    ("the dog.", "dog"),               # article removed, trailing period dropped
    ("a man's hat", "man's hat"),      # the apostrophe is not punctuation to the evaluator
    ("An apple", "apple"),
    ("dont", "don't"),                 # contractions get their apostrophe back
    ("Whats up", "what's up"),
    ("Im", "im"),                      # the official key is "Im", which lower case never meets
    ("somebody'd", "somebodyd"),       # the official table's slip, applied as it is
    ("yes!", "yes"),                   # '!' beside nothing: becomes a space, then split away
    ("hot-dog", "hot dog"),            # '-' with no space beside it becomes a space
    ("hot - dog", "hot dog"),          # '-' beside a space is deleted
    ("t-shirt, red", "t shirt red"),   # ", " deletes ','; the '-' has no space beside it
    ("x-ray - yes", "xray yes"),       # one '-' beside a space deletes every '-' of the answer
    ("1,000", "1000"),                 # a digit-comma-digit deletes every mark...
    ("1,000-2", "10002"),              # ...including the '-'
    ("3.5", "3.5"),                    # a period before a digit stays
    ("5.", "5"),
    ("st. louis", "st louis"),
    ("e.g.", "eg"),
    ("  left\tside\n", "left side"),   # tabs and newlines are spaces; the ends are stripped
    ("(yes)", "yes"),
    ("?", ""),
])
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def _loo_by_hand(prediction: str, answers: list[str]) -> float:
    """The definition, literally: drop each human in turn, count matches among the other nine."""
    accs = []
    for left_out in range(len(answers)):
        others = answers[:left_out] + answers[left_out + 1:]
        accs.append(min(1.0, sum(a == prediction for a in others) / 3))
    return sum(accs) / len(accs)


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_leave_one_out_of_ten_is_the_point_three_rule(matches: int, expected: float) -> None:
    # 1 match: the 9 subsets that keep the matching human give 1/3, the one without it 0
    assert leave_one_out_accuracy(matches, 10) == pytest.approx(expected)
    answers = ["cat"] * matches + ["dog"] * (10 - matches)
    assert vqa_accuracy("cat", answers) == pytest.approx(expected)


@pytest.mark.parametrize("matches, total, expected", [
    (2, 5, (2 * (1 / 3) + 3 * (2 / 3)) / 5),  # 0.5333..., not 0.6: the averaging matters
    (3, 4, (3 * (2 / 3) + 1 * 1.0) / 4),      # 0.75, not 0.9
    (1, 1, 0.0),                              # leaving out the only human leaves no match
])
def test_leave_one_out_with_other_counts(matches: int, total: int, expected: float) -> None:
    assert leave_one_out_accuracy(matches, total) == pytest.approx(expected)
    answers = ["cat"] * matches + ["dog"] * (total - matches)
    assert leave_one_out_accuracy(matches, total) == pytest.approx(_loo_by_hand("cat", answers))


def test_closed_form_matches_the_literal_definition() -> None:
    pool = ["2", "two", "yes", "no"]
    for answers in itertools.islice(itertools.product(pool, repeat=6), 0, None, 37):
        answers = list(answers)
        unanimous = len(set(answers)) == 1  # then the evaluator compares the strings as typed
        for prediction in pool:
            if unanimous:
                truth = _loo_by_hand(prediction, answers)
            else:
                truth = _loo_by_hand(normalize_answer(prediction), [normalize_answer(a) for a in answers])
            assert vqa_accuracy(prediction, answers) == pytest.approx(truth)


def test_answers_are_normalised_when_humans_disagree() -> None:
    answers = ["Two", "2", "two.", "2", "3", "three", "3", "2", "two", "3"]
    # normalised: 2 x6, 3 x4 -> both at full credit; "the two" normalises to "2" as well
    assert vqa_accuracy("2", answers) == 1.0
    assert vqa_accuracy("the two", answers) == 1.0
    assert vqa_accuracy("three", answers) == 1.0
    assert vqa_accuracy("4", answers) == 0.0


def test_unanimous_answers_are_compared_as_typed() -> None:
    # The evaluator normalises only when the ten answers are not all the same string.
    assert vqa_accuracy("yes", ["yes"] * 10) == 1.0
    assert vqa_accuracy("2", ["two"] * 10) == 0.0
    assert vqa_accuracy("two", ["two"] * 10) == 1.0
    assert vqa_accuracy(" two\n", ["two"] * 10) == 1.0  # cleaning still applies
    assert vqa_accuracy("2", ["two"] * 9 + ["Two"]) == 1.0  # not unanimous as strings


def test_soft_scores_follow_the_counts_of_normalised_answers() -> None:
    answers = ["red", "Red", "red.", "dark red", "maroon", "maroon", "the red", "pink", "red", "blue"]
    # normalised: red x5, maroon x2, dark red, pink, blue x1
    assert soft_scores(answers) == pytest.approx({"red": 1.0, "maroon": 0.6, "dark red": 0.3,
                                                  "pink": 0.3, "blue": 0.3})


def test_answer_vocabulary_ranks_normalised_answers() -> None:
    answers = ["yes", "Yes", "no", "two", "2", "2", "cat", "dog", "dog", "?"]
    # 2: 3, yes: 2, dog: 2, cat: 1, no: 1; ties broken by text; "?" normalises to nothing
    assert answer_vocabulary(answers, 4) == ("2", "dog", "yes", "cat")
    assert answer_vocabulary(answers, 100) == ("2", "dog", "yes", "cat", "no")
    with pytest.raises(ValueError, match="top_k"):
        answer_vocabulary(answers, 0)


def test_accuracy_per_answer_type_from_sums_of_two_batches() -> None:
    yes_no, number, other = (ANSWER_TYPES.index(t) for t in ("yes/no", "number", "other"))
    batches = [
        (torch.tensor([1.0, 0.3, 0.0]), torch.tensor([yes_no, number, other])),
        (torch.tensor([0.6, 1.0]), torch.tensor([number, number])),
    ]
    sums: dict[str, torch.Tensor] = {}
    for scores, types in batches:
        for k, v in accuracy_sums(scores, types).items():
            sums[k] = sums.get(k, 0) + v
    metrics = accuracy_from_sums(sums)
    assert metrics["accuracy"] == pytest.approx(2.9 / 5)
    assert metrics["accuracy/yes/no"] == pytest.approx(1.0)
    assert metrics["accuracy/number"] == pytest.approx(1.9 / 3)
    assert metrics["accuracy/other"] == pytest.approx(0.0)
    only_numbers = accuracy_from_sums(accuracy_sums(torch.tensor([0.5]), torch.tensor([number])))
    assert set(only_numbers) == {"accuracy", "accuracy/number"}
