"""VQAv2 in its release layout, as downloaded from visualqa.org and cocodataset.org::

    root/
      v2_OpenEnded_mscoco_train2014_questions.json   {"questions": [{image_id, question, question_id}]}
      v2_mscoco_train2014_annotations.json           {"annotations": [{question_id, image_id,
                                                       answers: [{answer, answer_confidence,
                                                       answer_id}] x10, multiple_choice_answer,
                                                       answer_type, question_type}]}
      v2_OpenEnded_mscoco_val2014_questions.json, v2_mscoco_val2014_annotations.json
      v2_OpenEnded_mscoco_test-dev2015_questions.json, v2_OpenEnded_mscoco_test2015_questions.json
      train2014/COCO_train2014_000000000009.jpg, val2014/..., test2015/...  (or under image_root)

The answer vocabulary is the ``top_k_answers`` most frequent normalised ``multiple_choice_answer``
of the *training* annotations (3,129 by default, METER's size), whichever split is loaded, and is
cached (a JSON list) away from the data. Each annotated item carries two vectors over it:
``target``, the soft scores a model trains on, and ``accuracy``, what the official evaluator
awards each answer, computed from the raw human answers (see `lm4vis.tasks.vqa_metrics`).

Bad input:
- questions and annotations that do not describe the same questions (ids or image ids differ)
  fail before training, naming the first mismatches;
- an empty question is counted and skipped;
- a question none of whose answers is in the vocabulary is counted; it is kept for evaluation,
  where it scores 0 as on the server (dropping it would inflate accuracy), and dropped from
  training, where its all-zero target teaches nothing (both by ``drop_unanswerable``);
- a missing or unreadable image fails or is counted and skipped, by ``bad_image``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...tasks.vqa_metrics import (ANSWER_TYPES, answer_vocabulary, evaluator_view,
                                  leave_one_out_accuracy, normalize_answer, soft_scores)
from ..base import DatasetNotFoundError
from ..cache import cache_dir
from ..skips import BadInputError, Policy, Skipped, SkipLog, check_policy
from .items import VQAInfo, collate_vl, read_image_or_skip
from .text import TextTokenizer

log = logging.getLogger(__name__)

NAME = "vqav2"
#: split -> (file-name part of its questions file, image folder, has annotations)
SPLITS: dict[str, tuple[str, str, bool]] = {
    "train": ("train2014", "train2014", True),
    "val": ("val2014", "val2014", True),
    "test-dev": ("test-dev2015", "test2015", False),  # test-dev images live in test2015/
    "test": ("test2015", "test2015", False),
}
DOWNLOAD_HINT = "download it from https://visualqa.org/download.html and unzip it into the root"
# Bumped when the cached answer vocabulary would come out differently from the same files.
_VOCAB_FORMAT = 1
#: How many mismatching ids an error names.
_SHOWN = 5


@dataclass
class VQAv2Config:
    """Where VQAv2 is and how to read it.

    Args:
        root: folder holding the question and annotation JSON files.
        split: train, val, test-dev or test (the last two have no annotations).
        image_root: folder holding train2014/, val2014/, test2015/; ``root`` when None.
        image_size: side of the square images items carry.
        top_k_answers: answer vocabulary size.
        max_length: longest question kept, in tokens with [CLS] and [SEP].
        bad_image: ``fail`` or ``skip`` a missing or unreadable image.
        drop_unanswerable: drop questions with no answer in the vocabulary; None drops them
            from the training split only.
        min_word_frequency: rarer question words map to [UNK] (word-level vocabulary only).
        limit: keep the first ``limit`` questions of the file (all when None), after the
            files are checked against each other.
    """

    root: str
    split: str = "train"
    image_root: str | None = None
    image_size: int = 384
    top_k_answers: int = 3129
    max_length: int = 40
    bad_image: Policy = "fail"
    drop_unanswerable: bool | None = None
    min_word_frequency: int = 1
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"vqav2 split={self.split!r} is unknown; use one of {', '.join(SPLITS)}")
        check_policy("bad_image", self.bad_image)
        for name in ("image_size", "top_k_answers", "min_word_frequency"):
            if getattr(self, name) < 1:
                raise ValueError(f"vqav2 {name} must be positive, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"vqav2 limit must be positive or None, got {self.limit}")
        if self.max_length < 3:
            raise ValueError(f"vqav2 max_length must be at least 3 ([CLS] word [SEP]), got {self.max_length}")

    @property
    def annotated(self) -> bool:
        return SPLITS[self.split][2]

    @property
    def drops_unanswerable(self) -> bool:
        return self.split == "train" if self.drop_unanswerable is None else self.drop_unanswerable


def questions_file(root: str | Path, split: str) -> Path:
    return Path(root).expanduser() / f"v2_OpenEnded_mscoco_{SPLITS[split][0]}_questions.json"


def annotations_file(root: str | Path, split: str) -> Path:
    return Path(root).expanduser() / f"v2_mscoco_{SPLITS[split][0]}_annotations.json"


def image_path(image_root: str | Path, split: str, image_id: int) -> Path:
    """Where the release keeps the image of ``image_id`` for ``split``."""
    folder = SPLITS[split][1]
    return Path(image_root).expanduser() / folder / f"COCO_{folder}_{image_id:012d}.jpg"


def _read_list(path: Path, key: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} not found; {DOWNLOAD_HINT}")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise BadInputError(f"{path} is not valid JSON ({e}); download it again") from e
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise BadInputError(f"{path} has no list under {key!r}; is it the right VQAv2 file?")
    return data[key]


def check_same_questions(questions: list[dict[str, Any]], annotations: list[dict[str, Any]],
                         source: str) -> None:
    """Raise `BadInputError` unless both files describe the same questions of the same images.

    Args:
        questions: the questions file's ``questions``.
        annotations: the annotations file's ``annotations``.
        source: the two files, for the message.
    """
    problems = []
    for what, records in (("questions", questions), ("annotations", annotations)):
        repeated = [q for q, n in Counter(r["question_id"] for r in records).items() if n > 1]
        if repeated:
            problems.append(f"{len(repeated)} question ids repeat in the {what} "
                            f"(first: {sorted(repeated)[:_SHOWN]})")
    asked = {q["question_id"]: q["image_id"] for q in questions}
    answered = {a["question_id"]: a["image_id"] for a in annotations}
    unanswered = sorted(asked.keys() - answered.keys())
    unasked = sorted(answered.keys() - asked.keys())
    if unanswered:
        problems.append(f"{len(unanswered)} questions have no annotation (first: {unanswered[:_SHOWN]})")
    if unasked:
        problems.append(f"{len(unasked)} annotations have no question (first: {unasked[:_SHOWN]})")
    moved = sorted(q for q in asked.keys() & answered.keys() if asked[q] != answered[q])
    if moved:
        problems.append(f"{len(moved)} questions name another image in the annotations "
                        f"(first: {moved[:_SHOWN]})")
    if problems:
        raise BadInputError(f"{source} do not match: {'; '.join(problems)}. Use the questions "
                            "and annotations of the same split, both from the v2 release")


def load_answer_vocabulary(root: str | Path, top_k: int) -> tuple[str, ...]:
    """The answer vocabulary of the training annotations under ``root``, read once then cached.

    Args:
        root: the VQAv2 folder.
        top_k: vocabulary size.
    """
    path = annotations_file(root, "train").resolve()
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} not found: the answer vocabulary is built from the training annotations "
            f"whichever split is loaded; {DOWNLOAD_HINT}, or pass the answers of the training run"
        )
    stat = path.stat()
    cached = cache_dir(NAME, source=str(path), size=stat.st_size, mtime=stat.st_mtime_ns,
                       top_k=top_k, format=_VOCAB_FORMAT) / "answers.json"
    if cached.is_file():
        return tuple(json.loads(cached.read_text(encoding="utf-8")))
    answers = answer_vocabulary((a["multiple_choice_answer"] for a in _read_list(path, "annotations")), top_k)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(list(answers)), encoding="utf-8")
    tmp.replace(cached)  # atomic: a killed process never leaves half a vocabulary behind
    return answers


def train_question_tokenizer(root: str | Path, min_frequency: int = 1) -> TextTokenizer:
    """A word-level vocabulary of the training questions under ``root``.

    Args:
        root: the VQAv2 folder.
        min_frequency: rarer words map to [UNK].
    """
    questions = _read_list(questions_file(root, "train"), "questions")
    return TextTokenizer.train_word_level((q["question"] for q in questions), min_frequency)


@dataclass(frozen=True)
class _SparseRows:
    """Rows of a mostly-zero [rows, width] matrix: CSR offsets, column indices, values."""

    offsets: np.ndarray
    columns: np.ndarray
    values: np.ndarray

    @classmethod
    def from_dicts(cls, rows: list[dict[int, float]]) -> _SparseRows:
        offsets = np.zeros(len(rows) + 1, np.int64)
        offsets[1:] = np.cumsum([len(r) for r in rows])
        columns = np.fromiter((c for r in rows for c in r), np.int64, int(offsets[-1]))
        values = np.fromiter((v for r in rows for v in r.values()), np.float32, int(offsets[-1]))
        return cls(offsets, columns, values)

    def dense(self, row: int, width: int) -> Tensor:
        lo, hi = self.offsets[row], self.offsets[row + 1]
        out = torch.zeros(width)
        out[torch.from_numpy(self.columns[lo:hi])] = torch.from_numpy(self.values[lo:hi])
        return out


class _AnswerScorer:
    """Maps one question's human answers to its two vectors over the answer vocabulary."""

    def __init__(self, answers: tuple[str, ...]) -> None:
        self.index = {a: j for j, a in enumerate(answers)}
        # The evaluator normalises a prediction only when the humans disagree; a vocabulary
        # entry is already normalised, but normalising is not always idempotent, so both
        # forms under which the evaluator may compare an entry are indexed.
        self.by_normalized: dict[str, list[int]] = defaultdict(list)
        for j, a in enumerate(answers):
            self.by_normalized[normalize_answer(a)].append(j)

    def target(self, human: list[str]) -> dict[int, float]:
        return {self.index[a]: s for a, s in soft_scores(human).items() if a in self.index}

    def accuracy(self, human: list[str]) -> dict[int, float]:
        compared, normalises = evaluator_view(human)
        out = {}
        for answer, n in Counter(compared).items():
            matching = self.by_normalized.get(answer, ()) if normalises else (
                [self.index[answer]] if answer in self.index else ())
            for j in matching:
                out[j] = leave_one_out_accuracy(n, len(compared))
        return out


