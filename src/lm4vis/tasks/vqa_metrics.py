"""VQA answers scored as the official VQA evaluation does, and the soft targets VQAv2 trains on.

The rules follow ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` of GT-Vision-Lab/VQA (the
script behind the VQAv2 evaluation server), quirks included, so that a number computed here is
the number the server reports:

- every answer is first cleaned: newlines and tabs become spaces, the ends are stripped;
- `normalize_answer`: punctuation removed or turned into a space, periods dropped unless a digit
  follows, lower case, number words ``none``/``zero``..``ten`` to digits, articles removed,
  contractions written without their apostrophe restored;
- the human answers and the prediction are normalised **only when the humans disagree**: when
  all ten gave the same string, the evaluator compares the cleaned strings as they are;
- a prediction's accuracy is ``min(1, #humans who gave it / 3)`` averaged over the ten subsets
  of nine humans (leave one out); `vqa_accuracy`.

Training targets (`soft_scores`) use the same leave-one-out accuracy, on normalised answers.
With ten answers it equals the ``min(1, 0.3 * count)`` table of ViLT and METER (``get_score``
in their ``write_vqa.py``: 0, 0.3, 0.6, 0.9, then 1 from four humans on), so a target is exactly
the score the evaluator would give the model for predicting that answer; computing it from the
definition keeps that true for questions with a number of answers other than ten.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import torch
from torch import Tensor

#: Answer types of VQAv2, in the order of the ``answer_type`` index items carry.
ANSWER_TYPES: tuple[str, ...] = ("yes/no", "number", "other")
#: Humans who must give an answer for it to be fully right.
FULL_CREDIT_HUMANS = 3

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">",
                "<", "@", "`", ",", "?", "!")
# A comma between digits anywhere in the answer ("1,000") makes the evaluator delete every
# punctuation mark instead of turning it into a space.
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
# The official pattern is "(?!<=\d)(\.)(?!\d)": its "(?!<=" is a look-ahead, not the intended
# look-behind, so it removes every period that no digit follows ("3.5" keeps its period, "5."
# and "st." lose theirs). This pattern does exactly that.
_PERIOD = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
# The official contraction table, keyed by the words as they stand after lower-casing. Its four
# capitalised keys ("Id've", "I'dve", "Im", "Ive") can never match a lower-cased word and its
# identity entries change nothing, so neither is listed; "somebody'd" -> "somebodyd" is the
# official table's own slip, kept because the evaluator applies it.
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've",
    "it'dve": "it'd've", "itll": "it'll", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've",
    "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've",
    "werent": "weren't", "whatll": "what'll", "whatre": "what're", "whats": "what's",
    "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's",
    "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've",
    "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
    "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}


def clean_answer(answer: str) -> str:
    """Newlines and tabs to spaces, ends stripped: what the evaluator does to every answer."""
    return answer.replace("\n", " ").replace("\t", " ").strip()


def _strip_punctuation(text: str) -> str:
    # Whether a mark is deleted or becomes a space is decided on the text as it came in, not
    # as earlier marks left it: the official loop tests `inText` while editing `outText`.
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        beside_space = f"{mark} " in text or f" {mark}" in text
        out = out.replace(mark, "" if delete_all or beside_space else " ")
    return _PERIOD.sub("", out)


# VQAv2's 4.4M training answers hold about 200k distinct strings ("yes" alone is a third), so
# normalising each distinct string once makes indexing the training set several times faster.
@lru_cache(maxsize=1 << 18)
def normalize_answer(answer: str) -> str:
    """The official normalisation of one answer (punctuation, digits, articles, contractions).

    Args:
        answer: a human answer or a prediction, as typed.
    """
    words = []
    for word in _strip_punctuation(clean_answer(answer)).lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def evaluator_view(answers: Sequence[str]) -> tuple[list[str], bool]:
    """The human answers as the evaluator compares them, and whether it normalises.

    Returns ``(answers, normalises)``: the cleaned answers, normalised when they are not all the
    same string (``normalises`` True, and the prediction is then normalised too).

    Args:
        answers: the human answers of one question (ten in VQAv2).
    """
    cleaned = [clean_answer(a) for a in answers]
    if len(set(cleaned)) > 1:
        return [normalize_answer(a) for a in cleaned], True
    return cleaned, False


def leave_one_out_accuracy(matches: int, num_answers: int) -> float:
    """Mean over the ``num_answers`` leave-one-out subsets of ``min(1, matches_in_subset / 3)``.

    Args:
        matches: how many of the humans gave the predicted answer.
        num_answers: how many humans answered.
    """
    if not 0 <= matches <= num_answers or num_answers == 0:
        raise ValueError(f"{matches} matches among {num_answers} answers is impossible")
    # Leaving out one of the `matches` humans who agree leaves matches-1 of them; leaving out
    # any of the others leaves all `matches`.
    total = (matches * min(1.0, (matches - 1) / FULL_CREDIT_HUMANS)
             + (num_answers - matches) * min(1.0, matches / FULL_CREDIT_HUMANS))
    return total / num_answers


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """The official accuracy of one predicted answer, in 0..1.

    Args:
        prediction: the model's answer.
        answers: the human answers of the question.
    """
    humans, normalises = evaluator_view(answers)
    predicted = normalize_answer(prediction) if normalises else clean_answer(prediction)
    return leave_one_out_accuracy(sum(h == predicted for h in humans), len(humans))


def soft_scores(answers: Sequence[str]) -> dict[str, float]:
    """Training target of every normalised answer the humans gave (absent answers score 0).

    The leave-one-out accuracy of predicting that answer, all answers normalised; see the
    module docstring for why this is the ``min(1, 0.3 * count)`` rule for ten answers.

    Args:
        answers: the human answers of one question.
    """
    counts = Counter(normalize_answer(a) for a in answers)
    return {a: leave_one_out_accuracy(n, len(answers)) for a, n in counts.items()}


def answer_vocabulary(answers: Iterable[str], top_k: int) -> tuple[str, ...]:
    """The ``top_k`` most frequent normalised answers, most frequent first (ties by text).

    Args:
        answers: one answer per question, e.g. VQAv2's ``multiple_choice_answer`` of every
            training question (what ViLT and METER count; they keep answers seen 9+ times in
            train+val, 3,129 of them).
        top_k: vocabulary size.
    """
    if top_k <= 0:
        raise ValueError(f"top_k must be positive, got {top_k}")
    counts = Counter(normalize_answer(a) for a in answers)
    counts.pop("", None)  # an answer of punctuation only names nothing a model could predict
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(a for a, _ in ranked[:top_k])


def accuracy_sums(scores: Tensor, answer_types: Tensor) -> dict[str, Tensor]:
    """Additive statistics of a batch: summed accuracy and counts, overall and per answer type.

    Sums rather than means, so that epoch metrics are exact over batches of unequal size.

    Args:
        scores: float [B], the official accuracy of each prediction.
        answer_types: int64 [B], indices into `ANSWER_TYPES`.
    """
    scores = scores.detach().float()
    sums = {"count": torch.tensor(float(len(scores)), device=scores.device),
            "score": scores.sum()}
    for index, name in enumerate(ANSWER_TYPES):
        of_type = answer_types == index
        sums[f"count/{name}"] = of_type.sum().float()
        sums[f"score/{name}"] = scores[of_type].sum()
    return sums


def accuracy_from_sums(sums: Mapping[str, Tensor | float]) -> dict[str, float]:
    """VQA accuracy overall (``accuracy``) and per answer type (``accuracy/yes/no`` ...), 0..1,
    from statistics added up with `accuracy_sums`; a type with no question is left out.

    Args:
        sums: the added-up output of `accuracy_sums`.
    """
    out = {"accuracy": float(sums["score"]) / max(float(sums["count"]), 1.0)}
    for name in ANSWER_TYPES:
        count = float(sums[f"count/{name}"])
        if count > 0:
            out[f"accuracy/{name}"] = float(sums[f"score/{name}"]) / count
    return out


__all__ = ["ANSWER_TYPES", "FULL_CREDIT_HUMANS", "clean_answer", "normalize_answer",
           "evaluator_view", "leave_one_out_accuracy", "vqa_accuracy", "soft_scores",
           "answer_vocabulary", "accuracy_sums", "accuracy_from_sums"]
