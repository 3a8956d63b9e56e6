"""Data for lm4vis: the registered datasets of every host, and the pieces they share.

Image datasets (Fashion-MNIST, Animal-MNIST, their cluttered variants with exact foreground
masks, users' own folders)::

    from lm4vis.data import build_dataset
    ds = build_dataset("cluttered-fashion-mnist", split="val", with_masks=True, limit=256)
    image, label, mask = ds[0]      # uint8 [1,64,64], int, bool [64,64]
    ds.info                         # DatasetInfo(name, num_classes, in_chans, image_size, ...)

The engine reaches every dataset through `lm4vis.registry` (``data.name`` in a config).
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "DatasetInfo": ".base", "DatasetNotFoundError": ".base", "ImageDataset": ".base",
    "class_balanced_subset": ".base", "stratified_split": ".base",
    "ClutteredDataset": ".cluttered", "best_threshold_iou": ".cluttered", "make_cluttered": ".cluttered",
    "IDXError": ".idx", "read_idx": ".idx", "write_idx": ".idx",
    "DATASETS": ".registry", "DatasetSpec": ".registry", "build_dataset": ".registry",
    "UnsafePickleError": ".safe_pickle", "load_array": ".safe_pickle",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
