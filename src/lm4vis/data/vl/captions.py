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

Retrieval evaluation in the engine reads `image_captions_view`: one item per image holding
every one of its captions, padded to the split's ``max_captions`` (``caption_valid`` marks the
real ones), so that each image is embedded once and the per-image tensors the engine gathers
have one shape over the whole split. `collate_image_captions` batches them. `CaptionSource`
is the registered data source of ``shapes-captions`` and ``karpathy-captions``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..skips import Skipped, SkipLog, drop_skipped
from .items import TEXT_KEY, TEXT_MASK_KEY, CaptionInfo, collate_vl, pad_token_ids
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

    @property
    def max_captions(self) -> int:
        """The most captions any image of the split has (0 for an empty split)."""
        counts = torch.bincount(self.caption_image, minlength=self.info.num_images)
        return int(counts.max()) if len(counts) else 0

    def image_captions_item(self, index: int) -> dict[str, Any] | Skipped:
        """Image ``index`` with all its captions: ``caption_ids`` (a list of ``max_captions``
        int64 [L_i] tensors, the missing ones filled with copies of the first caption),
        ``caption_valid`` bool [max_captions] and ``caption_index`` int64 [max_captions] (-1
        for a filler)."""
        image = self.image_item(index)
        if isinstance(image, Skipped):
            return image
        own = torch.nonzero(self.caption_image == index).flatten().tolist()
        ids = [self.caption_item(c)["input_ids"] for c in own]
        width = self.max_captions
        # Fillers copy a real caption (never an all-padding row) and are masked out of every score.
        ids += [ids[0]] * (width - len(own))
        valid = torch.arange(width) < len(own)
        index_of = torch.tensor(own + [-1] * (width - len(own)), dtype=torch.long)
        return {**image, "caption_ids": ids, "caption_valid": valid, "caption_index": index_of}

    def image_captions_view(self) -> ItemView:
        """Every image once with every one of its captions (what retrieval validation reads)."""
        view = ItemView(self.info.num_images, self.image_captions_item,
                        lambda items: collate_image_captions(items, self.info.pad_id))
        view.info, view.skips = self.info, self.skips
        return view

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


def collate_image_captions(items: list[dict[str, Any] | Skipped], pad_id: int) -> dict[str, Any]:
    """A batch of `CaptionDataset.image_captions_item` items.

    Returns ``image`` [B, 3, S, S] and every other per-image key stacked, ``input_ids``
    int64 [B * C, L] with ``text_padding_mask`` bool [B * C, L] (True = padding; image ``b``'s
    captions are rows ``b * C`` to ``b * C + C - 1``), ``caption_valid`` bool [B, C],
    ``caption_index`` int64 [B, C] and ``skipped`` ``{reason: count}``.

    Args:
        items: image-with-captions items, or `Skipped` markers of unreadable images.
        pad_id: the tokeniser's padding id.
    """
    kept, skipped = drop_skipped(items)
    batch: dict[str, Any] = {}
    if kept:
        for key in kept[0]:
            if key == "caption_ids":
                batch[TEXT_KEY], batch[TEXT_MASK_KEY] = pad_token_ids(
                    [ids for item in kept for ids in item[key]], pad_id)
            else:
                batch[key] = torch.stack([item[key] for item in kept])
    batch["skipped"] = skipped
    return batch


class CaptionSource:
    """The data source of the registered caption datasets (see `lm4vis.train.datamodule.DataSource`).

    Training items are captions with their image (`CaptionDataset.__getitem__`); validation
    items are images with all their captions (`CaptionDataset.image_captions_view`). The
    tokeniser is built once (from the training captions, or ``data.tokenizer``'s folder),
    shared by every split, saved with the run and read back from ``run_dir/tokenizer``.

    Args:
        cfg: the run config (``data``: a `lm4vis.data.captions_config.CaptionDataConfig`).
        run_dir: the run's folder when it exists (its saved tokeniser is then used).
    """

    accepts_epoch = False
    TOKENIZER_DIR = "tokenizer"

    def __init__(self, cfg: Any, run_dir: Path | None = None) -> None:
        from ...train.config import ConfigError

        self.cfg = cfg
        saved = None if run_dir is None else Path(run_dir) / self.TOKENIZER_DIR
        tokenizer = None
        if saved is not None and saved.is_dir():
            tokenizer = TextTokenizer.load(saved)
        elif cfg.data.tokenizer is not None:
            try:
                tokenizer = TextTokenizer.from_pretrained(cfg.data.tokenizer)
            except FileNotFoundError as e:
                raise ConfigError(f"data.tokenizer: {e}") from None
        self._splits: dict[str, CaptionDataset] = {}
        self.tokenizer: TextTokenizer | None = tokenizer
        self.tokenizer = self.split("train").tokenizer  # built from the training captions when None

    def split(self, name: str) -> CaptionDataset:
        """The caption dataset of split ``name``, built once, with the shared tokeniser."""
        if name not in self._splits:
            from ...train.config import ConfigError
            from ..base import DatasetNotFoundError
            from ..skips import BadInputError
            from . import build_vl_dataset

            try:
                self._splits[name] = build_vl_dataset(self.cfg.data.name, loader_options(self.cfg.data, name),
                                                      tokenizer=self.tokenizer)
            except (DatasetNotFoundError, BadInputError) as e:
                raise ConfigError(str(e)) from None
        return self._splits[name]

    @property
    def info(self) -> CaptionInfo:
        """The training split's `CaptionInfo` (image size, vocabulary size, padding id)."""
        return self.split("train").info

    def resolve(self) -> Any:
        """Nothing is estimated from the data; the validation split is indexed here, so a
        missing file fails before training."""
        self.split(self.cfg.data.val_split)
        return self.cfg

    def dataset(self, split: str, train: bool) -> Dataset:
        """Captions with their images (``train``), or images with all their captions."""
        data = self.split(split)
        return data if train else data.image_captions_view()

    def save_run_files(self, run_dir: Path) -> list[Path]:
        """The tokeniser, as ``run_dir/tokenizer/``."""
        folder = self.tokenizer.save(Path(run_dir) / self.TOKENIZER_DIR)
        return sorted(folder.iterdir())


def loader_options(data: Any, split: str) -> dict[str, Any]:
    """The loader's own config of one split (`build_vl_dataset`), from the run's ``data``.

    Args:
        data: the run's ``data`` section.
        split: ``train``, ``val`` or ``test``.
    """
    limit = data.limit_train if split == "train" else data.limit_val
    common = {"split": split, "image_size": data.image_size, "max_length": data.max_length}
    if data.name == "shapes-captions":
        from .shapes import SceneConfig

        size = {"train": data.num_train, "val": data.num_val, "test": data.num_test}[split]
        return {**common, "num_images": size if limit is None else min(size, limit), "seed": data.data_seed,
                "captions_per_image": data.captions_per_image,
                "sentences_per_caption": data.sentences_per_caption,
                "scene": SceneConfig(num_objects=data.num_objects, object_size=data.object_size),
                "keep_in_memory": data.keep_in_memory}
    if data.name == "karpathy-captions":
        return {**common, "annotation_file": data.annotation_file, "image_root": data.root,
                "restval_in_train": data.restval_in_train, "bad_image": data.bad_image,
                "min_word_frequency": data.min_word_frequency, "limit": limit}
    raise ValueError(f"data.name={data.name!r} is not a caption dataset")


__all__ = ["CaptionDataset", "ItemView", "CaptionSource", "collate_image_captions", "loader_options"]
