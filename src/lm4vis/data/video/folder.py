"""``video-folder``: users' videos in one folder per class, like torchvision's ImageFolder.

    root/train/<class>/<video>     split folders (``val/`` and ``test/`` beside ``train/``)
    root/<class>/<video>           or one tree, split 80/10/10 per class with a fixed seed

A missing ``val/`` is carved from ``train/`` (90/10 per class), as ``imagefolder`` does. A video
is any file with one of `VIDEO_EXTENSIONS`, in any container and codec FFmpeg reads; the item
order is shuffled once with a fixed seed so that ``limit`` keeps a mix of classes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..base import DatasetNotFoundError, stratified_split
from ..folders import FOLDER_SPLITS, SPLIT_SEED
from ..skips import SkipLog
from .base import ClipConfig, VideoFileDataset, info_for

NAME = "video-folder"
VIDEO_EXTENSIONS = (
    ".webm", ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv", ".3gp", ".ts",
)
#: Unlike SSv2, a generic action dataset (Kinetics, UCF101) has no left/right classes, and
#: VideoMAE flips its clips in training.
DEFAULTS: dict[str, Any] = {"flip": True}


def _subdirs(folder: str) -> list[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))


def _videos(folder: str) -> list[str]:
    return sorted(
        os.path.join(folder, f) for f in os.listdir(folder)
        if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith(".") and os.path.isfile(os.path.join(folder, f))
    )


def build_video_folder(split: str = "train", root: str | None = None, **clip: Any) -> VideoFileDataset:
    """Videos in class folders (see the module docstring for layouts and splits).

    Args:
        split: ``train``, ``val``, ``test`` or ``all`` (every video of every split folder).
        root: the tree's top folder (required).
        **clip: `ClipConfig` fields; ``train`` defaults to ``split == "train"``, ``flip`` to True.
    """
    if split not in FOLDER_SPLITS:
        raise ValueError(f"unknown split {split!r} for {NAME}; use one of {', '.join(FOLDER_SPLITS)}")
    if root is None:
        raise ValueError(f"dataset {NAME!r} needs root=<folder with one sub-folder of videos per class>")
    if not os.path.isdir(root):
        raise DatasetNotFoundError(f"{NAME}: no directory {root}; check the path")
    config = ClipConfig(**{**DEFAULTS, "train": split == "train", **clip})
    split_dirs = {s: os.path.join(root, s) for s in ("train", "val", "test") if os.path.isdir(os.path.join(root, s))}
    trees = list(split_dirs.values()) if "train" in split_dirs else [root]
    classes = sorted({c for tree in trees for c in _subdirs(tree)})
    if not classes:
        raise DatasetNotFoundError(f"{NAME}: no class folders in {root}; expected {root}/<class>/<video> "
                                   f"or {root}/train/<class>/<video>")
    label_of = {c: i for i, c in enumerate(classes)}

    def collect(tree: str) -> tuple[list[str], np.ndarray]:
        files, labels = [], []
        for cls in _subdirs(tree):
            found = _videos(os.path.join(tree, cls))
            files += found
            labels += [label_of[cls]] * len(found)
        return files, np.asarray(labels, dtype=np.int64)

    def take(files: list[str], labels: np.ndarray, keep: np.ndarray) -> tuple[list[str], np.ndarray]:
        return [files[i] for i in keep], labels[keep]

    if split == "all":
        parts = [collect(tree) for tree in trees]
        files, labels = [f for part, _ in parts for f in part], np.concatenate([lab for _, lab in parts])
    elif "train" not in split_dirs:  # one tree: a fixed stratified 80/10/10 split
        files, labels = collect(root)
        cut = dict(zip(("train", "val", "test"), stratified_split(labels, [0.8, 0.1, 0.1], SPLIT_SEED), strict=True))
        files, labels = take(files, labels, cut[split])
    elif split in split_dirs:
        files, labels = collect(split_dirs[split])
        if split == "train" and "val" not in split_dirs:  # val is carved from train: keep them apart
            files, labels = take(files, labels, stratified_split(labels, [0.9, 0.1], SPLIT_SEED)[0])
    elif split == "val":
        files, labels = collect(split_dirs["train"])
        files, labels = take(files, labels, stratified_split(labels, [0.9, 0.1], SPLIT_SEED)[1])
    else:
        raise DatasetNotFoundError(
            f"{NAME}: no {split} folder in {root}; create {os.path.join(root, split)}/<class>/"
        )
    if not files:
        raise DatasetNotFoundError(
            f"{NAME}: no videos ({', '.join(VIDEO_EXTENSIONS)}) for split {split!r} under {root}"
        )
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    files, labels = take(files, labels, order)
    return VideoFileDataset(info_for(NAME, classes, config), files, labels, config, SkipLog(NAME))


__all__ = ["build_video_folder", "VIDEO_EXTENSIONS"]
