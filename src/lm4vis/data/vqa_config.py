"""Typed configs of the VQA datasets and their registrations (light: no torch).

`VQADataConfig` holds what every VQA dataset shares: image side (the host's when null),
normalisation, the question tokeniser and the longest question, and the modality controls
(``blind``). ``shapes-vqa`` (generated, the embedded default) and ``vqav2`` (the official
release) add their own keys. One data source, `lm4vis.data.vl.source.VQASource`, serves both;
it is registered with ``run_files=True``: the question vocabulary (and the answer vocabulary)
derived from the training data is saved in the run folder and read back on resume, evaluation
and analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_dataset
from .configs import DataConfig

#: What a control takes away: nothing, the image (replaced by zeros: a language-only model) or
#: the question (reduced to [CLS] [SEP]: an image-only model).
BLIND: tuple[str, ...] = ("none", "image", "text")
BAD_IMAGE = ("fail", "skip")  # `lm4vis.data.skips.POLICIES`
SHAPE_COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan")  # `lm4vis.data.vl.shapes.COLOURS`
#: `lm4vis.data.vl.shapes_vqa.QUESTION_TYPES` (this module stays light; a test keeps the two equal)
SHAPE_QUESTION_TYPES = ("shape", "colour", "position", "closest", "farthest", "count", "left_of")


@dataclass
class VQADataConfig(DataConfig):
    """What every VQA dataset shares.

    Args:
        image_size: side of the square images; None takes ``host.image.img_size``.
        mean, std: per-channel normalisation of the 0..1 RGB image (0.5 / 0.5: ViLT's).
        tokenizer: a local transformers folder whose tokeniser reads the questions (for a
            pretrained text encoder: the same folder as ``host.text.pretrained``); None builds a
            word-level vocabulary from the training questions, saved with the run.
        max_length: the longest question kept, in tokens with [CLS] and [SEP].
        blind: ``none``; ``image``: every image is replaced by zeros (after normalisation), a
            language-only control; ``text``: every question is reduced to [CLS] [SEP], an
            image-only control.
    """

    name: str = "shapes-vqa"
    image_size: int | None = None
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    tokenizer: str | None = None
    max_length: int = 24
    blind: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.blind not in BLIND:
            raise ValueError(f"data.blind={self.blind!r} is unknown; choose one of {', '.join(BLIND)}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError(f"data.mean={self.mean} and data.std={self.std} need 3 values each (RGB), std > 0")
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"data.image_size={self.image_size} must be at least 8")
        if self.max_length < 3:
            raise ValueError(f"data.max_length={self.max_length} must be at least 3 ([CLS] word [SEP])")
        if self.tokenizer == "":
            raise ValueError("data.tokenizer='' names no folder; give a local transformers folder or null")

    def check_run(self, run: Any) -> None:
        img_size = getattr(run.host, "img_size", None)
        if self.image_size is None:
            self.image_size = img_size
        elif img_size is not None and img_size != self.image_size:
            raise ValueError(f"data.image_size={self.image_size} but host.image.img_size={img_size}; "
                             "set them to the same size (or leave data.image_size null)")
        if self.image_size is None:
            raise ValueError("data.image_size is null and the host names no image size; set data.image_size")


@dataclass
class ShapesVQADataConfig(VQADataConfig):
    """The generated Sort-of-CLEVR-style questions (`lm4vis.data.vl.shapes_vqa`): seven question
    types, exact answers, balanced. ``data_seed`` fixes the scenes; item ``i`` of a split depends
    on ``(data_seed, split, i)`` alone.

    Args:
        num_train, num_val: questions in the train and the val (and test) split.
        num_objects: objects per scene, each of its own colour.
        colours: the palette entries used.
        object_size: an object's side, fraction of the image.
        relation_margin: a relation is asked only when it is this clear (fraction of the image).
        question_types: the question types asked, in turn (all seven by default); a subset
            gives each type more of a small training budget.
        keep_in_memory: generate each item once per process and keep it (3 ms per item here):
            later epochs and the other runs of a ``compare`` or ``demo`` reuse it.
    """

    name: str = "shapes-vqa"
    num_train: int = 20_000
    num_val: int = 2_000
    num_objects: int = 6
    colours: list[str] = field(default_factory=lambda: list(SHAPE_COLOURS))
    object_size: float = 0.15
    relation_margin: float = 0.04
    question_types: list[str] = field(default_factory=lambda: list(SHAPE_QUESTION_TYPES))
    keep_in_memory: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError(f"data.num_train={self.num_train} and data.num_val={self.num_val} must be positive")
        unknown = [c for c in self.colours if c not in SHAPE_COLOURS]
        if unknown:
            raise ValueError(f"data.colours has {unknown}; choose from {', '.join(SHAPE_COLOURS)}")
        bad = [t for t in self.question_types if t not in SHAPE_QUESTION_TYPES]
        if bad or not self.question_types or len(set(self.question_types)) != len(self.question_types):
            raise ValueError(f"data.question_types={self.question_types} must name distinct types among "
                             f"{', '.join(SHAPE_QUESTION_TYPES)}")
        if not 2 <= self.num_objects <= len(self.colours):
            raise ValueError(f"data.num_objects={self.num_objects} must be 2..{len(self.colours)} "
                             "(one colour each: add colours or use fewer objects)")


@dataclass
class VQAv2DataConfig(VQADataConfig):
    """VQAv2 as released (`lm4vis.data.vl.vqav2`): ``data.root`` holds the question and
    annotation JSONs; images under ``image_root`` (``root`` when null) in train2014/, val2014/.
    Validation is on val2014 (``val_split: val``; test-dev has no public answers).

    Args:
        image_root: folder of the COCO image folders; null: ``root``.
        top_k_answers: the answer vocabulary: the most frequent normalised answers of the
            training annotations (3,129: METER's and ViLT's size).
        bad_image: ``fail`` (stop before training, naming the first missing image) or ``skip``
            (count and drop the questions of a missing or unreadable image).
        drop_unanswerable: drop questions none of whose answers is in the vocabulary; null drops
            them from training only (they are kept for evaluation, counted, and score 0 as on
            the official server).
        min_word_frequency: rarer question words map to [UNK] (word-level vocabulary only).
    """

    name: str = "vqav2"
    image_size: int | None = None
    max_length: int = 40
    image_root: str | None = None
    top_k_answers: int = 3129
    bad_image: str = "fail"
    drop_unanswerable: bool | None = None
    min_word_frequency: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bad_image not in BAD_IMAGE:
            raise ValueError(f"data.bad_image={self.bad_image!r} is unknown; choose fail or skip")
        if self.top_k_answers < 1 or self.min_word_frequency < 1:
            raise ValueError("data.top_k_answers and data.min_word_frequency must be positive")

    def check_run(self, run: Any) -> None:
        super().check_run(run)
        if not self.root:
            raise ValueError("data.root must name the VQAv2 folder (v2_OpenEnded_mscoco_*_questions.json, "
                             "v2_mscoco_*_annotations.json; https://visualqa.org/download.html)")


_SOURCE = "lm4vis.data.vl.source:VQASource"
register_dataset("shapes-vqa", config=ShapesVQADataConfig, builder=_SOURCE, run_files=True, kind="vqa",
                 description="generated shape scenes, 7 question types, exact answers (embedded)")
register_dataset("vqav2", config=VQAv2DataConfig, builder=_SOURCE, run_files=True, kind="vqa",
                 description="VQAv2 questions on COCO images, official answer scoring")

__all__ = ["VQADataConfig", "ShapesVQADataConfig", "VQAv2DataConfig", "BLIND"]
