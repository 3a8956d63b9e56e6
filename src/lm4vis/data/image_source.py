"""The image data source: `lm4vis.data` image datasets, normalised and augmented.

One source serves every registered image dataset (``data.name: fashion-mnist``, ...). It
resolves what the config leaves to the data (normalisation statistics, estimated from the
training images), describes the data for the host (``info``: classes, channels, size), and
builds each split with its transform. Each image's augmentation is drawn from
``(seed, epoch, item index)`` only, so it does not depend on worker count, on the model's own
use of the random generators, or on resuming.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..train.config import ConfigError, RunConfig
from ..train.seeding import seed_all, seed_for

#: How many training images the normalisation statistics are estimated from.
STATS_IMAGES = 1000


class TransformedDataset(Dataset):
    """A dataset whose images go through ``transform``, each seeded from (seed, epoch, index).

    Args:
        base: an lm4vis dataset returning ``(image uint8 [C,H,W], label, ...)``.
        transform: image -> float tensor.
        seed: the run seed; None means the transform is deterministic (no seeding).
    """

    def __init__(self, base: Dataset, transform: Callable[[Tensor], Tensor], seed: int | None) -> None:
        self.base, self.transform, self.seed = base, transform, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        image, *rest = self.base[index]
        if self.seed is not None:
            # The generators' state before does not matter: the training step reseeds them.
            seed_all(seed_for(self.seed, epoch, index))
        return (self.transform(image), *rest)


class ImageTransform:
    """uint8 [C,H,W] -> normalised float, with the configured training augmentations.

    Args:
        mean, std: per-channel statistics on the 0..1 scale.
        image_size: side of the output.
        train: apply the augmentations below.
        crop: ``none``, ``random-resized`` or ``padded``.
        crop_padding: padding of the ``padded`` crop.
        hflip: flip probability.
        randaugment: timm RandAugment string or None.
        random_erasing: timm RandomErasing probability.
        out_chans: repeat a grayscale image to this many channels (grey data, RGB host).
    """

    def __init__(
        self,
        mean: list[float],
        std: list[float],
        image_size: int,
        train: bool = False,
        crop: str = "none",
        crop_padding: int = 4,
        hflip: float = 0.0,
        randaugment: str | None = None,
        random_erasing: float = 0.0,
        out_chans: int | None = None,
    ) -> None:
        from torchvision.transforms import v2

        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.out_chans = out_chans
        ops: list[Callable] = []
        if train and crop == "random-resized":
            ops.append(v2.RandomResizedCrop(image_size, antialias=True))
        elif train and crop == "padded":
            ops.append(v2.RandomCrop(image_size, padding=crop_padding))
        if train and hflip > 0:
            ops.append(v2.RandomHorizontalFlip(hflip))
        if train and randaugment:
            ops.append(_RandAugment(randaugment, image_size, mean))
        self.uint8_ops = ops
        self.erase = None
        if train and random_erasing > 0:
            from timm.data.random_erasing import RandomErasing

            self.erase = RandomErasing(random_erasing, mode="pixel", device="cpu")

    @property
    def random(self) -> bool:
        return bool(self.uint8_ops) or self.erase is not None

    def __call__(self, image: Tensor) -> Tensor:
        for op in self.uint8_ops:
            image = op(image)
        x = image.float().div_(255.0)
        if self.out_chans is not None and x.shape[0] != self.out_chans:
            x = x.expand(self.out_chans, -1, -1)
        x = (x - self.mean) / self.std
        if self.erase is not None:
            x = self.erase(x)
        return x


class _RandAugment:
    """timm's RandAugment (which works on PIL images) applied to a uint8 tensor."""

    def __init__(self, config: str, image_size: int, mean: list[float]) -> None:
        from timm.data.auto_augment import rand_augment_transform

        fill = tuple(round(255 * m) for m in mean)
        hparams = dict(translate_const=int(image_size * 0.45),
                       img_mean=fill[0] if len(fill) == 1 else fill)  # PIL "L" images take one value
        self.op = rand_augment_transform(config, hparams)
        for op in getattr(self.op, "ops", []):
            if op.aug_fn.__name__ == "posterize":
                op.aug_fn = _posterize_at_least_one_bit


    def __call__(self, image: Tensor) -> Tensor:
        from torchvision.transforms.v2 import functional as TF

        pil = TF.to_pil_image(image)
        return TF.pil_to_tensor(self.op(pil))


def _posterize_at_least_one_bit(img: Any, bits_to_keep: int, **kwargs: Any) -> Any:
    # timm's "increasing" posterize reaches 0 bits at full magnitude; Pillow >= 11 rejects 0.
    from PIL import ImageOps

    bits = max(1, int(bits_to_keep))
    return img if bits >= 8 else ImageOps.posterize(img, bits)


