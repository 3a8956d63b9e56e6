"""The VQA data source: ``shapes-vqa`` and ``vqav2`` as the engine asks for them.

Registered with ``run_files=True`` (`lm4vis.train.datamodule.DataSource`): the question
tokeniser and the answer vocabulary are derived from the training data when a run starts,
saved in its folder (``tokenizer/``, ``answers.json``), and read back from there when the run
is resumed, evaluated or analysed, so a run always sees its own vocabularies.

Items leave the source model-ready: the image as float [3, S, S] normalised by ``data.mean`` /
``data.std``, and the controls of ``data.blind`` applied (the image replaced by zeros, or the
question cut to [CLS] [SEP]). The split datasets keep the raw datasets' skip logs, so missing
images and empty questions are counted in the run summary, and the questions kept without any
answer in the vocabulary are counted there too (``kept-no-answer-in-vocabulary``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ...tasks.vqa_metrics import ANSWER_TYPES
from ...train.config import ConfigError, RunConfig
from ..skips import Skipped, SkipLog
from ..vqa_config import ShapesVQADataConfig, VQADataConfig, VQAv2DataConfig
from .items import VQAInfo, collate_vl
from .shapes import SceneConfig
from .shapes_vqa import QUESTION_TYPES, ShapesVQA, ShapesVQAConfig, every_question
from .text import TextTokenizer
from .vqav2 import (VQAv2Config, VQAv2Dataset, annotations_file, load_answer_vocabulary, questions_file,
                    train_question_tokenizer)

log = logging.getLogger(__name__)

TOKENIZER_DIR = "tokenizer"
ANSWERS_FILE = "answers.json"
#: How the run summary counts the questions kept although no answer of theirs is in the vocabulary.
KEPT_UNANSWERABLE = "kept-no-answer-in-vocabulary"
#: Items generated in this process, by (split config, tokeniser): ``keep_in_memory``.
_MEMORY: dict[tuple[str, str], list[dict[str, Tensor]]] = {}
#: The VQAv2 splits indexed in this process, by files and options.
_INDEXED: dict[tuple, VQAv2Dataset] = {}
_KEEP_INDEXED = 2  # a run's train and validation splits


class VQAItems(Dataset):
    """A raw VQA split made model-ready: normalised float images, the blind control applied.

    Args:
        raw: a `ShapesVQA` or `VQAv2Dataset`.
        cfg: the data config (normalisation, ``blind``, ``max_length``).
        tokenizer: the questions' tokeniser (an empty question for the image-only control).
        memory: a list to keep generated items in (None: read every time).
    """

    def __init__(self, raw: Dataset, cfg: VQADataConfig, tokenizer: TextTokenizer,
                 memory: list[dict[str, Tensor]] | None = None) -> None:
        self.raw, self.blind = raw, cfg.blind
        self.mean = torch.tensor(cfg.mean).view(3, 1, 1)
        self.std = torch.tensor(cfg.std).view(3, 1, 1)
        self.no_question = torch.tensor(tokenizer.encode("", cfg.max_length))
        self.info: VQAInfo = raw.info
        self.skips: SkipLog = raw.skips
        self._memory = memory
        unanswerable = getattr(raw, "unanswerable", 0)
        if unanswerable and KEPT_UNANSWERABLE not in self.skips.counts:  # a raw split may be reused
            self.skips.skip(KEPT_UNANSWERABLE,
                            f"{unanswerable} questions kept for evaluation; they score 0", count=unanswerable)

    def __len__(self) -> int:
        return len(self.raw)

    def _raw(self, index: int) -> dict[str, Tensor] | Skipped:
        if self._memory is None:
            return self.raw[index]
        while len(self._memory) <= index:  # items are made in order, each once
            self._memory.append(self.raw[len(self._memory)])
        return self._memory[index]

    def __getitem__(self, index: int) -> dict[str, Tensor] | Skipped:
        item = self._raw(index)
        if isinstance(item, Skipped):
            return item
        item = dict(item)
        image = (item["image"].float() / 255 - self.mean) / self.std
        item["image"] = torch.zeros_like(image) if self.blind == "image" else image
        if self.blind == "text":
            item["input_ids"] = self.no_question.clone()
        return item

    def collate(self, items: list[Any]) -> dict[str, Any]:
        return collate_vl(items, self.info.pad_id)


class VQASource:
    """The data source of a VQA dataset (see `lm4vis.train.datamodule.DataSource`).

    Args:
        cfg: the run config (``data``: a `ShapesVQADataConfig` or `VQAv2DataConfig`).
        run_dir: the run's folder when it exists: the tokeniser and answers saved there are used.
    """

    def __init__(self, cfg: RunConfig, run_dir: Path | None = None) -> None:
        d = cfg.data
        if not isinstance(d, VQADataConfig):
            raise ConfigError(f"data.name={d.name!r}: the VQA source needs a VQADataConfig, got {type(d).__name__}")
        if d.image_size is None:
            raise ConfigError("data.image_size is not resolved; build the source from a checked run config")
        if isinstance(d, VQAv2DataConfig) and d.val_split != "val":
            raise ConfigError(f"data.val_split={d.val_split!r}: VQAv2's test splits have no public answers; "
                              "validate on data.val_split=val (val2014)")
        self.cfg = cfg
        saved = None if run_dir is None else Path(run_dir)
        self.tokenizer = self._tokenizer(saved)
        self.answers = self._answers(saved)
        self._info: VQAInfo | None = None

    # -- vocabularies: from the run folder, else derived from the training data -------------------
    def _tokenizer(self, run_dir: Path | None) -> TextTokenizer:
        d = self.cfg.data
        if run_dir is not None and (run_dir / TOKENIZER_DIR).is_dir():
            return TextTokenizer.load(run_dir / TOKENIZER_DIR)
        if d.tokenizer is not None:
            return TextTokenizer.from_pretrained(d.tokenizer)
        if isinstance(d, ShapesVQADataConfig):
            return TextTokenizer.train_word_level(every_question(self._scene()))
        return train_question_tokenizer(d.root, d.min_word_frequency)

    def _answers(self, run_dir: Path | None) -> tuple[str, ...]:
        d = self.cfg.data
        derived = None
        if isinstance(d, ShapesVQADataConfig):
            derived = ShapesVQA(self._shapes_config("train"), tokenizer=self.tokenizer).answers
        if run_dir is not None and (run_dir / ANSWERS_FILE).is_file():
            answers = tuple(json.loads((run_dir / ANSWERS_FILE).read_text(encoding="utf-8")))
            if derived is not None and answers != derived:
                raise ConfigError(f"{run_dir / ANSWERS_FILE} does not match the answers of data.name=shapes-vqa "
                                  "with this config; was the run's config.yaml edited?")
            return answers
        return derived if derived is not None else load_answer_vocabulary(d.root, d.top_k_answers)

    def save_run_files(self, run_dir: Path) -> list[Path]:
        """Write the tokeniser and the answer vocabulary into the run folder."""
        folder = self.tokenizer.save(Path(run_dir) / TOKENIZER_DIR)
        answers = Path(run_dir) / ANSWERS_FILE
        answers.write_text(json.dumps(list(self.answers)), encoding="utf-8")
        return [folder, answers]

    # -- the engine's interface ---------------------------------------------------------------
    @property
    def info(self) -> VQAInfo:
        """Answers, answer and question types, vocabulary and padding id, image size."""
        if self._info is None:
            d = self.cfg.data
            if isinstance(d, ShapesVQADataConfig):
                self._info = ShapesVQA(self._shapes_config("train"), tokenizer=self.tokenizer).info
            else:
                # Indexing checks the files (questions against annotations, images present): done
                # here, so a bad release fails before a run folder exists, and kept for `dataset`.
                for split in ("train", d.val_split):
                    self._vqav2(split)
                self._info = VQAInfo("vqav2", d.image_size, self.answers, ANSWER_TYPES, (),
                                     self.tokenizer.vocab_size, self.tokenizer.pad_id, max_length=d.max_length)
        return self._info

    def resolve(self) -> RunConfig:
        """Nothing is estimated from the data: the config as given."""
        return self.cfg

    def dataset(self, split: str, train: bool) -> VQAItems:
        """A split, model-ready (`VQAItems`). There is no augmentation: flips would swap left
        and right in the answers."""
        d = self.cfg.data
        limit = d.limit_train if split == "train" else d.limit_val
        if isinstance(d, ShapesVQADataConfig):
            raw_cfg = self._shapes_config(split, limit)
            raw: Dataset = ShapesVQA(raw_cfg, tokenizer=self.tokenizer)
            memory = None
            if d.keep_in_memory:
                key = (repr(raw_cfg), _fingerprint(self.tokenizer))
                memory = _MEMORY.setdefault(key, [])
            return VQAItems(raw, d, self.tokenizer, memory)
        return VQAItems(self._vqav2(split), d, self.tokenizer)

    # -- vqav2 ---------------------------------------------------------------------------------
    def _vqav2(self, split: str) -> VQAv2Dataset:
        """A VQAv2 split, indexed once per process for these files, vocabularies and options."""
        d = self.cfg.data
        raw_cfg = VQAv2Config(
            root=d.root, split=split, image_root=d.image_root, image_size=d.image_size,
            top_k_answers=d.top_k_answers, max_length=d.max_length, bad_image=d.bad_image,
            drop_unanswerable=d.drop_unanswerable, min_word_frequency=d.min_word_frequency,
            limit=d.limit_train if split == "train" else d.limit_val,
        )
        files = [p for p in (questions_file(d.root, split), annotations_file(d.root, split)) if p.is_file()]
        key = (repr(raw_cfg), _fingerprint(self.tokenizer), hashlib.sha1(json.dumps(self.answers).encode()).hexdigest(),
               tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
        if key not in _INDEXED:
            while len(_INDEXED) >= _KEEP_INDEXED:  # a VQAv2 split holds ~200k questions: keep few
                del _INDEXED[next(iter(_INDEXED))]
            _INDEXED[key] = VQAv2Dataset(raw_cfg, tokenizer=self.tokenizer, answers=self.answers)
        return _INDEXED[key]

    # -- shapes-vqa --------------------------------------------------------------------------
    def _scene(self) -> SceneConfig:
        d = self.cfg.data
        return SceneConfig(num_objects=d.num_objects, colours=tuple(d.colours), object_size=d.object_size,
                           relation_margin=d.relation_margin)

    def _shapes_config(self, split: str, limit: int | None = None) -> ShapesVQAConfig:
        d = self.cfg.data
        n = d.num_train if split == "train" else d.num_val
        return ShapesVQAConfig(split=split, num_items=min(n, limit or n), image_size=d.image_size,
                               seed=d.data_seed, scene=self._scene(), max_length=d.max_length,
                               with_masks=False, question_types=tuple(d.question_types))


def _fingerprint(tokenizer: TextTokenizer) -> str:
    """Which vocabulary: the same word-level file, or the same pretrained folder."""
    if tokenizer.word_level:
        return hashlib.sha1(tokenizer.backend.to_str().encode()).hexdigest()
    return str(getattr(tokenizer.backend, "name_or_path", id(tokenizer)))


__all__ = ["VQASource", "VQAItems", "TOKENIZER_DIR", "ANSWERS_FILE", "QUESTION_TYPES"]
