"""Release-layout writers the vision-language data tests share: a JPEG, a VQAv2 release.

A module of its own (not the conftest), so tests import it by a name no other folder has."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (12, 9)) -> None:
    """A small random RGB JPEG (width, height) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


@dataclass
class Question:
    """One VQAv2 question and, for annotated splits, its ten human answers."""

    question_id: int
    image_id: int
    question: str
    answers: Sequence[str] = ()
    answer_type: str = "other"
    multiple_choice_answer: str | None = None


@dataclass
class VQAv2Release:
    """Writes ``v2_OpenEnded_mscoco_{split}_questions.json``, ``v2_mscoco_{split}_annotations.json``
    and ``{folder}/COCO_{folder}_{image_id:012d}.jpg`` as the release has them."""

    root: Path

    FILES = {"train": ("train2014", "train2014"), "val": ("val2014", "val2014"),
             "test-dev": ("test-dev2015", "test2015"), "test": ("test2015", "test2015")}

    def write(self, split: str, questions: Sequence[Question], images: bool = True) -> None:
        part, folder = self.FILES[split]
        qdoc = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {},
                "data_subtype": part,
                "questions": [{"image_id": q.image_id, "question": q.question,
                               "question_id": q.question_id} for q in questions]}
        self._dump(self.root / f"v2_OpenEnded_mscoco_{part}_questions.json", qdoc)
        if split in ("train", "val"):
            adoc = {"info": {}, "license": {}, "data_subtype": part, "annotations": [
                {"question_type": "what is", "multiple_choice_answer": q.multiple_choice_answer or q.answers[0],
                 "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                             for k, a in enumerate(q.answers)],
                 "image_id": q.image_id, "answer_type": q.answer_type, "question_id": q.question_id}
                for q in questions]}
            self._dump(self.root / f"v2_mscoco_{part}_annotations.json", adoc)
        if images:
            for image_id in sorted({q.image_id for q in questions}):
                self.image(split, image_id)

    def image(self, split: str, image_id: int) -> Path:
        folder = self.FILES[split][1]
        path = self.root / folder / f"COCO_{folder}_{image_id:012d}.jpg"
        write_jpeg(path, image_id, size=(10 + image_id % 7, 8 + image_id % 5))
        return path

    def edit_annotations(self, split: str, edit: Callable[[dict], None]) -> None:
        path = self.root / f"v2_mscoco_{self.FILES[split][0]}_annotations.json"
        doc = json.loads(path.read_text())
        edit(doc)
        self._dump(path, doc)

    def _dump(self, path: Path, doc: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
