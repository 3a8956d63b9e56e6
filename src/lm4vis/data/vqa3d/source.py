"""The data source of the 3D VQA datasets: a run's ``data`` section -> each split's samples.

One source serves ``rooms3d-qa`` and ``sqa3d`` (see `lm4vis.train.datamodule.DataSource`). The
training split is read first: its situations and questions build the word-level tokeniser,
and its answers the vocabulary (``rooms3d-qa``'s vocabulary is every answer the generator can
give, fixed). Every split is then indexed once in the main process, so a missing, corrupt or
short scene and an answer outside the vocabulary are all counted on the split's ``skips``
(the run summary's ``skipped`` section) or stop the run, before the first step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Subset

from ...train.config import ConfigError, RunConfig
from ..skips import BadInputError, SkipLog
from ..vl.text import TextTokenizer
from .base import SceneQADataset, SceneQAInfo, SceneQARecord, train_tokenizer


#: The run files (`save_run_files`): the tokeniser's folder and the answer vocabulary.
TOKENIZER_DIR, ANSWERS_FILE = "tokenizer", "answers.json"


class SceneQASource:
    """The data source of a registered 3D VQA dataset (see the module docstring).

    Args:
        cfg: the run config (``data``: a `lm4vis.data.vqa3d_config.SceneQADataConfig`).
        run_dir: the run's folder, when it exists: the tokeniser and the answer vocabulary the
            run saved there (`save_run_files`) are read back instead of being built again from
            data that may have changed.
    """

    accepts_epoch = False

    def __init__(self, cfg: RunConfig, run_dir: str | Path | None = None) -> None:
        self.cfg = cfg
        self._splits: dict[str, SceneQADataset] = {}
        self._tokenizer: TextTokenizer | None = None
        self._answers: tuple[str, ...] | None = None
        saved = None if run_dir is None else Path(run_dir)
        if saved is not None and (saved / ANSWERS_FILE).is_file():
            self._tokenizer = TextTokenizer.load(saved / TOKENIZER_DIR)
            self._answers = tuple(json.loads((saved / ANSWERS_FILE).read_text()))

    def save_run_files(self, run_dir: str | Path) -> list[Path]:
        """Write the tokeniser (``tokenizer/``) and the answer vocabulary (``answers.json``)."""
        self.split("train")
        run_dir = Path(run_dir)
        folder = self._tokenizer.save(run_dir / TOKENIZER_DIR)
        answers = run_dir / ANSWERS_FILE
        answers.write_text(json.dumps(list(self._answers), indent=0))
        return [folder, answers]

    # -- reading ----------------------------------------------------------------------------
    def _read(self, split: str, skips: SkipLog) -> tuple[list[SceneQARecord], dict[str, Any], tuple[str, ...]]:
        d = self.cfg.data
        if d.name == "rooms3d-qa":
            from .rooms import QUESTION_TYPES, RoomsConfig, cached_split

            rooms_cfg = RoomsConfig(num_points=d.num_points, data_seed=d.data_seed, min_objects=d.min_objects,
                                    max_objects=d.max_objects, spots=tuple(d.agent_spots))
            train = split == "train"
            # Sample i depends on (data_seed, split, i) only, so a limited split is generated
            # only as far as it is used (the tokeniser then reads those samples' text).
            size, limit = (d.num_train, d.limit_train) if train else (d.num_val, d.limit_val)
            rooms, records = cached_split(split, size if limit is None else min(size, limit),
                                          d.train_rooms if train else d.val_rooms, rooms_cfg)
            return list(records), rooms.scenes(records), QUESTION_TYPES
        from . import sqa3d

        try:
            # Reworded situations are extra training samples only: scores stay per question.
            records = sqa3d.read_split(d.root, split, skips, alternatives=d.alternative_situations and split == "train")
        except FileNotFoundError as e:
            raise ConfigError(str(e)) from None
        cache = sqa3d.SceneCache(d.scenes or d.root, d.num_points, d.data_seed)
        records, scenes = sqa3d.load_scenes(records, cache, skips, d.missing_scene, d.unreadable, d.short_scene)
        return records, scenes, sqa3d.QUESTION_TYPES

    def split(self, name: str) -> SceneQADataset:
        """Split ``name``, indexed once (the training split first: it sets the vocabularies)."""
        if name in self._splits:
            return self._splits[name]
        if name != "train":
            self.split("train")
        d = self.cfg.data
        skips = SkipLog(f"{d.name} {name}")
        try:
            records, scenes, question_types = self._read(name, skips)
        except BadInputError as e:
            raise ConfigError(str(e)) from None
        if name == "train" and self._tokenizer is None:
            if not records:
                raise ConfigError(f"{d.name}: the train split holds no usable question (skipped: "
                                  f"{dict(skips.counts)})")
            self._tokenizer = train_tokenizer(records, d.min_word_count)
            if d.name == "rooms3d-qa":
                from .rooms import ANSWERS
                self._answers = ANSWERS
            else:
                from .sqa3d import vocabulary
                self._answers = vocabulary(records, d.max_answers)
        info = SceneQAInfo(d.name, self._answers, tuple(question_types), self._tokenizer.vocab_size,
                           self._tokenizer.pad_id, d.num_points, d.max_length)
        answers = set(self._answers)
        out_of_vocabulary = [r for r in records if not answers.intersection(r.answers)]
        if out_of_vocabulary:
            # Kept: scored as wrong (the model cannot name them), never trained on.
            skips.skip("answer-not-in-vocabulary",
                       f"{len(out_of_vocabulary)} questions, first {out_of_vocabulary[0].question_id} "
                       f"({out_of_vocabulary[0].answers[0]!r}); kept and scored wrong", count=len(out_of_vocabulary))
        self._splits[name] = SceneQADataset(info, records, scenes, self._tokenizer, d.blind, skips)
        return self._splits[name]

    # -- the DataSource protocol -------------------------------------------------------------
    @property
    def info(self) -> SceneQAInfo:
        """The training split's `SceneQAInfo` (answers, question types, text vocabulary)."""
        return self.split("train").info

    @property
    def tokenizer(self) -> TextTokenizer:
        """The run's text tokeniser (built on the training split)."""
        self.split("train")
        return self._tokenizer

    def resolve(self) -> RunConfig:
        """Nothing is estimated from the data; the validation split must exist and be usable."""
        self.split(self.cfg.data.val_split)
        return self.cfg

    def dataset(self, split: str, train: bool) -> SceneQADataset | Subset:
        """Split ``split``, limited to ``data.limit_train`` (training) or ``data.limit_val`` samples."""
        base = self.split(split)
        limit = self.cfg.data.limit_train if split == "train" else self.cfg.data.limit_val
        if limit is None or limit >= len(base):
            return base
        return LimitedSamples(base, limit)


class LimitedSamples(Subset):
    """The first ``size`` samples of a split, with its ``info``, ``skips`` and collate."""

    def __init__(self, base: SceneQADataset, size: int) -> None:
        super().__init__(base, range(min(size, len(base))))

    @property
    def info(self) -> SceneQAInfo:
        return self.dataset.info

    @property
    def skips(self) -> SkipLog:
        return self.dataset.skips

    @property
    def records(self) -> Sequence[SceneQARecord]:
        return self.dataset.records[: len(self)]

    def collate(self, items: list[Any]) -> dict[str, Any]:
        return self.dataset.collate(items)


__all__ = ["SceneQASource", "LimitedSamples"]