class VQAv2Dataset(Dataset):
    """VQAv2 questions with their images; items are dicts of tensors:

    - ``image``: uint8 [3, S, S], S = ``image_size``;
    - ``input_ids``: int64 [L], the question's ``[CLS] ... [SEP]`` ids, L <= ``max_length``;
    - ``question_id``, ``image_id``: int64 [];
    - annotated splits only: ``target`` float32 [A] (soft scores), ``accuracy`` float32 [A]
      (the official accuracy of predicting each answer) and ``answer_type`` int64 [] (index
      into ``info.answer_types``), A = ``info.num_answers``.

    An unreadable image comes back as a `Skipped` marker under ``bad_image='skip'``; `collate`
    drops it and counts it in ``batch["skipped"]``. ``unanswerable`` counts the kept questions
    with no answer in the vocabulary.

    Args:
        cfg: where the data is and how to read it.
        tokenizer: the question tokeniser; a word-level one built from the training questions
            when None (pass the training set's to every other split, or let it be rebuilt).
        answers: the answer vocabulary; built from the training annotations when None.
    """

    def __init__(self, cfg: VQAv2Config, tokenizer: TextTokenizer | None = None,
                 answers: tuple[str, ...] | None = None) -> None:
        self.cfg = cfg
        self.skips = SkipLog(f"{NAME}/{cfg.split}")
        self.image_root = Path(cfg.image_root or cfg.root).expanduser()
        self.answers = tuple(answers) if answers is not None else load_answer_vocabulary(cfg.root, cfg.top_k_answers)
        self.tokenizer = tokenizer or train_question_tokenizer(cfg.root, cfg.min_word_frequency)
        self.info = VQAInfo(NAME, cfg.image_size, self.answers, ANSWER_TYPES, (),
                            self.tokenizer.vocab_size, self.tokenizer.pad_id, max_length=cfg.max_length)
        self.unanswerable = 0
        self._index(cfg)

    def _index(self, cfg: VQAv2Config) -> None:
        qfile = questions_file(cfg.root, cfg.split)
        questions = _read_list(qfile, "questions")
        by_id: dict[int, dict[str, Any]] = {}
        if cfg.annotated:
            afile = annotations_file(cfg.root, cfg.split)
            annotations = _read_list(afile, "annotations")
            check_same_questions(questions, annotations, f"{qfile.name} and {afile.name}")
            by_id = {a["question_id"]: a for a in annotations}
        questions = questions[: cfg.limit]
        present = self._present_images({q["image_id"] for q in questions}, cfg)

        scorer = _AnswerScorer(self.answers)
        kept, targets, accuracies = [], [], []
        for q in questions:
            if not q["question"].strip():
                self.skips.skip("empty-question", f"question {q['question_id']} is empty")
                continue
            if q["image_id"] not in present:
                self.skips.skip("missing-image", f"question {q['question_id']}: "
                                f"{image_path(self.image_root, cfg.split, q['image_id'])} is missing")
                continue
            if cfg.annotated:
                annotation = by_id[q["question_id"]]
                human = [a["answer"] for a in annotation["answers"]]
                target = scorer.target(human)
                if not target:
                    if cfg.drops_unanswerable:
                        self.skips.skip("answers-outside-vocabulary",
                                        f"question {q['question_id']}: no answer among the {len(self.answers)}")
                        continue
                    self.unanswerable += 1
                if annotation["answer_type"] not in ANSWER_TYPES:
                    raise BadInputError(
                        f"question {q['question_id']} has answer_type {annotation['answer_type']!r}; "
                        f"VQAv2 knows {', '.join(ANSWER_TYPES)}: is this a VQAv2 annotation file?"
                    )
                targets.append(target)
                accuracies.append(scorer.accuracy(human))
                kept.append((q, ANSWER_TYPES.index(annotation["answer_type"])))
            else:
                kept.append((q, -1))
        if self.unanswerable:
            log.info("%s: %d questions have no answer in the vocabulary; kept, they score 0",
                     self.skips.dataset, self.unanswerable)
        self.questions = [q["question"] for q, _ in kept]
        self.question_ids = np.array([q["question_id"] for q, _ in kept], np.int64)
        self.image_ids = np.array([q["image_id"] for q, _ in kept], np.int64)
        self.answer_types = np.array([t for _, t in kept], np.int64)
        self._targets = _SparseRows.from_dicts(targets) if cfg.annotated else None
        self._accuracies = _SparseRows.from_dicts(accuracies) if cfg.annotated else None

    def _present_images(self, image_ids: set[int], cfg: VQAv2Config) -> set[int]:
        present = {i for i in image_ids if image_path(self.image_root, cfg.split, i).is_file()}
        missing = sorted(image_ids - present)
        if missing and cfg.bad_image == "fail":
            first = image_path(self.image_root, cfg.split, missing[0])
            self.skips.handle(
                "fail", "missing-image",
                f"{len(missing)} of {len(image_ids)} images are missing, first {first}",
                f"unzip {SPLITS[cfg.split][1]}.zip from cocodataset.org into {self.image_root}, "
                "or set bad_image='skip' to count and skip their questions",
            )
        return present

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index: int) -> dict[str, Tensor] | Skipped:
        image = read_image_or_skip(image_path(self.image_root, self.cfg.split, int(self.image_ids[index])),
                                   self.cfg.image_size, self.cfg.bad_image, self.skips)
        if isinstance(image, Skipped):
            return image
        item = {
            "image": image,
            "input_ids": torch.tensor(self.tokenizer.encode(self.questions[index], self.cfg.max_length)),
            "question_id": torch.tensor(self.question_ids[index]),
            "image_id": torch.tensor(self.image_ids[index]),
        }
        if self._targets is not None:
            item["target"] = self._targets.dense(index, len(self.answers))
            item["accuracy"] = self._accuracies.dense(index, len(self.answers))
            item["answer_type"] = torch.tensor(self.answer_types[index])
        return item

    def collate(self, items: list[dict[str, Tensor] | Skipped]) -> dict[str, Any]:
        """`collate_vl` with this tokeniser's padding id."""
        return collate_vl(items, self.info.pad_id)

    def __repr__(self) -> str:
        return (f"VQAv2Dataset(split={self.cfg.split!r}, questions={len(self)}, "
                f"answers={len(self.answers)}, skipped={self.skips.total}, "
                f"unanswerable={self.unanswerable})")


__all__ = ["VQAv2Config", "VQAv2Dataset", "SPLITS", "questions_file", "annotations_file",
           "image_path", "check_same_questions", "load_answer_vocabulary",
           "train_question_tokenizer"]
