"""Users' own images on disk: an ImageNet-style class folder tree, and images with masks.

``imagefolder``: ``root/<split>/<class>/*.png|jpg`` or, with no split folders,
``root/<class>/*`` split 80/10/10 per class with a fixed seed. A missing ``val`` folder is
carved from ``train`` the same way (90/10).

``masks-folder``: ``root/images/<name>.<ext>`` with ``root/masks/<name>.<ext>`` (mask pixel
nonzero = foreground) and optional ``root/labels.csv`` (``name,label``); the same layout may
sit under ``root/<split>/``.

Both convert to RGB (in_chans 3) unless every image is grayscale (in_chans 1). The item order is
shuffled once with a fixed seed so that ``limit`` keeps a mix of classes.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from .base import DatasetInfo, DatasetNotFoundError, ImageDataset, check_split, stratified_split
from .transforms import resize_center_crop

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
FOLDER_SPLITS = ("train", "val", "test", "all")  # "all": every image, for evaluation-only sets
SPLIT_SEED = 20240101
DEFAULT_IMAGE_SIZE = 224


def list_images(folder: str) -> list[str]:
    """Image files directly in ``folder``, sorted by name.

    Args:
        folder: directory to list.
    """
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def _subdirs(folder: str) -> list[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))


def _open(path: str) -> Image.Image:
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{path}: not a readable image ({e}); remove or replace the file") from e


def detect_in_chans(paths: Sequence[str]) -> int:
    """1 if every image is grayscale, else 3. Reads headers only and stops at the first colour
    image, so a colour dataset costs one header read.

    Args:
        paths: image files.
    """
    for path in paths:
        with _open(path) as im:
            if im.mode not in GRAY_MODES:
                return 3
    return 1


def read_image(path: str, in_chans: int) -> Tensor:
    """An image file as uint8 [in_chans,H,W].

    Args:
        path: image file.
        in_chans: 1 (grayscale) or 3 (RGB).
    """
    with _open(path) as im:
        array = np.array(im.convert("L" if in_chans == 1 else "RGB"))  # a writable copy
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.ascontiguousarray(array))


def read_mask(path: str) -> Tensor:
    """A mask file as bool [H,W]: any nonzero pixel (in any channel) is foreground.

    Args:
        path: mask image file.
    """
    with _open(path) as im:
        array = np.array(im if im.mode in ("1", "L", "I", "I;16", "F") else im.convert("RGB"))
    return torch.from_numpy(array.reshape(array.shape[0], array.shape[1], -1).any(-1))


def _fixed_order(items: list[Any]) -> list[Any]:
    return [items[i] for i in np.random.default_rng(SPLIT_SEED).permutation(len(items))]


class FileDataset(ImageDataset):
    """Items read from image files, resized (short side) and centre-cropped to ``image_size``."""

    def __init__(
        self,
        info: DatasetInfo,
        files: list[str],
        targets: np.ndarray,
        masks: list[str] | None,
        *,
        with_masks: bool,
        transform: Callable[[Tensor], Any] | None,
    ) -> None:
        super().__init__(info, np.arange(len(files)), targets, with_masks=with_masks, transform=transform)
        self.files = files
        self.mask_files = masks

    def _load(self, source_index: int) -> tuple[Tensor, Tensor | None]:
        size = self.info.image_size
        image = read_image(self.files[source_index], self.info.in_chans)
        mask = None
        if self.with_masks and self.mask_files is not None:
            mask = read_mask(self.mask_files[source_index])
            if mask.shape != image.shape[-2:]:
                raise ValueError(
                    f"{self.mask_files[source_index]}: mask is {tuple(mask.shape)} but its image "
                    f"{self.files[source_index]} is {tuple(image.shape[-2:])}; masks must match their images"
                )
            mask = resize_center_crop(mask[None].to(torch.uint8), size, nearest=True)[0].bool()
        # The base class then finds the size already right and leaves the item alone.
        return resize_center_crop(image, size), mask


def build_imagefolder(
    split: str = "train",
    root: str | None = None,
    *,
    image_size: int | None = None,
    with_masks: bool = False,
    transform: Callable[[Tensor], Any] | None = None,
    in_chans: int | None = None,
) -> FileDataset:
    """An ImageNet-style folder tree (see the module docstring for layouts and splits).

    Args:
        split: ``train``, ``val``, ``test`` or ``all``.
        root: the tree's top directory (required).
        image_size: side of the square items (short-side resize + centre crop); default 224.
        with_masks: must be False (no masks in this layout; use masks-folder).
        transform: applied to the image tensor only.
        in_chans: force 1 or 3 channels; None detects (1 only if every image is grayscale).
    """
    check_split(split, FOLDER_SPLITS)
    if root is None:
        raise ValueError("dataset 'imagefolder' needs root=<directory with one folder per class>")
    if not os.path.isdir(root):
        raise DatasetNotFoundError(f"imagefolder: no directory {root}; check the path")
    split_dirs = {s: os.path.join(root, s) for s in ("train", "val", "test")}
    split_dirs = {s: d for s, d in split_dirs.items() if os.path.isdir(d)}
    has_splits = "train" in split_dirs
    trees = list(split_dirs.values()) if has_splits else [root]
    classes = sorted({c for tree in trees for c in _subdirs(tree)})
    if not classes:
        raise DatasetNotFoundError(
            f"imagefolder: no class folders in {root}; expected {root}/<class>/*.png or "
            f"{root}/train/<class>/*.png"
        )
    label_of = {c: i for i, c in enumerate(classes)}

    def collect(tree: str) -> tuple[list[str], np.ndarray]:
        files, labels = [], []
        for cls in _subdirs(tree):
            found = list_images(os.path.join(tree, cls))
            files += found
            labels += [label_of[cls]] * len(found)
        return files, np.asarray(labels, dtype=np.int64)

    if split == "all":
        collected = [collect(tree) for tree in trees]
        files = [f for part, _ in collected for f in part]
        labels = np.concatenate([lab for _, lab in collected])
    elif not has_splits:  # flat class folders: a fixed stratified 80/10/10 split
        files, labels = collect(root)
        cut = dict(zip(("train", "val", "test"), stratified_split(labels, [0.8, 0.1, 0.1], SPLIT_SEED)))
        files, labels = [files[i] for i in cut[split]], labels[cut[split]]
    elif split in split_dirs:
        files, labels = collect(split_dirs[split])
        if split == "train" and "val" not in split_dirs:  # val is carved from train: keep them apart
            keep = stratified_split(labels, [0.9, 0.1], SPLIT_SEED)[0]
            files, labels = [files[i] for i in keep], labels[keep]
    elif split == "val":
        files, labels = collect(split_dirs["train"])
        keep = stratified_split(labels, [0.9, 0.1], SPLIT_SEED)[1]
        files, labels = [files[i] for i in keep], labels[keep]
    else:
        raise DatasetNotFoundError(f"imagefolder: no {split} folder in {root}; create {os.path.join(root, split)}/<class>/")
    if not files:
        raise DatasetNotFoundError(
            f"imagefolder: no images ({', '.join(IMAGE_EXTENSIONS)}) for split {split!r} under {root}"
        )
    order = _fixed_order(list(range(len(files))))
    files, labels = [files[i] for i in order], labels[order]
    info = DatasetInfo(
        name="imagefolder",
        num_classes=len(classes),
        in_chans=in_chans or detect_in_chans(files),
        image_size=image_size or DEFAULT_IMAGE_SIZE,
        class_names=tuple(classes),
        has_masks=False,
    )
    return FileDataset(info, files, labels, None, with_masks=with_masks, transform=transform)


def _read_labels(path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, newline="") as f:
        for row_number, row in enumerate(csv.reader(f), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise ValueError(f"{path}:{row_number}: expected 'name,label', got {row}")
            name, label = row[0].strip(), row[1].strip()
            if row_number == 1 and name.lower() in ("name", "image", "file", "filename"):
                continue  # header
            out[os.path.splitext(name)[0]] = label
    return out


def build_masks_folder(
    split: str = "all",
    root: str | None = None,
    *,
    image_size: int | None = None,
    with_masks: bool = False,
    transform: Callable[[Tensor], Any] | None = None,
    in_chans: int | None = None,
) -> FileDataset:
    """Users' images with foreground masks (see the module docstring for the layout).

    With no ``root/<split>/`` folders, ``train``/``val``/``test`` are a fixed 80/10/10 split of
    the images and ``all`` is every image.

    Args:
        split: ``train``, ``val``, ``test`` or ``all``.
        root: directory holding ``images/`` and ``masks/`` (required).
        image_size: side of the square items (short-side resize + centre crop); None keeps the
            native size when all images share one square size.
        with_masks: return the mask as a third element.
        transform: applied to the image tensor only.
        in_chans: force 1 or 3 channels; None detects.
    """
    check_split(split, FOLDER_SPLITS)
    if root is None:
        raise ValueError("dataset 'masks-folder' needs root=<directory with images/ and masks/>")
    top = os.path.join(root, split) if split != "all" and os.path.isdir(os.path.join(root, split, "images")) else root
    image_dir, mask_dir = os.path.join(top, "images"), os.path.join(top, "masks")
    if not os.path.isdir(image_dir):
        raise DatasetNotFoundError(f"masks-folder: no directory {image_dir}; expected {root}/images/<name>.png")
    files = list_images(image_dir)
    if not files:
        raise DatasetNotFoundError(f"masks-folder: no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    masks_by_stem = {
        os.path.splitext(os.path.basename(m))[0]: m for m in (list_images(mask_dir) if os.path.isdir(mask_dir) else [])
    }
    missing = [s for s in stems if s not in masks_by_stem]
    if missing:
        raise FileNotFoundError(
            f"masks-folder: {len(missing)} image(s) have no mask, e.g. {missing[0]}: expected "
            f"{os.path.join(mask_dir, missing[0])}.png (nonzero = foreground)"
        )
    masks = [masks_by_stem[s] for s in stems]

    labels_csv = os.path.join(top, "labels.csv")
    if not os.path.isfile(labels_csv):
        labels_csv = os.path.join(root, "labels.csv")
    if os.path.isfile(labels_csv):
        raw = _read_labels(labels_csv)
        unlabelled = [s for s in stems if s not in raw]
        if unlabelled:
            raise ValueError(f"{labels_csv}: no label for {len(unlabelled)} image(s), e.g. {unlabelled[0]}; add a row '{unlabelled[0]},<label>'")
        values = sorted(set(raw.values()))
        if all(v.isdigit() for v in values):
            class_names = [f"class_{i}" for i in range(max(int(v) for v in values) + 1)]
            labels = [int(raw[s]) for s in stems]
        else:  # class names in the csv: label ids by sorted name
            class_names = values
            labels = [values.index(raw[s]) for s in stems]
    else:
        class_names, labels = ["class_0"], [0] * len(stems)

    keep = list(range(len(files)))
    if top == root and split != "all":
        cut = dict(zip(("train", "val", "test"), stratified_split(np.asarray(labels), [0.8, 0.1, 0.1], SPLIT_SEED)))
        keep = sorted(cut[split].tolist())
        if not keep:
            raise DatasetNotFoundError(
                f"masks-folder: split {split!r} of {root} is empty ({len(files)} images split 80/10/10); "
                "use split='all' to take every image"
            )
    keep = _fixed_order(keep)
    files, masks, labels = [files[i] for i in keep], [masks[i] for i in keep], [labels[i] for i in keep]

    if image_size is None:
        sizes = set()
        for path in files:
            with _open(path) as im:
                sizes.add(im.size)
        if len(sizes) != 1 or len(set(next(iter(sizes)))) != 1:
            raise ValueError(
                f"masks-folder: images in {image_dir} are not all one square size ({sorted(sizes)[:3]}...); "
                "pass image_size=N to resize and centre-crop them"
            )
        image_size = next(iter(sizes))[0]
    info = DatasetInfo(
        name="masks-folder",
        num_classes=len(class_names),
        in_chans=in_chans or detect_in_chans(files),
        image_size=image_size,
        class_names=tuple(class_names),
        has_masks=True,
    )
    return FileDataset(info, files, np.asarray(labels), masks, with_masks=with_masks, transform=transform)
