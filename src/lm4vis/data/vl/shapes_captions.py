"""``shapes-captions``: the shapes scenes, each with several template captions, for retrieval.

A caption is ``sentences_per_caption`` sentences of different kinds, each a true and clear
statement about some of the scene's objects::

    object     there is a red circle.
    beside     a red circle is to the left of a blue square.      (left / right / above / below)
    closest    the green triangle is closest to the red circle.
    count      there are two circles.                             (no / one / two ...)
    extreme    the leftmost object is a cyan square.              (left / right / top / bottom)

Every scene has the same six colours and only three shapes, so a sentence fits many scenes
("there is a red circle" about a third of them): a caption picks out its image only through
the combination of its facts, and retrieval among a thousand scenes is far from trivial. Image
``i`` and its captions come from a generator seeded by ``(seed, split, i)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..base import check_split
from ..skips import SkipLog
from .captions import CaptionDataset
from .items import CaptionInfo
from .shapes import SHAPES, Scene, SceneConfig, clear_closest, clear_extreme, item_rng, render, sample_scene
from .text import TextTokenizer

NAME = "shapes-captions"
SENTENCE_KINDS: tuple[str, ...] = ("object", "beside", "closest", "count", "extreme")
NUMBER_WORDS: tuple[str, ...] = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
#: relation -> (coordinate, True when the first object has the smaller coordinate)
_BESIDE = {"to the left of": (0, True), "to the right of": (0, False), "above": (1, True), "below": (1, False)}
_EXTREMES = {"leftmost": (0, False), "rightmost": (0, True), "topmost": (1, False), "bottommost": (1, True)}
#: Scenes, captions and rendered images kept by ``keep_in_memory``, by (config, index).
_IN_MEMORY: dict[tuple[Any, ...], Any] = {}
#: Scenes per split when the config gives none (Flickr30k's test split has 1,000 images).
DEFAULT_SIZES: dict[str, int] = {"train": 10_000, "val": 1_000, "test": 1_000}


@dataclass(frozen=True)
class ShapesCaption:
    """One generated caption: its text and the objects it names."""

    text: str
    named: tuple[int, ...]


@dataclass
class ShapesCaptionsConfig:
    """A generated shapes-captions split.

    Args:
        split: train, val or test.
        num_images: scenes in the split; None takes `DEFAULT_SIZES`.
        captions_per_image: captions of every scene (five, like Flickr30k and COCO).
        sentences_per_caption: sentences of different kinds in each caption.
        image_size: side of the rendered square images.
        seed: the dataset seed.
        scene: how scenes are drawn.
        max_length: longest caption kept, in tokens.
        with_masks: image items carry ``object_masks``.
        keep_in_memory: keep every scene, its captions and its rendered image in this
            process's memory once made (shared by every dataset of the same config, so the
            runs of one ``compare`` render each scene once; 48 px images take 7 kB each).
    """

    split: str = "train"
    num_images: int | None = None
    captions_per_image: int = 5
    sentences_per_caption: int = 2
    image_size: int = 64
    seed: int = 0
    scene: SceneConfig = field(default_factory=SceneConfig)
    max_length: int = 40
    with_masks: bool = False
    keep_in_memory: bool = False

    def __post_init__(self) -> None:
        check_split(self.split)
        if isinstance(self.scene, dict):  # from YAML
            self.scene = SceneConfig(**self.scene)
        if self.num_images is None:
            self.num_images = DEFAULT_SIZES[self.split]
        if self.num_images < 1 or self.captions_per_image < 1:
            raise ValueError(f"{NAME}: num_images and captions_per_image must be positive")
        if not 1 <= self.sentences_per_caption <= len(SENTENCE_KINDS):
            raise ValueError(f"{NAME}: sentences_per_caption must be 1..{len(SENTENCE_KINDS)}")
        if self.scene.num_objects >= len(NUMBER_WORDS):
            raise ValueError(f"{NAME}: counts are written in words up to {NUMBER_WORDS[-1]}; use fewer objects")
        if self.max_length < 3 or self.image_size < 8:
            raise ValueError(f"{NAME}: max_length must be at least 3 and image_size at least 8")


def count_sentence(shape: str, count: int) -> str:
    if count == 1:
        return f"there is one {shape}."
    return f"there are {NUMBER_WORDS[count]} {shape}s."


def sentences(kind: str, scene: Scene, margin: float) -> list[ShapesCaption]:
    """Every true, clear sentence of ``kind`` about ``scene``.

    Args:
        kind: one of `SENTENCE_KINDS`.
        scene: the scene.
        margin: `SceneConfig.relation_margin`.
    """
    objs = scene.objects
    if kind == "object":
        return [ShapesCaption(f"there is a {o.name}.", (i,)) for i, o in enumerate(objs)]
    if kind == "beside":
        out = []
        for i, a in enumerate(objs):
            for j, b in enumerate(objs):
                for relation, (axis, first_smaller) in _BESIDE.items():
                    ca, cb = (a.x, a.y)[axis], (b.x, b.y)[axis]
                    if (cb - ca if first_smaller else ca - cb) > margin:
                        out.append(ShapesCaption(f"a {a.name} is {relation} a {b.name}.", (i, j)))
        return out
    if kind == "closest":
        out = []
        for j, ref in enumerate(objs):
            i = clear_closest(scene, j, margin)
            if i is not None:
                out.append(ShapesCaption(f"the {objs[i].name} is closest to the {ref.name}.", (i, j)))
        return out
    if kind == "count":
        return [ShapesCaption(count_sentence(s, sum(o.shape == s for o in objs)),
                              tuple(i for i, o in enumerate(objs) if o.shape == s)) for s in SHAPES]
    if kind == "extreme":
        out = []
        for word, (axis, largest) in _EXTREMES.items():
            k = clear_extreme([(o.x, o.y)[axis] for o in objs], margin, largest)
            if k is not None:
                out.append(ShapesCaption(f"the {word} object is a {objs[k].name}.", (k,)))
        return out
    raise ValueError(f"unknown sentence kind {kind!r}; use one of {', '.join(SENTENCE_KINDS)}")


def every_sentence(cfg: SceneConfig) -> Iterator[str]:
    """A text in which every word the generator can write appears (the vocabulary's source)."""
    names = [f"{c} {s}" for c in cfg.colours for s in SHAPES]
    for name in names:
        yield f"there is a {name}."
        yield f"the {name} is closest to the {name}."
        for relation in _BESIDE:
            yield f"a {name} is {relation} a {name}."
        for word in _EXTREMES:
            yield f"the {word} object is a {name}."
    for shape in SHAPES:
        for count in range(cfg.num_objects + 1):
            yield count_sentence(shape, count)


def generate(cfg: ShapesCaptionsConfig, image_index: int) -> tuple[Scene, list[ShapesCaption]]:
    """Scene ``image_index`` and its captions: a function of (seed, split, image_index) alone.

    Args:
        cfg: the split's configuration.
        image_index: which scene.
    """
    rng = item_rng(cfg.seed, cfg.split, image_index)
    scene = sample_scene(rng, cfg.scene)
    pools = {kind: sentences(kind, scene, cfg.scene.relation_margin) for kind in SENTENCE_KINDS}
    usable = [kind for kind in SENTENCE_KINDS if pools[kind]]  # object and count always are
    captions = []
    for _ in range(cfg.captions_per_image):
        parts, named = [], set()
        for k in rng.permutation(len(usable))[: cfg.sentences_per_caption]:
            pool = pools[usable[k]]
            # Prefer a sentence about some object not named yet ("the leftmost object is a red
            # circle" followed by "there is a red circle" would say nothing new).
            fresh = [p for p in pool if not p.named or not set(p.named) <= named] or pool
            part = fresh[int(rng.integers(len(fresh)))]
            parts.append(part)
            named.update(part.named)
        captions.append(ShapesCaption(" ".join(p.text for p in parts), tuple(sorted(named))))
    return scene, captions


class ShapesCaptions(CaptionDataset):
    """Generated shape scenes with template captions; items as in `CaptionDataset`, plus
    ``boxes`` float32 [N, 4] (pixels) and, with ``with_masks``, ``object_masks`` bool [N, S, S]
    per image, and ``named_objects`` bool [N] per caption, N = ``num_objects``.

    Args:
        cfg: the split.
        tokenizer: the caption tokeniser; a word-level one of every word the generator can
            write when None.
    """

    def __init__(self, cfg: ShapesCaptionsConfig, tokenizer: TextTokenizer | None = None) -> None:
        self.cfg = cfg
        tokenizer = tokenizer or TextTokenizer.train_word_level(every_sentence(cfg.scene))
        per = cfg.captions_per_image
        info = CaptionInfo(NAME, cfg.image_size, cfg.num_images, cfg.num_images * per,
                           tokenizer.vocab_size, tokenizer.pad_id, cfg.scene.num_objects)
        super().__init__(info, SkipLog(f"{NAME}/{cfg.split}"), tokenizer,
                         np.repeat(np.arange(cfg.num_images), per), cfg.max_length)
        # An item reads its scene three times (image, text, named objects): keep the last.
        self._last: tuple[int, tuple[Scene, list[ShapesCaption]]] | None = None
        self._memory_key = repr(replace(cfg, keep_in_memory=False))

    def scene(self, image_index: int) -> tuple[Scene, list[ShapesCaption]]:
        """Scene ``image_index`` and its captions, without rendering."""
        if not 0 <= image_index < self.info.num_images:
            raise IndexError(f"image {image_index} out of range for {self.info.num_images} images")
        if self.cfg.keep_in_memory:
            key = (self._memory_key, image_index)
            if key not in _IN_MEMORY:
                _IN_MEMORY[key] = generate(self.cfg, image_index)
            return _IN_MEMORY[key]
        if self._last is None or self._last[0] != image_index:
            self._last = (image_index, generate(self.cfg, image_index))
        return self._last[1]

    def _caption(self, caption_index: int) -> ShapesCaption:
        image_index, k = divmod(caption_index, self.cfg.captions_per_image)
        return self.scene(image_index)[1][k]

    def caption_text(self, caption_index: int) -> str:
        return self._caption(caption_index).text

    def _caption_extras(self, caption_index: int) -> dict[str, Tensor]:
        named = torch.zeros(self.cfg.scene.num_objects, dtype=torch.bool)
        named[list(self._caption(caption_index).named)] = True
        return {"named_objects": named}

    def _image_item(self, image_index: int) -> dict[str, Tensor]:
        if not self.cfg.keep_in_memory:
            return self._render(image_index)
        key = (self._memory_key, image_index, "image")
        if key not in _IN_MEMORY:
            _IN_MEMORY[key] = self._render(image_index)
        return dict(_IN_MEMORY[key])  # items are never changed in place: the collate stacks copies

    def _render(self, image_index: int) -> dict[str, Tensor]:
        scene, _ = self.scene(image_index)
        image, masks = render(scene, self.cfg.image_size)
        item = {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                "boxes": torch.tensor([o.box for o in scene.objects], dtype=torch.float32) * self.cfg.image_size}
        if self.cfg.with_masks:
            item["object_masks"] = torch.from_numpy(masks)
        return item


__all__ = ["NAME", "SENTENCE_KINDS", "NUMBER_WORDS", "ShapesCaption", "ShapesCaptionsConfig",
           "ShapesCaptions", "sentences", "every_sentence", "generate", "count_sentence"]