def image_stats(dataset: Dataset, max_images: int = STATS_IMAGES) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 scale) of the first ``max_images`` images.

    Args:
        dataset: items ``(image uint8 [C,H,W], ...)``.
        max_images: how many images to read.
    """
    n = min(len(dataset), max_images)
    if n == 0:
        raise ConfigError("cannot estimate data.mean/std from an empty training set")
    total = total_sq = None
    pixels = 0
    for i in range(n):
        x = dataset[i][0].double().div(255.0).flatten(1)
        s, sq = x.sum(1), x.pow(2).sum(1)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        pixels += x.shape[1]
    mean = total / pixels
    std = (total_sq / pixels - mean.pow(2)).clamp_min(1e-12).sqrt()
    return [round(float(m), 6) for m in mean], [round(max(float(s), 1e-3), 6) for s in std]


class ImageSource:
    """The data source of an image dataset (see `lm4vis.train.datamodule.DataSource`).

    Args:
        cfg: the run config (``data``: an `ImageDataConfig`).
        base: ``build_dataset``-compatible callable that gives the raw split (uint8 images);
            `lm4vis.data.build_dataset` when None. A user registers an image dataset of their
            own by passing theirs.
    """

    #: Items are looked up by (index, epoch), so each augmentation is seeded by both.
    accepts_epoch = True

    def __init__(self, cfg: RunConfig, base: Callable[..., Any] | None = None) -> None:
        if base is None:
            from .registry import build_dataset as base
        self.cfg, self.base = cfg, base
        self._train: Any = None

    def raw(self, split: str, limit: int | None) -> Dataset:
        """A split as uint8 images, before the transform."""
        d = self.cfg.data
        ds = self.base(d.name, split=split, root=d.root, image_size=d.image_size, seed=d.data_seed,
                       limit=limit)
        if len(ds) == 0:
            where = f" at {d.root}" if d.root else ""
            raise FileNotFoundError(
                f"the {split} split of dataset {d.name!r}{where} holds no images; check data.root "
                "(an image folder needs one sub-folder per class with images inside)"
            )
        return ds

    def _train_raw(self) -> Dataset:
        if self._train is None:
            self._train = self.raw("train", self.cfg.data.limit_train)
        return self._train

    @property
    def info(self) -> Any:
        """The dataset's `DatasetInfo` (classes, channels, size, masks)."""
        return self._train_raw().info

    def resolve(self) -> RunConfig:
        """The config with ``data.mean``/``data.std`` filled from the training images when
        unset; deterministic, so a resumed run's config compares equal."""
        if self.cfg.data.mean is not None:
            return self.cfg
        mean, std = image_stats(self._train_raw())
        return self.cfg.replace({"data.mean": mean, "data.std": std})

    def analysis_batches(self, split: str, limit: int, batch_size: int, name: str | None = None,
                         root: str | None = None) -> Any:
        """Model-ready ``(images, masks)`` batches of a split with foreground masks, for the
        information-filtering analysis (`lm4vis.analysis.analyze_runs`).

        Args:
            split: the split to read.
            limit: how many images.
            batch_size: images per batch.
            name: another dataset with masks (default: the run's own), at the run's image size.
            root: its folder (default: the run's ``data.root`` for the run's own dataset).
        """
        from ..analysis.runner import batches_from
        from .registry import build_dataset

        d = self.cfg.data
        base = self.base if name is None else build_dataset
        root = root if root is not None else (d.root if name is None else None)
        ds = base(name or d.name, split=split, root=root, image_size=d.image_size, seed=d.data_seed,
                  with_masks=True, limit=limit)
        if len(ds) == 0:
            raise ValueError(f"split {split!r} of {name or d.name} holds no images; choose another --split")
        transform = build_transform(self.cfg)

        def preprocess(images: Tensor) -> Tensor:
            return torch.stack([transform(im) for im in images])

        return batches_from(ds, preprocess, batch_size)

    def dataset(self, split: str, train: bool) -> Dataset:
        """A split with the transform of training (augmented) or evaluation."""
        d = self.cfg.data
        raw = self._train_raw() if split == "train" else self.raw(split, d.limit_val)
        size = d.image_size or raw.info.image_size
        transform = build_transform(self.cfg, train, size)
        return TransformedDataset(raw, transform, self.cfg.seed if transform.random else None)



def build_transform(cfg: RunConfig, train: bool = False, image_size: int | None = None) -> ImageTransform:
    """The preprocessing of a run: augmentation (``train``) and normalisation.

    `load_run` users take ``build_transform(cfg)`` to feed images to a trained model.

    Args:
        cfg: a resolved run config (``data.mean``/``data.std`` filled, as in ``config.yaml``).
        train: include the training augmentations.
        image_size: output side; ``cfg.data.image_size`` when None.
    """
    d = cfg.data
    if d.mean is None:
        raise ConfigError("data.mean/std are unresolved; resolve the config with prepare_config first")
    # A gray dataset feeds an RGB host by repeating its channel.
    channels = getattr(cfg.host, "in_chans", None) or len(d.mean)
    mean, std = list(d.mean), list(d.std)
    if len(mean) not in (1, channels):
        raise ConfigError(
            f"data.mean has {len(mean)} values for a {channels}-channel host; give 1 or {channels}"
        )
    if len(mean) == 1 and channels > 1:
        mean, std = mean * channels, std * channels
    size = image_size or d.image_size
    if size is None:
        raise ConfigError("the image size is unknown: set data.image_size or host.img_size")
    return ImageTransform(
        mean, std, size, train=train, crop=d.crop, crop_padding=d.crop_padding, hflip=d.hflip,
        randaugment=d.randaugment if train else None,
        random_erasing=d.random_erasing if train else 0.0, out_chans=channels,
    )


__all__ = ["ImageSource", "ImageTransform", "TransformedDataset", "build_transform", "image_stats"]
