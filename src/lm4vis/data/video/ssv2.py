"""Something-Something-v2 as its release is downloaded, or through VideoMAE's list files.

The release (174 classes, 168,913 train / 24,777 validation / 27,157 test videos)::

    root/
        20bn-something-something-v2/<id>.webm          all videos, VP9 at 12 fps, 240 px high
        labels/labels.json                             {"Putting something on a surface": "0", ...}
        labels/train.json, validation.json, test.json
        labels/test-answers.csv                        <id>;<class> (released after the challenge)

``train.json`` and ``validation.json`` are lists of ``{"id", "label", "template",
"placeholders"}``; ``label`` is the caption with the objects filled in ("Putting a pen on a
surface"), and the class is the ``template`` with its square brackets removed ("Putting
[something] on a surface" -> "Putting something on a surface", "[Something] falling like a
rock" -> "Something falling like a rock"): a key of ``labels.json``, whose values are class
ids written as strings. ``test.json`` holds ids only; the classes of the test videos are in
``test-answers.csv``, spelled like the keys of ``labels.json``. The older 20BN download names
the files ``something-something-v2-labels.json``, ``-train.json``, ... and both spellings are
found, in ``root``, ``root/labels`` or ``root/annotations``.

VideoMAE's lists (``annotations="csv"``): ``train.csv``, ``val.csv`` and ``test.csv`` (the same
videos as ``val.csv``), one ``<path> <class id>`` per line, no header. VideoMAE's paths name
``.mp4`` files it converted from the release; a path that does not exist is looked up by its
file name in the video folder, then as ``<stem>.webm``, so the lists work on the release as
downloaded.

Nothing is written anywhere: the release is read in place.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import DatasetNotFoundError
from ..skips import BadInputError, SkipLog
from .base import ClipConfig, VideoFileDataset, info_for

NAME = "ssv2"
SPLITS = ("train", "val", "test")
VIDEO_FOLDER = "20bn-something-something-v2"
#: Each annotation file under its Qualcomm name and its older 20BN name.
JSON_FILES = {
    "labels": ("labels.json", "something-something-v2-labels.json"),
    "train": ("train.json", "something-something-v2-train.json"),
    "val": ("validation.json", "something-something-v2-validation.json"),
    "test": ("test.json", "something-something-v2-test.json"),
}
TEST_ANSWERS = "test-answers.csv"
CSV_FILES = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
ANNOTATION_DIRS = ("", "labels", "annotations")
ANNOTATIONS = ("auto", "json", "csv")
#: VideoMAE's SSv2 test views (its ``test_num_segment`` 2, ``test_num_crop`` 3), the default of
#: split "test". Its training recipe is `ClipConfig`'s default: 16 frames, 224 px, and no flip,
#: since left and right are classes here ("Pushing something from left to right").
TEST_VIEWS: dict[str, Any] = {"num_clips": 2, "num_crops": 3}
MAX_NAMED = 5


def class_of_template(template: str) -> str:
    """The class a template belongs to: brackets removed, whitespace runs made single.

    Args:
        template: e.g. ``"Putting [something] on a surface"``.
    """
    return " ".join(template.replace("[", "").replace("]", "").split())


def read_labels(path: str) -> tuple[dict[str, int], tuple[str, ...]]:
    """``labels.json``: {class text: id} and the class names in id order.

    Args:
        path: the file.

    Raises:
        ValueError: ids that are not integers, repeated, or not ``0..K-1``.
    """
    raw = _read_json(path)
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: expected a JSON object {{class text: class id}}, got {type(raw).__name__}")
    try:
        ids = {class_of_template(text): int(value) for text, value in raw.items()}
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: class ids must be integers (written as strings in the release): {e}") from e
    if sorted(ids.values()) != list(range(len(raw))):
        raise ValueError(
            f"{path}: class ids must be 0..{len(raw) - 1}, each once; got {sorted(set(ids.values()))[:8]}..."
        )
    names = tuple(sorted(ids, key=ids.__getitem__))
    return ids, names


def build_ssv2(
    split: str = "train",
    root: str | None = None,
    *,
    annotations: str = "auto",
    video_dir: str | None = None,
    lists_dir: str | None = None,
    **clip: Any,
) -> VideoFileDataset:
    """Something-Something-v2 (see the module docstring for the layouts).

    Args:
        split: ``train``, ``val`` (validation.json / val.csv) or ``test`` (test.json with
            test-answers.csv / test.csv).
        root: the release's top folder (required).
        annotations: ``json`` (the release's files), ``csv`` (VideoMAE's lists) or ``auto``:
            the JSON files when found, else the lists.
        video_dir: the folder of the videos; default ``root/20bn-something-something-v2``,
            else ``root``.
        lists_dir: the folder of VideoMAE's lists; default ``root``.
        **clip: `ClipConfig` fields; ``train`` defaults to ``split == "train"``, the views of
            split ``test`` to VideoMAE's 2 clips x 3 crops, the rest to VideoMAE's SSv2 recipe
            (16 frames, 224 px, no flip).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {NAME}; use one of {', '.join(SPLITS)}")
    if annotations not in ANNOTATIONS:
        raise ValueError(f"annotations={annotations!r} is unknown; choose {', '.join(ANNOTATIONS)}")
    if root is None:
        raise ValueError(f"dataset {NAME!r} needs root=<folder of the release> (holding {VIDEO_FOLDER}/ and labels/)")
    if not os.path.isdir(root):
        raise DatasetNotFoundError(f"{NAME}: no directory {root}; check the path")
    config = ClipConfig(**{"train": split == "train", **(TEST_VIEWS if split == "test" else {}), **clip})
    release_videos = os.path.join(root, VIDEO_FOLDER)
    videos = video_dir or (release_videos if os.path.isdir(release_videos) else root)
    if not os.path.isdir(videos):
        raise DatasetNotFoundError(f"{NAME}: no video folder {videos}; point video_dir= at the folder of <id>.webm")
    labels_file = _find(root, JSON_FILES["labels"])
    lists = lists_dir or root
    if annotations == "json" or (annotations == "auto" and _find(root, JSON_FILES[split]) is not None):
        if labels_file is None:
            raise DatasetNotFoundError(
                f"{NAME}: no {' or '.join(JSON_FILES['labels'])} in {root} or its labels/ folder; "
                "unpack the release's labels archive there"
            )
        class_ids, class_names = read_labels(labels_file)
        ids, targets, source = _read_release(root, split, class_ids, labels_file)
        listed = [f"{video_id}.webm" for video_id in ids]
    else:
        listed, targets, source = _read_videomae_list(os.path.join(lists, CSV_FILES[split]))
        class_names = read_labels(labels_file)[1] if labels_file else _class_ids(lists)
        if targets.size and targets.max() >= len(class_names):
            raise ValueError(f"{source}: class id {int(targets.max())} but {len(class_names)} classes "
                             f"({labels_file or 'counted over the lists'}); the list and labels.json disagree")
    skips = SkipLog(NAME)
    files, kept = _locate(listed, lists, videos, source, config.on_bad_file, skips)
    if not files:
        raise DatasetNotFoundError(f"{NAME}: none of the {len(listed)} videos of {source} is in {videos}")
    return VideoFileDataset(info_for(NAME, class_names, config), files, targets[kept], config, skips)


