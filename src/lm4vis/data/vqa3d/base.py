"""What every situated 3D VQA dataset shares: its description, its samples, one item pipeline
and the collate.

A dataset is a table of `SceneQARecord` s (a scene key, the situation and question text, the
normalised reference answers, a question type, the situation's pose) and a table of scenes
(``(num_points, 6)`` float32: x, y, z in metres, r, g, b in 0..1). Items are::

    {"points":         float32 (num_points, 6),
     "question_ids":   int64 [Lq]   (unpadded; the collate pads and adds question_padding_mask),
     "situation_ids":  int64 [Ls]   (idem, situation_padding_mask),
     "answer":         int64 ()     (index of the first reference answer in the vocabulary; -1 when
                                     none is in it: such a sample is never trained on and scores wrong),
     "answer_mask":    bool (num_answers,)  (every reference answer in the vocabulary),
     "question_type":  int64 (),
     "position":       float32 (3,),  "orientation": float32 (4,)  (quaternion w, x, y, z)}

The answers are normalised once, with the VQA evaluation's rules
(`lm4vis.tasks.vqa_metrics.normalize_answer`), so EM@1 compares normalised strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..skips import SkipLog, drop_skipped
from ..vl.items import pad_token_ids
from ..vl.text import TextTokenizer

#: What a blind control removes (see `lm4vis.data.vqa3d_config.SceneQADataConfig.blind`).
BLIND: tuple[str, ...] = ("situation", "scene")
#: Channels of a scene's points.
CHANNELS: tuple[str, ...] = ("x", "y", "z", "r", "g", "b")
TEXT_KEYS: tuple[str, ...] = ("question_ids", "situation_ids")


@dataclass(frozen=True)
class SceneQAInfo:
    """What a scene-VQA model needs to know before it sees an item.

    Args:
        name: registered dataset name (``rooms3d-qa``, ``sqa3d``).
        answers: the answer vocabulary; a classifier's output ``j`` means ``answers[j]``.
        question_types: names of the ``question_type`` indices.
        vocab_size: size of the text tokeniser's vocabulary.
        pad_id: the id padded text carries.
        num_points: points per scene.
        max_length: longest situation / question in tokens.
        channels: channels per point.
    """

    name: str
    answers: tuple[str, ...]
    question_types: tuple[str, ...]
    vocab_size: int
    pad_id: int
    num_points: int
    max_length: int
    channels: tuple[str, ...] = CHANNELS

    @property
    def num_answers(self) -> int:
        return len(self.answers)

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SceneQARecord:
    """One situated question.

    Args:
        scene: key of its scene in the dataset's scene table.
        situation: the situation sentence.
        question: the question.
        answers: the reference answers, normalised.
        question_type: one of the dataset's question types.
        position: the situation's position (x, y, z), in the scene's frame.
        orientation: the situation's orientation, a unit quaternion (w, x, y, z).
        question_id: the release's id (or the sample index of a generated split).
    """

    scene: str
    situation: str
    question: str
    answers: tuple[str, ...]
    question_type: str
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    question_id: int | str = 0


def heading_quaternion(heading: float) -> tuple[float, float, float, float]:
    """The unit quaternion (w, x, y, z) of a turn by ``heading`` radians about the up (z) axis."""
    return (math.cos(heading / 2), 0.0, 0.0, math.sin(heading / 2))


def train_tokenizer(records: Iterable[SceneQARecord], min_frequency: int = 1) -> TextTokenizer:
    """A word-level vocabulary of the training situations and questions.

    Args:
        records: the training split's samples (never validation text).
        min_frequency: rarer words map to [UNK].
    """
    texts = [text for r in records for text in (r.situation, r.question)]
    return TextTokenizer.train_word_level(texts, min_frequency=min_frequency)


class SceneQADataset(Dataset):
    """Records and scenes -> items (see the module docstring).

    Args:
        info: the dataset's description (its vocabulary and question types).
        records: the samples.
        scenes: scene key -> ``(num_points, 6)`` float32 array.
        tokenizer: the text tokeniser of the run (built on the training split).
        blind: ``situation``, ``scene`` or None (see `BLIND`).
        skips: what indexing skipped or repaired, counted (the run summary's ``skipped``).
    """

    def __init__(self, info: SceneQAInfo, records: Sequence[SceneQARecord], scenes: dict[str, np.ndarray],
                 tokenizer: TextTokenizer, blind: str | None = None, skips: SkipLog | None = None) -> None:
        if blind is not None and blind not in BLIND:
            raise ValueError(f"blind={blind!r} is unknown; choose one of {', '.join(BLIND)} or None")
        self.info, self.records, self.scenes = info, list(records), scenes
        self.tokenizer, self.blind = tokenizer, blind
        self.skips = skips if skips is not None else SkipLog(info.name)
        self._answer_index = {a: i for i, a in enumerate(info.answers)}
        self._type_index = {t: i for i, t in enumerate(info.question_types)}
        unknown = sorted({r.question_type for r in self.records} - set(self._type_index))
        if unknown:
            raise ValueError(f"{info.name}: question types {unknown} are not in info.question_types")

    def __len__(self) -> int:
        return len(self.records)

    def answer_targets(self, record: SceneQARecord) -> tuple[int, list[int]]:
        """(the training target, every reference answer's index) of one record; -1 / [] when
        no reference answer is in the vocabulary."""
        hits = [self._answer_index[a] for a in record.answers if a in self._answer_index]
        return (hits[0] if hits else -1), hits

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        r = self.records[index]
        points = self.scenes[r.scene]
        points = np.zeros_like(points) if self.blind == "scene" else points
        situation = "" if self.blind == "situation" else r.situation
        target, hits = self.answer_targets(r)
        mask = torch.zeros(self.info.num_answers, dtype=torch.bool)
        mask[hits] = True
        length = self.info.max_length
        return {
            "points": torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)),
            "question_ids": torch.tensor(self.tokenizer.encode(r.question, length), dtype=torch.long),
            "situation_ids": torch.tensor(self.tokenizer.encode(situation, length), dtype=torch.long),
            "answer": torch.tensor(target, dtype=torch.long),
            "answer_mask": mask,
            "question_type": torch.tensor(self._type_index[r.question_type], dtype=torch.long),
            "position": torch.tensor(r.position, dtype=torch.float32),
            "orientation": torch.tensor(r.orientation, dtype=torch.float32),
        }

    def collate(self, items: list[Any]) -> dict[str, Any]:
        return collate_scene_qa(items, self.tokenizer.pad_id)


def collate_scene_qa(items: list[Any], pad_id: int) -> dict[str, Any]:
    """One batch: the text keys padded with ``pad_id`` plus ``<name>_padding_mask`` (True =
    padding) for each, every other key stacked, and ``skipped`` ({reason: count} of `Skipped`
    markers). A batch whose items were all skipped holds ``skipped`` alone.

    Args:
        items: dataset items (or `Skipped` markers).
        pad_id: the tokeniser's padding id.
    """
    kept, skipped = drop_skipped(items)
    batch: dict[str, Any] = {}
    for key in kept[0] if kept else ():
        values = [item[key] for item in kept]
        if key in TEXT_KEYS:
            batch[key], batch[key.replace("_ids", "_padding_mask")] = pad_token_ids(values, pad_id)
        else:
            batch[key] = torch.stack(values)
    batch["skipped"] = skipped
    return batch


def fixed_budget(points: np.ndarray, num_points: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """``num_points`` rows of a scene: a random subset without replacement, or, for a scene with
    fewer points, a resample with replacement (returned with ``True``, for the caller to count).

    Args:
        points: ``(N, 6)``.
        num_points: the budget.
        rng: the scene's generator (seeded by the scene, so the sample is reproducible).
    """
    short = len(points) < num_points
    idx = rng.choice(len(points), size=num_points, replace=short)
    return points[np.sort(idx)].astype(np.float32), short


__all__ = ["BLIND", "CHANNELS", "TEXT_KEYS", "SceneQAInfo", "SceneQARecord", "SceneQADataset",
           "collate_scene_qa", "heading_quaternion", "train_tokenizer", "fixed_budget"]
