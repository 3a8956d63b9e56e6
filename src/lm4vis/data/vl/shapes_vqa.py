"""``shapes-vqa``: questions about generated shape scenes, with exact answers (Sort-of-CLEVR).

Seven question types, three non-relational (about one object) and four relational::

    shape     what shape is the red object?                      circle / square / triangle
    colour    what colour is the leftmost object?                (any colour)
    position  is the red object on the left or on the right?     left / right (or top / bottom)
    closest   what colour is the object closest to the red object?
    farthest  what colour is the object farthest from the red object?
    count     how many circles are there?                        0 .. num_objects
    left_of   is there a circle to the left of the red object?   yes / no

Item ``i`` asks type ``i mod 7`` (types balanced exactly; ``question_types`` may name a subset,
then item ``i`` asks the ``i mod len``-th of those) and draws its answer uniformly among
the type's answers first, then scenes until one can ask a clear question with that answer
(answers balanced within a type), all from a generator seeded by ``(seed, split, i)``. A model
that reads the question but not the image can do no better than the prior `blind_prior`
measures: about 0.29 with the default six colours and six objects.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...tasks.vqa_metrics import ANSWER_TYPES
from ..base import check_split
from ..skips import SkipLog
from .items import VQAInfo, collate_vl
from .shapes import (SHAPES, Scene, SceneConfig, clear_closest, clear_extreme, item_rng, render,
                     sample_scene, side)
from .text import TextTokenizer

NAME = "shapes-vqa"
QUESTION_TYPES: tuple[str, ...] = ("shape", "colour", "position", "closest", "farthest", "count", "left_of")
RELATIONAL: frozenset[str] = frozenset({"closest", "farthest", "count", "left_of"})
_ANSWER_TYPE = {"left_of": "yes/no", "count": "number"}  # every other type: "other"
_EXTREMES = {"leftmost": (0, False), "rightmost": (0, True), "topmost": (1, False), "bottommost": (1, True)}
#: coordinate -> (the question's wording, answer below the middle, answer above it)
_AXES = {"x": ("on the left or on the right", "left", "right"), "y": ("at the top or at the bottom", "top", "bottom")}
_SCENE_TRIES = 1000
#: Questions per split when the config gives none.
DEFAULT_SIZES: dict[str, int] = {"train": 20_000, "val": 2_000, "test": 2_000}


@dataclass(frozen=True)
class ShapesQuestion:
    """One generated question and everything it was made from.

    Args:
        scene: the scene it asks about.
        text: the question.
        answer: its exact answer.
        question_type: one of `QUESTION_TYPES`.
        named: indices of the objects the question names.
        evidence: indices of the objects whose attributes decide the answer.
    """

    scene: Scene
    text: str
    answer: str
    question_type: str
    named: tuple[int, ...]
    evidence: tuple[int, ...]


@dataclass
class ShapesVQAConfig:
    """A generated shapes-VQA split.

    Args:
        split: train, val or test (different seeds streams; same distribution).
        num_items: questions in the split; None takes `DEFAULT_SIZES`.
        image_size: side of the rendered square images.
        seed: the dataset seed; item ``i`` depends on (seed, split, i) only.
        scene: how scenes are drawn.
        max_length: longest question kept, in tokens.
        with_masks: items carry ``object_masks``.
        question_types: the types asked, in turn (a subset of `QUESTION_TYPES`; all by default).
            Fewer types give each more of a small training budget.
    """

    split: str = "train"
    num_items: int | None = None
    image_size: int = 64
    seed: int = 0
    scene: SceneConfig = field(default_factory=SceneConfig)
    max_length: int = 24
    with_masks: bool = False
    question_types: tuple[str, ...] = QUESTION_TYPES

    def __post_init__(self) -> None:
        check_split(self.split)
        self.question_types = tuple(self.question_types)
        unknown = [t for t in self.question_types if t not in QUESTION_TYPES]
        if unknown or not self.question_types or len(set(self.question_types)) != len(self.question_types):
            raise ValueError(f"{NAME}: question_types={list(self.question_types)} must name distinct types "
                             f"among {', '.join(QUESTION_TYPES)}")
        if isinstance(self.scene, dict):  # from YAML
            self.scene = SceneConfig(**self.scene)
        if self.num_items is None:
            self.num_items = DEFAULT_SIZES[self.split]
        if self.num_items < 1 or self.image_size < 8:
            raise ValueError(f"{NAME}: num_items must be positive and image_size at least 8")
        if self.max_length < 3:
            raise ValueError(f"{NAME}: max_length must be at least 3, got {self.max_length}")


def answers_by_type(cfg: SceneConfig) -> dict[str, tuple[str, ...]]:
    """Every answer each question type can have."""
    colours = cfg.colours
    return {"shape": SHAPES, "colour": colours, "position": ("left", "right", "top", "bottom"),
            "closest": colours, "farthest": colours,
            "count": tuple(str(k) for k in range(cfg.num_objects + 1)), "left_of": ("yes", "no")}


def answer_vocabulary(cfg: SceneConfig) -> tuple[str, ...]:
    """All answers, each once, in a fixed order (the classifier's outputs)."""
    return tuple(dict.fromkeys(a for answers in answers_by_type(cfg).values() for a in answers))


def every_question(cfg: SceneConfig) -> Iterator[str]:
    """Every question text the generator can produce (the vocabulary's training text)."""
    for colour in cfg.colours:
        yield f"what shape is the {colour} object?"
        for wording, _, _ in _AXES.values():
            yield f"is the {colour} object {wording}?"
        yield f"what colour is the object closest to the {colour} object?"
        yield f"what colour is the object farthest from the {colour} object?"
        for shape in SHAPES:
            yield f"is there a {shape} to the left of the {colour} object?"
    for extreme in _EXTREMES:
        yield f"what colour is the {extreme} object?"
    for shape in SHAPES:
        yield f"how many {shape}s are there?"


def candidates(question_type: str, scene: Scene, margin: float) -> list[tuple[str, str, tuple, tuple]]:
    """Every clear question of ``question_type`` about ``scene``: (text, answer, named, evidence).

    Args:
        question_type: one of `QUESTION_TYPES`.
        scene: the scene.
        margin: `SceneConfig.relation_margin`.
    """
    objs = scene.objects
    out = []
    if question_type == "shape":
        out = [(f"what shape is the {o.colour} object?", o.shape, (i,), (i,)) for i, o in enumerate(objs)]
    elif question_type == "colour":
        for word, (axis, largest) in _EXTREMES.items():
            k = clear_extreme([(o.x, o.y)[axis] for o in objs], margin, largest)
            if k is not None:
                out.append((f"what colour is the {word} object?", objs[k].colour, (), (k,)))
    elif question_type == "position":
        for i, o in enumerate(objs):
            for coord, (wording, low, high) in _AXES.items():
                answer = side(getattr(o, coord), margin, low, high)
                if answer is not None:
                    out.append((f"is the {o.colour} object {wording}?", answer, (i,), (i,)))
    elif question_type in ("closest", "farthest"):
        relation = "closest to" if question_type == "closest" else "farthest from"
        for i, o in enumerate(objs):
            k = clear_closest(scene, i, margin, farthest=question_type == "farthest")
            if k is not None:
                out.append((f"what colour is the object {relation} the {o.colour} object?",
                            objs[k].colour, (i,), (k,)))
    elif question_type == "count":
        for shape in SHAPES:
            counted = tuple(i for i, o in enumerate(objs) if o.shape == shape)
            out.append((f"how many {shape}s are there?", str(len(counted)), (), counted))
    elif question_type == "left_of":
        for i, ref in enumerate(objs):
            for shape in SHAPES:
                others = [j for j, o in enumerate(objs) if j != i and o.shape == shape]
                if any(abs(objs[j].x - ref.x) <= margin for j in others):
                    continue  # an object level with the reference: "left of" would be in doubt
                left = tuple(j for j in others if objs[j].x < ref.x)
                out.append((f"is there a {shape} to the left of the {ref.colour} object?",
                            "yes" if left else "no", (i,), left))
    else:
        raise ValueError(f"unknown question type {question_type!r}; use one of {', '.join(QUESTION_TYPES)}")
    return out


def generate(cfg: ShapesVQAConfig, index: int) -> ShapesQuestion:
    """Question ``index`` of the split: a function of (cfg.seed, cfg.split, index) alone.

    Args:
        cfg: the split's configuration.
        index: item index.
    """
    rng = item_rng(cfg.seed, cfg.split, index)
    question_type = cfg.question_types[index % len(cfg.question_types)]
    possible = answers_by_type(cfg.scene)[question_type]
    answer = possible[int(rng.integers(len(possible)))]
    for _ in range(_SCENE_TRIES):
        scene = sample_scene(rng, cfg.scene)
        fits = [c for c in candidates(question_type, scene, cfg.scene.relation_margin) if c[1] == answer]
        if fits:
            text, answer, named, evidence = fits[int(rng.integers(len(fits)))]
            return ShapesQuestion(scene, text, answer, question_type, named, evidence)
    raise RuntimeError(f"{NAME}: no scene in {_SCENE_TRIES} allows a clear {question_type!r} question "
                       f"answered {answer!r}; loosen scene.relation_margin or add objects")


def blind_prior(train: ShapesVQA, test: ShapesVQA) -> dict[str, float]:
    """Accuracy on ``test`` of the best model that never sees the image: the most frequent
    training answer of each question text (of its type, for a text training never asked).

    Returns ``accuracy`` overall and ``accuracy/<type>`` per question type, in 0..1.

    Args:
        train: where the answer frequencies are counted.
        test: where the prior is scored.
    """
    by_text: dict[str, Counter] = defaultdict(Counter)
    by_type: dict[str, Counter] = defaultdict(Counter)
    for i in range(len(train)):
        q = train.question(i)
        by_text[q.text][q.answer] += 1
        by_type[q.question_type][q.answer] += 1
    hits: dict[str, list[bool]] = defaultdict(list)
    for i in range(len(test)):
        q = test.question(i)
        counts = by_text.get(q.text) or by_type[q.question_type]
        hits[q.question_type].append(bool(counts) and counts.most_common(1)[0][0] == q.answer)
    out = {"accuracy": float(np.mean([h for v in hits.values() for h in v]))}
    out |= {f"accuracy/{t}": float(np.mean(hits[t])) for t in QUESTION_TYPES if hits[t]}
    return out


class ShapesVQA(Dataset):
    """Generated shape-scene questions; items are dicts of tensors:

    - ``image``: uint8 [3, S, S];
    - ``input_ids``: int64 [L], the question's ``[CLS] ... [SEP]`` ids;
    - ``target``, ``accuracy``: float32 [A], one-hot of the exact answer (the same keys as
      VQAv2's items, so one task serves both), A = ``info.num_answers``;
    - ``answer_type``: int64 [] into ``info.answer_types``; ``question_type``: int64 [] into
      ``info.question_types``; ``question_id``: int64 [] (the item index);
    - ``boxes``: float32 [N, 4], each object's (x0, y0, x1, y1) in pixels, N = ``num_objects``;
    - ``named_objects``: bool [N], the objects the question names;
    - ``evidence_objects``: bool [N], the objects whose attributes decide the answer;
    - with ``with_masks``: ``object_masks`` bool [N, S, S], each object's exact pixels.

    Args:
        cfg: the split.
        tokenizer: the question tokeniser; a word-level one of every question the generator
            can ask when None (the same for every split and seed).
    """

    def __init__(self, cfg: ShapesVQAConfig, tokenizer: TextTokenizer | None = None) -> None:
        self.cfg = cfg
        self.skips = SkipLog(f"{NAME}/{cfg.split}")  # generated data has nothing to skip
        self.tokenizer = tokenizer or TextTokenizer.train_word_level(every_question(cfg.scene))
        self.answers = answer_vocabulary(cfg.scene)
        self._answer_index = {a: j for j, a in enumerate(self.answers)}
        self.info = VQAInfo(NAME, cfg.image_size, self.answers, ANSWER_TYPES, QUESTION_TYPES,
                            self.tokenizer.vocab_size, self.tokenizer.pad_id, cfg.scene.num_objects,
                            max_length=cfg.max_length)

    def __len__(self) -> int:
        return self.cfg.num_items

    def question(self, index: int) -> ShapesQuestion:
        """The question, answer and scene of item ``index``, without rendering."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {NAME} of length {len(self)}")
        return generate(self.cfg, index)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        q = self.question(index)
        size, n = self.cfg.image_size, len(q.scene.objects)
        image, masks = render(q.scene, size)
        target = torch.zeros(len(self.answers))
        target[self._answer_index[q.answer]] = 1.0
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "input_ids": torch.tensor(self.tokenizer.encode(q.text, self.cfg.max_length)),
            "target": target,
            "accuracy": target.clone(),
            "answer_type": torch.tensor(ANSWER_TYPES.index(_ANSWER_TYPE.get(q.question_type, "other"))),
            "question_type": torch.tensor(QUESTION_TYPES.index(q.question_type)),
            "question_id": torch.tensor(index),
            "boxes": torch.tensor([o.box for o in q.scene.objects], dtype=torch.float32) * size,
            "named_objects": _member_mask(q.named, n),
            "evidence_objects": _member_mask(q.evidence, n),
        }
        if self.cfg.with_masks:
            item["object_masks"] = torch.from_numpy(masks)
        return item

    def collate(self, items: list[dict[str, Tensor]]) -> dict[str, Any]:
        """`collate_vl` with this tokeniser's padding id."""
        return collate_vl(items, self.info.pad_id)

    def __repr__(self) -> str:
        return f"ShapesVQA(split={self.cfg.split!r}, items={len(self)}, seed={self.cfg.seed})"


def _member_mask(indices: tuple[int, ...], n: int) -> Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[list(indices)] = True
    return mask


__all__ = ["NAME", "QUESTION_TYPES", "RELATIONAL", "ShapesQuestion", "ShapesVQAConfig", "ShapesVQA",
           "answers_by_type", "answer_vocabulary", "every_question", "candidates", "generate",
           "blind_prior"]
