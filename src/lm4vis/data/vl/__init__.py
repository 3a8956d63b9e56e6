"""Vision-language datasets: VQAv2 and Karpathy-split captions in their release layouts, and
generated shape scenes with questions or captions whose every fact is exact.

    from lm4vis.data.vl import build_vl_dataset
    train = build_vl_dataset("shapes-vqa", {"split": "train", "num_items": 2000})
    val = build_vl_dataset("shapes-vqa", {"split": "val"}, tokenizer=train.tokenizer)
    batch = train.collate([train[i] for i in range(8)])
    # image uint8 [8,3,64,64], input_ids int64 [8,L], text_padding_mask bool [8,L] (True = pad),
    # target / accuracy float32 [8,A], answer_type int64 [8], ..., skipped {reason: count}

Every dataset has ``info`` (`VQAInfo` or `CaptionInfo`), ``skips`` (a `SkipLog`), ``tokenizer``
(a `TextTokenizer`, to save with the run) and ``collate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from .captions import CaptionDataset, ItemView
from .items import CaptionInfo, VQAInfo, collate_vl, pad_token_ids
from .karpathy import KarpathyCaptions, KarpathyConfig
from .shapes import SceneConfig
from .shapes_captions import ShapesCaptions, ShapesCaptionsConfig
from .shapes_vqa import ShapesVQA, ShapesVQAConfig, blind_prior
from .text import TextTokenizer
from .vqav2 import VQAv2Config, VQAv2Dataset


@dataclass(frozen=True)
class VLDatasetSpec:
    """One vision-language dataset.

    Args:
        config: its config dataclass.
        dataset: its dataset class, called as ``dataset(config, tokenizer=..., **kwargs)``.
        task: ``vqa`` (items carry ``target``/``accuracy``) or ``retrieval`` (image-caption pairs).
        needs_files: the data must be on disk (a release) rather than generated.
        description: one line for listings.
    """

    config: type
    dataset: type
    task: str
    needs_files: bool
    description: str


VL_DATASETS: dict[str, VLDatasetSpec] = {
    "shapes-vqa": VLDatasetSpec(ShapesVQAConfig, ShapesVQA, "vqa", False,
                                "generated shape scenes, 7 question types, exact answers (the default)"),
    "vqav2": VLDatasetSpec(VQAv2Config, VQAv2Dataset, "vqa", True,
                           "VQAv2 questions on COCO images, official answer scoring"),
    "shapes-captions": VLDatasetSpec(ShapesCaptionsConfig, ShapesCaptions, "retrieval", False,
                                     "generated shape scenes with five template captions each"),
    "karpathy-captions": VLDatasetSpec(KarpathyConfig, KarpathyCaptions, "retrieval", True,
                                       "Flickr30k / COCO captions in Karpathy's split"),
}


def build_vl_dataset(name: str, config: dict[str, Any] | None = None, **kwargs: Any) -> Dataset:
    """A registered vision-language dataset from a plain config mapping.

    Args:
        name: a key of `VL_DATASETS`.
        config: the fields of its config dataclass.
        **kwargs: passed to the dataset (``tokenizer``; VQAv2 also ``answers``).
    """
    if name not in VL_DATASETS:
        raise ValueError(f"unknown vision-language dataset {name!r}; choose one of {', '.join(VL_DATASETS)}")
    spec = VL_DATASETS[name]
    return spec.dataset(spec.config(**(config or {})), **kwargs)


__all__ = ["VL_DATASETS", "VLDatasetSpec", "build_vl_dataset", "VQAInfo", "CaptionInfo",
           "TextTokenizer", "collate_vl", "pad_token_ids", "CaptionDataset", "ItemView",
           "SceneConfig", "ShapesVQA", "ShapesVQAConfig", "blind_prior", "ShapesCaptions",
           "ShapesCaptionsConfig", "VQAv2Config", "VQAv2Dataset", "KarpathyConfig",
           "KarpathyCaptions"]
