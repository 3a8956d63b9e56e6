"""Flickr30k and COCO captions in Karpathy's split, as ``dataset_flickr30k.json`` /
``dataset_coco.json`` from his ``caption_datasets.zip`` have them::

    {"dataset": "flickr30k", "images": [
        {"filename": "1000092795.jpg", "imgid": 0, "split": "train",   # train/val/test/restval
         "sentids": [0, 1, 2, 3, 4],
         "sentences": [{"raw": "Two young guys ...", "tokens": ["two", ...], "imgid": 0,
                        "sentid": 0}, ...]},
        ...]}

Images are read from ``image_root/filename`` (Flickr30k: the ``flickr30k-images`` folder) or,
for COCO entries that carry a ``filepath``, ``image_root/filepath/filename`` (the folder
holding ``train2014/`` and ``val2014/``). ``restval`` (COCO only) joins ``train`` unless told
otherwise, as in ViLT and METER. Captions are tokenised from ``raw``; the word-level vocabulary
is built from the training captions of the same file.

Bad input: an empty caption is counted and skipped (an image left with none is skipped too,
since retrieval cannot score it); a missing or unreadable image fails or is counted and
skipped, by ``bad_image``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ..base import DatasetNotFoundError
from ..skips import BadInputError, Policy, Skipped, SkipLog, check_policy
from .captions import CaptionDataset
from .items import CaptionInfo, read_image_or_skip
from .text import TextTokenizer

NAME = "karpathy-captions"
SPLITS = ("train", "val", "test")
KARPATHY_SPLITS = ("train", "val", "test", "restval")


@dataclass
class KarpathyConfig:
    """Where a Karpathy-split caption set is and how to read it.

    Args:
        annotation_file: ``dataset_flickr30k.json`` or ``dataset_coco.json``.
        image_root: the folder the entries' ``filename`` (and ``filepath``) are relative to.
        split: train, val or test.
        image_size: side of the square images items carry.
        max_length: longest caption kept, in tokens with [CLS] and [SEP].
        restval_in_train: count COCO's ``restval`` images as training images.
        bad_image: ``fail`` or ``skip`` a missing or unreadable image.
        min_word_frequency: rarer caption words map to [UNK] (word-level vocabulary only).
        limit: keep the first ``limit`` images of the split (all when None).
    """

    annotation_file: str
    image_root: str
    split: str = "train"
    image_size: int = 384
    max_length: int = 40
    restval_in_train: bool = True
    bad_image: Policy = "fail"
    min_word_frequency: int = 1
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"{NAME} split={self.split!r} is unknown; use one of {', '.join(SPLITS)}")
        check_policy("bad_image", self.bad_image)
        if self.image_size < 1 or self.min_word_frequency < 1:
            raise ValueError(f"{NAME} image_size and min_word_frequency must be positive")
        if self.max_length < 3:
            raise ValueError(f"{NAME} max_length must be at least 3 ([CLS] word [SEP]), got {self.max_length}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"{NAME} limit must be positive or None, got {self.limit}")

    def takes(self, karpathy_split: str) -> bool:
        """Whether an entry of ``karpathy_split`` belongs to this split."""
        if karpathy_split == "restval":
            return self.split == "train" and self.restval_in_train
        return karpathy_split == self.split


def read_karpathy(path: str | Path) -> list[dict[str, Any]]:
    """The ``images`` of a Karpathy split file, checked to have the fields the loader reads.

    Args:
        path: ``dataset_flickr30k.json`` or ``dataset_coco.json``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} not found; it is in Karpathy's caption_datasets.zip (dataset_flickr30k.json, "
            "dataset_coco.json); point annotation_file at it"
        )
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise BadInputError(f"{path} is not valid JSON ({e}); download it again") from e
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise BadInputError(f"{path} has no list under 'images'; is it a Karpathy split file?")
    for entry in images:
        missing = [k for k in ("filename", "split", "sentences") if k not in entry]
        if missing or entry["split"] not in KARPATHY_SPLITS:
            what = f"lacks {', '.join(missing)}" if missing else f"has split {entry['split']!r}"
            raise BadInputError(f"{path}: image {entry.get('imgid', '?')} {what}; Karpathy "
                                f"entries have filename, split ({'/'.join(KARPATHY_SPLITS)}) and sentences")
    return images


class KarpathyCaptions(CaptionDataset):
    """Flickr30k / COCO Karpathy-split captions; items as in `CaptionDataset`.

    Args:
        cfg: where the files are and how to read them.
        tokenizer: the caption tokeniser; a word-level one built from the file's training
            captions when None.
    """

    def __init__(self, cfg: KarpathyConfig, tokenizer: TextTokenizer | None = None) -> None:
        self.cfg = cfg
        skips = SkipLog(f"{NAME}/{cfg.split}")
        entries = read_karpathy(cfg.annotation_file)
        if tokenizer is None:
            train = KarpathyConfig(cfg.annotation_file, cfg.image_root, "train",
                                   restval_in_train=cfg.restval_in_train)
            tokenizer = TextTokenizer.train_word_level(
                (s["raw"] for e in entries if train.takes(e["split"]) for s in e["sentences"]),
                cfg.min_word_frequency)
        root = Path(cfg.image_root).expanduser()
        chosen = [e for e in entries if cfg.takes(e["split"])][: cfg.limit]
        paths = [root / e.get("filepath", "") / e["filename"] for e in chosen]
        missing = [p for p in paths if not p.is_file()]
        if missing and cfg.bad_image == "fail":
            skips.handle("fail", "missing-image",
                         f"{len(missing)} of {len(paths)} {cfg.split} images are missing, first {missing[0]}",
                         f"check image_root ({root}), or set bad_image='skip' to count and skip them")
        missing_set = set(missing)

        self.image_paths: list[Path] = []
        self.captions: list[str] = []
        caption_image: list[int] = []
        for entry, path in zip(chosen, paths):
            if path in missing_set:
                skips.skip("missing-image", f"{path} is missing", count=len(entry["sentences"]))
                continue
            texts = []
            for sentence in entry["sentences"]:
                if sentence.get("raw", "").strip():
                    texts.append(sentence["raw"])
                else:
                    skips.skip("empty-caption", f"{entry['filename']}: sentence {sentence.get('sentid', '?')} is empty")
            if not texts:
                skips.skip("image-without-caption", f"{entry['filename']} has no non-empty caption")
                continue
            self.captions.extend(texts)
            caption_image.extend([len(self.image_paths)] * len(texts))
            self.image_paths.append(path)
        info = CaptionInfo(NAME, cfg.image_size, len(self.image_paths), len(self.captions),
                           tokenizer.vocab_size, tokenizer.pad_id)
        super().__init__(info, skips, tokenizer, np.array(caption_image, np.int64), cfg.max_length)

    def caption_text(self, caption_index: int) -> str:
        return self.captions[caption_index]

    def _image_item(self, image_index: int) -> dict[str, Tensor] | Skipped:
        image = read_image_or_skip(self.image_paths[image_index], self.cfg.image_size,
                                   self.cfg.bad_image, self.skips)
        return image if isinstance(image, Skipped) else {"image": image}


__all__ = ["KarpathyConfig", "KarpathyCaptions", "read_karpathy", "SPLITS"]
