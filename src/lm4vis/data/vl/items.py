"""What every vision-language dataset shares: its description, reading an image, the collate.

Items are dicts of tensors. Token ids come unpadded (``input_ids`` int64 [L], L differs from
item to item); `collate_vl` pads them and adds ``text_padding_mask`` (True = padding, the
convention of ``nn.MultiheadAttention``'s ``key_padding_mask`` and of `LMSlot`), stacks every
other key, drops the `Skipped` markers of unreadable items and reports them in
``batch["skipped"]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..skips import Skipped, SkipLog, drop_skipped
from ..transforms import resize_image

TEXT_KEY = "input_ids"
TEXT_MASK_KEY = "text_padding_mask"


@dataclass(frozen=True)
class VQAInfo:
    """What a VQA model needs to know before it sees an item.

    Args:
        name: registered dataset name (``vqav2``, ``shapes-vqa``).
        image_size: side of the square images items carry.
        answers: the answer vocabulary; a classifier's output ``j`` means ``answers[j]``.
        answer_types: names of the ``answer_type`` indices.
        question_types: names of the ``question_type`` indices (empty when items have none).
        vocab_size: size of the text tokeniser's vocabulary.
        pad_id: the id padded question tokens carry.
        max_objects: objects per scene in the ``boxes`` / ``object_masks`` keys (0: none).
        in_chans: image channels (RGB).
        max_length: the longest question, in tokens (0: not stated).
    """

    name: str
    image_size: int
    answers: tuple[str, ...]
    answer_types: tuple[str, ...]
    question_types: tuple[str, ...]
    vocab_size: int
    pad_id: int
    max_objects: int = 0
    in_chans: int = 3
    max_length: int = 0

    @property
    def num_answers(self) -> int:
        return len(self.answers)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CaptionInfo:
    """What a retrieval model needs to know before it sees an item.

    Args:
        name: registered dataset name (``karpathy-captions``, ``shapes-captions``).
        image_size: side of the square images items carry.
        num_images: images of the split (after skips).
        num_captions: captions of the split (after skips).
        vocab_size: size of the text tokeniser's vocabulary.
        pad_id: the id padded caption tokens carry.
        max_objects: objects per scene in the ``boxes`` / ``object_masks`` keys (0: none).
        in_chans: image channels (RGB).
    """

    name: str
    image_size: int
    num_images: int
    num_captions: int
    vocab_size: int
    pad_id: int
    max_objects: int = 0
    in_chans: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_rgb(path: Path, size: int) -> Tensor:
    """An image file as uint8 [3, size, size], resized (bilinear, antialiased) to a square.

    Raises ``OSError`` for a missing or undecodable file; callers apply their policy.

    Args:
        path: the image file (JPEG, PNG, ...).
        size: side of the square output.
    """
    try:
        with Image.open(path) as im:
            array = np.array(im.convert("RGB"))  # a writable copy, decoded in full here
    except UnidentifiedImageError as e:
        raise OSError(f"{path} is not a readable image ({e})") from e
    image = torch.from_numpy(np.ascontiguousarray(np.moveaxis(array, -1, 0)))
    return image if image.shape[-2:] == (size, size) else resize_image(image, size)


def read_image_or_skip(path: Path, size: int, policy: str, log: SkipLog) -> Tensor | Skipped:
    """`read_rgb` under a bad-image policy: ``fail`` raises `BadInputError`, ``skip`` returns a
    `Skipped` marker (items are read in DataLoader workers, whose own counts nobody sees).

    Args:
        path: the image file.
        size: side of the square output.
        policy: ``skip`` or ``fail``.
        log: the dataset's log (names the dataset in the error).
    """
    try:
        return read_rgb(path, size)
    except OSError as e:
        if policy == "fail":
            log.handle("fail", "unreadable-image", f"{path}: {e}",
                       "replace the file, or set bad_image='skip' to count and skip it")
        return Skipped("unreadable-image", f"{path}: {e}")


def pad_token_ids(sequences: list[Tensor], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad int64 [L_i] sequences to [B, max L]; returns (ids, padding mask, True = pad).

    Args:
        sequences: token ids of each item.
        pad_id: the tokeniser's padding id.
    """
    lengths = torch.tensor([len(s) for s in sequences])
    longest = int(lengths.max()) if len(sequences) else 0
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    mask = torch.arange(longest)[None, :] >= lengths[:, None]
    return ids, mask


def collate_vl(items: list[dict[str, Tensor] | Skipped], pad_id: int) -> dict[str, Any]:
    """One batch of vision-language items.

    Returns every key of the items stacked along a new first dimension, ``input_ids`` padded
    with ``pad_id`` to int64 [B, L] plus ``text_padding_mask`` bool [B, L] (True = padding), and
    ``skipped``: ``{reason: count}`` of the items dropped as unreadable. A batch whose items were
    all unreadable holds ``skipped`` alone.

    Args:
        items: dataset items, or `Skipped` markers.
        pad_id: the tokeniser's padding id.
    """
    kept, skipped = drop_skipped(items)
    batch: dict[str, Any] = {}
    if kept:
        for key in kept[0]:
            values = [item[key] for item in kept]
            if key == TEXT_KEY:
                batch[TEXT_KEY], batch[TEXT_MASK_KEY] = pad_token_ids(values, pad_id)
            else:
                batch[key] = torch.stack(values)
    batch["skipped"] = skipped
    return batch


__all__ = ["VQAInfo", "CaptionInfo", "read_rgb", "read_image_or_skip", "pad_token_ids",
           "collate_vl", "TEXT_KEY", "TEXT_MASK_KEY"]
