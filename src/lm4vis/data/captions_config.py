"""Typed configs of the image-caption datasets and their registrations (light: no torch).

Both are served by one data source, `lm4vis.data.vl.captions.CaptionSource`, registered with
``run_files=True``: the caption tokeniser is saved in the run folder (``tokenizer/``) when the
run is created and read back from there on resume, evaluation and analysis, so a run always
reloads with its own vocabulary.

A *sample* of a caption dataset is an image: ``limit_train`` / ``limit_val`` count images
(each with all its captions). Training iterates over captions (one item per caption, with its
image); validation over images, each with every one of its captions, so that Recall@K is
computed over the whole split with every image embedded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import register_dataset
from .configs import DataConfig

SKIP_OR_FAIL = ("skip", "fail")  # `lm4vis.data.skips.POLICIES`


@dataclass
class CaptionDataConfig(DataConfig):
    """What every image-caption dataset shares.

    Args:
        image_size: side of the square images; None takes ``host.image.img_size``.
        max_length: longest caption kept, in tokens with [CLS] and [SEP] (longer ones are cut).
        tokenizer: a local transformers folder whose tokeniser to use (for a pretrained text
            encoder: the same folder as ``host.text.pretrained``); None builds a word-level
            vocabulary from the training captions.
    """

    name: str = "shapes-captions"
    image_size: int | None = None
    max_length: int = 40
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"data.image_size={self.image_size} must be at least 8")
        if self.max_length < 3:
            raise ValueError(f"data.max_length={self.max_length} must be at least 3 ([CLS] word [SEP])")
        if self.tokenizer == "":
            raise ValueError("data.tokenizer='' names no folder; give a local transformers folder or null")

    def check_run(self, run: Any) -> None:
        image = getattr(run.host, "image", None)
        size = getattr(image, "img_size", None) if getattr(image, "pretrained", None) is None else None
        if self.image_size is None:
            self.image_size = size or 224
        text = getattr(run.host, "text", None)
        text_dir = getattr(text, "pretrained", None)
        if text_dir is not None and self.tokenizer is None:
            raise ValueError(f"host.text.pretrained={text_dir} reads its own tokeniser's ids; set "
                             f"data.tokenizer={text_dir}")


@dataclass
class ShapesCaptionsDataConfig(CaptionDataConfig):
    """The generated shape scenes with template captions (`lm4vis.data.vl.shapes_captions`).
    ``data_seed`` fixes the scenes and captions; the run seed only the training order.

    Args:
        num_train, num_val, num_test: scenes per split.
        captions_per_image: captions of every scene (five, like Flickr30k and COCO).
        sentences_per_caption: sentences of different kinds in each caption (more: each
            caption pins its scene down better, retrieval gets easier).
        num_objects: objects per scene, each of a distinct colour.
        object_size: side of an object, fraction of the canvas.
        keep_in_memory: keep scenes, captions and rendered images in memory once made (the
            runs of one ``compare`` or ``demo`` then render each scene once).
    """

    name: str = "shapes-captions"
    num_train: int = 10_000
    num_val: int = 1_000
    num_test: int = 1_000
    captions_per_image: int = 5
    sentences_per_caption: int = 2
    num_objects: int = 6
    object_size: float = 0.15
    keep_in_memory: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("num_train", "num_val", "num_test", "captions_per_image", "sentences_per_caption"):
            if getattr(self, key) < 1:
                raise ValueError(f"data.{key}={getattr(self, key)} must be positive")


@dataclass
class KarpathyCaptionsDataConfig(CaptionDataConfig):
    """Flickr30k or COCO in Karpathy's split JSON (`lm4vis.data.vl.karpathy`).

    Args:
        annotation_file: ``dataset_flickr30k.json`` or ``dataset_coco.json`` (from
            ``caption_datasets.zip``).
        root: the image folder the entries' ``filename`` (and COCO's ``filepath``) are
            relative to (Flickr30k: ``flickr30k-images``).
        restval_in_train: count COCO's ``restval`` images as training images (ViLT, METER).
        bad_image: a missing or unreadable image: ``fail`` (before training, naming the first
            missing file) or ``skip`` (counted in the run summary's ``skipped`` section).
        min_word_frequency: rarer training words map to [UNK] (word-level vocabulary only).
    """

    name: str = "karpathy-captions"
    annotation_file: str | None = None
    val_split: str = "test"  # the 1k Flickr30k / 5k COCO test images the papers report
    restval_in_train: bool = True
    bad_image: str = "fail"
    min_word_frequency: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bad_image not in SKIP_OR_FAIL:
            raise ValueError(f"data.bad_image={self.bad_image!r} is unknown; choose one of {', '.join(SKIP_OR_FAIL)}")
        if self.min_word_frequency < 1:
            raise ValueError(f"data.min_word_frequency={self.min_word_frequency} must be at least 1")

    def check_run(self, run: Any) -> None:
        super().check_run(run)
        if not self.annotation_file or not self.root:
            raise ValueError("data.name=karpathy-captions needs data.annotation_file (dataset_flickr30k.json "
                             "or dataset_coco.json) and data.root (the image folder)")


#: name -> (config class, one line for listings).
CAPTION_DATASETS: dict[str, tuple[type[CaptionDataConfig], str]] = {
    "shapes-captions": (ShapesCaptionsDataConfig, "generated shape scenes with five template captions each"),
    "karpathy-captions": (KarpathyCaptionsDataConfig, "Flickr30k / COCO captions in Karpathy's split JSON"),
}
for _name, (_config, _description) in CAPTION_DATASETS.items():
    register_dataset(_name, config=_config, builder="lm4vis.data.vl.captions:CaptionSource",
                     run_files=True, description=_description, kind="captions")

__all__ = ["CaptionDataConfig", "ShapesCaptionsDataConfig", "KarpathyCaptionsDataConfig", "CAPTION_DATASETS"]
