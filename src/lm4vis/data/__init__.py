"""Image datasets for lm4vis: Fashion-MNIST, Animal-MNIST, their cluttered variants with exact
foreground masks, and users' own folders.

    from lm4vis.data import build_dataset
    ds = build_dataset("cluttered-fashion-mnist", split="val", with_masks=True, limit=256)
    image, label, mask = ds[0]      # uint8 [1,64,64], int, bool [64,64]
    ds.info                         # DatasetInfo(name, num_classes, in_chans, image_size, ...)
"""

from .base import DatasetInfo, DatasetNotFoundError, ImageDataset, class_balanced_subset, stratified_split
from .cluttered import ClutteredDataset, best_threshold_iou, make_cluttered
from .idx import IDXError, read_idx, write_idx
from .registry import DATASETS, DatasetSpec, build_dataset
from .safe_pickle import UnsafePickleError, load_array

__all__ = [
    "DATASETS", "DatasetInfo", "DatasetNotFoundError", "DatasetSpec", "ImageDataset",
    "ClutteredDataset", "IDXError", "UnsafePickleError",
    "build_dataset", "class_balanced_subset", "stratified_split", "make_cluttered",
    "best_threshold_iou", "read_idx", "write_idx", "load_array",
]
