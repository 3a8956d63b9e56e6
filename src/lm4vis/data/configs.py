"""Typed data configs and the registrations of the built-in datasets (light: no torch).

`DataConfig` holds what every dataset shares (where, how many, batch sizes, order); a kind of
data extends it with its own keys (`ImageDataConfig`: size, normalisation, augmentation). A
registered dataset names its config class and the builder of its *data source*: an object
built from the run config that resolves data-derived values (normalisation statistics),
describes the data (``info``) and builds each split (see `lm4vis.train.datamodule.DataSource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import register_dataset

VAL_SPLITS = ("val", "test")
CROPS = ("none", "random-resized", "padded")


def _positive(section: Any, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value is not None and value <= 0:
            raise ValueError(f"data.{name}={value} must be positive")


@dataclass
class DataConfig:
    """What every dataset shares.

    Args:
        name: a registered dataset (see ``lm4vis.registry.DATASETS.names()``).
        root: folder of the dataset files (needed by users' data: imagefolder, idx, ...).
        batch_size: samples per device per training step.
        eval_batch_size: samples per device per validation step; None takes ``batch_size``.
        num_workers: DataLoader worker processes.
        limit_train: keep only the first N training samples (quick runs).
        limit_val: keep only the first N validation samples.
        val_split: ``val`` (carved from train where the source has none) or ``test``.
        data_seed: seed of generated data. Kept apart from the run seed so every seed and every
            variant is measured on the same samples.
    """

    name: str = "fashion-mnist"
    root: str | None = None
    batch_size: int = 64
    eval_batch_size: int | None = None
    num_workers: int = 0
    limit_train: int | None = None
    limit_val: int | None = None
    val_split: str = "val"
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size is None or self.batch_size <= 0:
            raise ValueError(f"data.batch_size={self.batch_size} must be positive")
        if self.eval_batch_size is None:
            self.eval_batch_size = self.batch_size
        _positive(self, "eval_batch_size", "limit_train", "limit_val")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers={self.num_workers} must be >= 0")
        if self.val_split not in VAL_SPLITS:
            raise ValueError(f"data.val_split={self.val_split!r} is unknown; choose one of {', '.join(VAL_SPLITS)}")

    def check_run(self, run: Any) -> None:
        """Cross-section checks against the whole run config (override where needed)."""


@dataclass
class ImageDataConfig(DataConfig):
    """Images: size, normalisation and augmentation.

    Args:
        image_size: side the images are resized to; None takes ``host.img_size``.
        mean, std: per-channel normalisation (0..1 scale); None estimates them from up to
            1000 training images.
        crop: training crop: ``none``, ``random-resized`` (DeiT, scale 0.08-1) or ``padded``
            (pad by ``crop_padding`` and crop back, the small-image recipe).
        crop_padding: padding of the ``padded`` crop, in pixels.
        hflip: probability of a horizontal flip in training.
        randaugment: timm RandAugment string such as ``rand-m9-mstd0.5-inc1``, or None.
        random_erasing: probability of timm's RandomErasing per image.
    """

    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    crop: str = "none"
    crop_padding: int = 4
    hflip: float = 0.0
    randaugment: str | None = None
    random_erasing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "image_size")
        if self.crop not in CROPS:
            raise ValueError(f"data.crop={self.crop!r} is unknown; choose one of {', '.join(CROPS)}")
        for key in ("hflip", "random_erasing"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"data.{key}={getattr(self, key)} must be in [0, 1]")
        if (self.mean is None) != (self.std is None):
            raise ValueError("data.mean and data.std must be given together (or both left None)")
        if self.mean is not None and len(self.mean) != len(self.std):
            raise ValueError(
                f"data.mean has {len(self.mean)} values but data.std has {len(self.std)}; "
                "give one per image channel"
            )
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"data.std={self.std} must be positive")
        if self.randaugment is not None and not self.randaugment.startswith("rand-"):
            raise ValueError(
                f"data.randaugment={self.randaugment!r} is not a timm RandAugment string; "
                "use e.g. 'rand-m9-mstd0.5-inc1' or null"
            )

    def check_run(self, run: Any) -> None:
        img_size = getattr(run.host, "img_size", None)
        if self.image_size is None:
            self.image_size = img_size
        elif img_size is not None and img_size != self.image_size:
            raise ValueError(
                f"data.image_size={self.image_size} but host.img_size={img_size}; "
                "set them to the same size (or leave data.image_size null)"
            )


#: The image datasets of `lm4vis.data.registry`, served through one image data source.
IMAGE_DATASETS: dict[str, str] = {
    "fashion-mnist": "Fashion-MNIST, 28x28 gray, 10 classes (55k/5k/10k)",
    "animal-mnist": "Animal-MNIST silhouettes, 28x28 gray, 10 classes (8k/1k/1k)",
    "cluttered-fashion-mnist": "Fashion-MNIST objects in clutter, 64x64, exact masks",
    "cluttered-animal-mnist": "Animal-MNIST objects in clutter, 64x64, exact masks",
    "imagefolder": "root/[split/]<class>/*.png|jpg (ImageNet layout)",
    "idx": "a directory of MNIST-format IDX files",
    "masks-folder": "root/images/*.png + root/masks/*.png [+ labels.csv]",
}
for _name, _description in IMAGE_DATASETS.items():
    register_dataset(_name, config=ImageDataConfig, builder="lm4vis.data.image_source:ImageSource",
                     description=_description, kind="images")

__all__ = ["DataConfig", "ImageDataConfig", "IMAGE_DATASETS"]