def _read_release(
    root: str, split: str, class_ids: dict[str, int], labels_file: str
) -> tuple[list[str], np.ndarray, str]:
    """Video ids and class ids of one split of the release, every template checked."""
    split_file = _find(root, JSON_FILES[split])
    if split_file is None:
        raise DatasetNotFoundError(f"{NAME}: no {' or '.join(JSON_FILES[split])} beside {labels_file}")
    entries = _read_json(split_file)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e for e in entries):
        raise ValueError(f"{split_file}: expected a JSON list of objects with an 'id'")
    ids = [str(e["id"]) for e in entries]
    if split == "test":
        answers_file = os.path.join(os.path.dirname(split_file), TEST_ANSWERS)
        classes = _read_test_answers(answers_file, ids)
    else:
        missing = [e["id"] for e in entries if "template" not in e]
        if missing:
            raise ValueError(f"{split_file}: {len(missing)} entries have no 'template' (e.g. id {missing[0]}); "
                             "is this the test list? use split='test'")
        classes = [class_of_template(e["template"]) for e in entries]
    unmatched = [(video_id, text) for video_id, text in zip(ids, classes, strict=True) if text not in class_ids]
    if unmatched:
        named = "; ".join(f"{text!r} (id {video_id})" for video_id, text in unmatched[:MAX_NAMED])
        raise BadInputError(
            f"{NAME}: {len(unmatched)} of {len(ids)} videos in {split_file} have a class that {labels_file} "
            f"does not list: {named}; take both files from the same release"
        )
    return ids, np.array([class_ids[text] for text in classes], dtype=np.int64), split_file


