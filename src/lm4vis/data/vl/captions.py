"""What every image-caption dataset shares: one item per caption for training, and the two
views retrieval evaluation embeds separately (every image once, every caption once).

Items (``dataset[i]``, caption ``i`` with its image):

- ``image``: uint8 [3, S, S];
- ``image_index``: int64 [], the image's position in the split (``image_view()`` order);
- ``input_ids``: int64 [L], the caption's ``[CLS] ... [SEP]`` ids, L <= ``max_length``;
- ``caption_index``: int64 [], the caption's position in the split (``caption_view()`` order);
- plus what a subclass adds per image (``_image_item``) and per caption (``_caption_extras``).

``caption_image`` (int64 [num_captions]) maps captions to images, which is what
`lm4vis.tasks.retrieval_metrics.retrieval_recalls` needs beside the similarity matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..skips import Skipped, SkipLog
from .items import CaptionInfo, collate_vl
from .text import TextTokenizer


class ItemView(Dataset):
    """A dataset of ``length`` items made by ``get(index)``, with the parent's collate.

    Args:
        length: number of items.
        get: item maker.
        collate: batch maker.
    """

    def __init__(self, length: int, get: Callable[[int], Any], collate: Callable[[list], Any]) -> None:
        self.length, self.get, self.collate = length, get, collate

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a view of {self.length} items")
        return self.get(index)


class CaptionDataset(Dataset):
    """Base of the caption datasets: subclasses give the caption table, texts and images.

    Args:
        info: the dataset's description.
        skips: the dataset's skip log (counts made while indexing).
        tokenizer: the caption tokeniser.
        caption_image: image index of every caption, in split order.
        max_length: longest caption kept, in tokens.
    """

    def __init__(self, info: CaptionInfo, skips: SkipLog, tokenizer: TextTokenizer,
                 caption_image: np.ndarray, max_length: int) -> None:
        if len(caption_image) != info.num_captions:
            raise ValueError(f"{info.num_captions} captions but {len(caption_image)} image indices")
        self.info, self.skips, self.tokenizer = info, skips, tokenizer
        self.caption_image = torch.as_tensor(caption_image, dtype=torch.long)
        self.max_length = max_length

    # -- what a subclass provides ---------------------------------------------------------
    def caption_text(self, caption_index: int) -> str:
        """The text of caption ``caption_index``."""
        raise NotImplementedError

    def _image_item(self, image_index: int) -> dict[str, Tensor] | Skipped:
        """``image`` and any other per-image keys of image ``image_index``, or a marker."""
        raise NotImplementedError

    def _caption_extras(self, caption_index: int) -> dict[str, Tensor]:
        """Per-caption keys beside the token ids (none by default)."""
        return {}

    # -- items --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.info.num_captions

    def caption_item(self, index: int) -> dict[str, Tensor]:
        """``input_ids``, ``image_index``, ``caption_index`` and extras of caption ``index``."""
        return {"input_ids": torch.tensor(self.tokenizer.encode(self.caption_text(index), self.max_length)),
                "image_index": self.caption_image[index].clone(),
                "caption_index": torch.tensor(index),
                **self._caption_extras(index)}

    def image_item(self, index: int) -> dict[str, Tensor] | Skipped:
        """``image``, ``image_index`` and the per-image extras of image ``index``."""
        item = self._image_item(index)
        if isinstance(item, Skipped):
            return item
        return {**item, "image_index": torch.tensor(index)}

    def __getitem__(self, index: int) -> dict[str, Tensor] | Skipped:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.info.name} of length {len(self)}")
        index %= len(self)
        image = self.image_item(int(self.caption_image[index]))
        if isinstance(image, Skipped):
            return image
        return {**image, **self.caption_item(index)}

    def image_view(self) -> ItemView:
        """Every image once (retrieval evaluation's image side)."""
        return ItemView(self.info.num_images, self.image_item, self.collate)

    def caption_view(self) -> ItemView:
        """Every caption once, without its image (retrieval evaluation's text side)."""
        return ItemView(len(self), self.caption_item, self.collate)

    def collate(self, items: list[dict[str, Tensor] | Skipped]) -> dict[str, Any]:
        """`collate_vl` with this tokeniser's padding id."""
        return collate_vl(items, self.info.pad_id)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.info.name!r}, images={self.info.num_images}, "
                f"captions={len(self)}, skipped={self.skips.total})")


__all__ = ["CaptionDataset", "ItemView"]