def _read_test_answers(path: str, ids: Sequence[str]) -> list[str]:
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"{NAME}: the test videos' classes are in {path}, which is missing; "
                                   "it is part of the labels archive (or evaluate on split='val', as VideoMAE does)")
    answers: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row_number, row in enumerate(csv.reader(f, delimiter=";"), 1):
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"{path}:{row_number}: expected '<id>;<class>', got {';'.join(row)!r}")
            answers[row[0].strip()] = class_of_template(row[1])
    unanswered = [i for i in ids if i not in answers]
    if unanswered:
        raise BadInputError(
            f"{NAME}: {len(unanswered)} test videos have no class in {path}, e.g. id "
            f"{', '.join(unanswered[:MAX_NAMED])}; take test.json and {TEST_ANSWERS} from the same release"
        )
    return [answers[i] for i in ids]


def _read_videomae_list(path: str) -> tuple[list[str], np.ndarray, str]:
    """Listed paths and class ids of one of VideoMAE's ``<path> <class id>`` lists."""
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"{NAME}: neither the release's JSON files nor VideoMAE's list {path} was found; "
            "pass root= the release folder, or lists_dir= the folder of train.csv/val.csv"
        )
    listed, targets = [], []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            # Split at the last run of whitespace: the label is last, a path may hold spaces.
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{line_number}: expected '<video path> <class id>', got {line.strip()!r}")
            if int(parts[1]) < 0:
                raise ValueError(f"{path}:{line_number}: negative class id {parts[1]}")
            listed.append(parts[0])
            targets.append(int(parts[1]))
    return listed, np.array(targets, dtype=np.int64), path


def _class_ids(lists_dir: str) -> tuple[str, ...]:
    """Class names ``class_<i>`` for ``0..max`` over every list, so that all splits agree."""
    top = -1
    for name in CSV_FILES.values():
        path = os.path.join(lists_dir, name)
        if os.path.isfile(path):
            top = max(top, int(_read_videomae_list(path)[1].max(initial=-1)))
    return tuple(f"class_{i}" for i in range(top + 1))


def _locate(
    listed: Sequence[str], lists_dir: str, video_dir: str, source: str, policy: str, skips: SkipLog
) -> tuple[list[str], np.ndarray]:
    """Paths of the listed videos that exist, and their positions in the list; the others are
    counted under ``missing-video`` (``skip``) or raise (``fail``)."""
    # One listing of the folder instead of a stat per video: 220k stats are slow on network disks.
    available = set(os.listdir(video_dir))
    files, kept, missing = [], [], []
    for position, path in enumerate(listed):
        found = _resolve(path, lists_dir, video_dir, available)
        if found is None:
            missing.append(path)
        else:
            files.append(found)
            kept.append(position)
    if missing and policy == "fail":
        raise BadInputError(
            f"{NAME}: {len(missing)} of {len(listed)} videos of {source} are not in {video_dir}, e.g. "
            f"{', '.join(missing[:MAX_NAMED])}; unpack every archive part there, or pass on_bad_file='skip'"
        )
    for path in missing:
        skips.skip("missing-video", f"{path} (listed in {source}) is not in {video_dir}")
    return files, np.asarray(kept, dtype=np.int64)


def _resolve(path: str, lists_dir: str, video_dir: str, available: set[str]) -> str | None:
    # The path as listed (absolute, or relative to the list's folder); else its file name in
    # the video folder; else <stem>.webm, the release's name for VideoMAE's converted .mp4.
    if os.path.isabs(path) or os.sep in path:
        direct = path if os.path.isabs(path) else os.path.join(lists_dir, path)
        if os.path.isfile(direct):
            return direct
    name = os.path.basename(path)
    for candidate in (name, os.path.splitext(name)[0] + ".webm"):
        if candidate in available:
            return os.path.join(video_dir, candidate)
    return None


def _find(root: str, names: Sequence[str]) -> str | None:
    for folder in ANNOTATION_DIRS:
        for name in names:
            path = os.path.join(root, folder, name)
            if os.path.isfile(path):
                return path
    return None


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); download the file again") from e


__all__ = ["build_ssv2", "class_of_template", "read_labels", "VIDEO_FOLDER", "JSON_FILES", "CSV_FILES"]
