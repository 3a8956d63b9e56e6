"""Images for training: `lm4vis.data` datasets, normalised, augmented, in a seeded order.

Reproducibility is by construction rather than by luck:

- the training order of an epoch is a permutation drawn from ``(seed, epoch)`` only, so every
  variant trained with the same seed sees the same batches, and a resumed run sees the batches
  the uninterrupted run would have seen;
- each image's augmentation is drawn from ``(seed, epoch, item index)`` only, so it does not
  depend on worker count, on the model's own use of the random generators, or on resuming.

Each rank of a distributed run takes every ``world_size``-th item of the same permutation.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .config import ConfigError, RunConfig

log = logging.getLogger(__name__)

DatasetFactory = Callable[..., Any]

#: How many training images the normalisation statistics are estimated from.
STATS_IMAGES = 1000


def seed_for(*parts: int) -> int:
    """A 32-bit seed mixed from integers (run seed, epoch, index, ...), well spread."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    """Seed the three generators augmentations and models draw from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class EpochSampler(Sampler):
    """A permutation per epoch drawn from ``(seed, epoch)``, split across ranks.

    Args:
        num_items: dataset length.
        seed: the run seed.
        shuffle: permute (training) or keep the order (evaluation).
        rank, world_size: this process's share: items ``rank::world_size``.
        pad: repeat items so every rank gets the same count (training, so that ranks step
            together); evaluation leaves it off so that every item is counted exactly once.
        with_epoch: yield ``(index, epoch)`` so the dataset can seed each item's augmentation.
        epoch: the first epoch (a resumed run starts where it stopped).
    """

    def __init__(
        self,
        num_items: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
        with_epoch: bool = False,
        epoch: int = 0,
    ) -> None:
        self.num_items, self.seed, self.shuffle = num_items, seed, shuffle
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.with_epoch, self.epoch = with_epoch, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(seed_for(self.seed, self.epoch))
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        if self.pad and self.num_items % self.world_size:
            extra = self.world_size - self.num_items % self.world_size
            order += order[:extra]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator:
        epoch = self.epoch
        for i in self._order():
            yield (i, epoch) if self.with_epoch else i

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.num_items / self.world_size)
        return len(range(self.rank, self.num_items, self.world_size))


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


def default_dataset_factory() -> DatasetFactory:
    from ..data import build_dataset

    return build_dataset


class ImageDataModule(L.LightningDataModule):
    """Train and validation loaders of one `RunConfig`.

    Args:
        cfg: the run config (data, host channels/classes, augmentation, seed).
        dataset_factory: ``build_dataset``-compatible callable (tests pass a synthetic one).
    """

    def __init__(self, cfg: RunConfig, dataset_factory: DatasetFactory | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.factory = dataset_factory or default_dataset_factory()
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.info: Any = None

    # -- datasets --------------------------------------------------------------------------------
    def build(self, split: str, limit: int | None) -> Dataset:
        d = self.cfg.data
        ds = self.factory(d.name, split=split, root=d.root, image_size=d.image_size,
                          seed=d.data_seed, limit=limit)
        if len(ds) == 0:
            where = f" at {d.root}" if d.root else ""
            raise FileNotFoundError(
                f"the {split} split of dataset {d.name!r}{where} holds no images; check data.root "
                "(an image folder needs one sub-folder per class with images inside)"
            )
        return ds

    def check_info(self, info: Any) -> None:
        """The host must fit the data: classes and channels."""
        host = self.cfg.host
        if info.num_classes != host.num_classes:
            raise ConfigError(
                f"host.num_classes={host.num_classes} but dataset {info.name!r} has "
                f"{info.num_classes} classes; set host.num_classes={info.num_classes}"
            )
        if info.in_chans != host.in_chans and not (info.in_chans == 1 and host.in_chans == 3):
            raise ConfigError(
                f"host.in_chans={host.in_chans} but dataset {info.name!r} has {info.in_chans} "
                f"channel(s); set host.in_chans={info.in_chans}"
            )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        d = self.cfg.data
        train = self.build("train", d.limit_train)
        val = self.build(d.val_split, d.limit_val)
        self.info = train.info
        self.check_info(self.info)
        size = d.image_size or self.info.image_size
        train_tf, val_tf = build_transform(self.cfg, True, size), build_transform(self.cfg, False, size)
        self.train_set = TransformedDataset(train, train_tf, self.cfg.seed if train_tf.random else None)
        self.val_set = TransformedDataset(val, val_tf, None)

    # -- loaders ---------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return self.cfg.data.batch_size

    def batches_per_epoch(self, world_size: int, limit: int | float | None = None) -> int:
        """Training batches per device and epoch, as the loader will give them.

        Args:
            world_size: number of processes.
            limit: Lightning's ``limit_train_batches`` (a count, or a fraction of the epoch).
        """
        per_device = math.ceil(len(self.train_set) / world_size)
        batches = per_device // self.cfg.data.batch_size  # drop_last
        if limit is None:
            return batches
        if isinstance(limit, float) and limit <= 1.0:
            return max(1, int(batches * limit)) if batches else 0
        return min(batches, int(limit))

    def _rank_world(self) -> tuple[int, int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1, 0
        # The epoch the loader will serve first. `current_epoch` lags by one when resuming
        # from an end-of-epoch checkpoint; `processed` is what Lightning's set_epoch will say,
        # and workers prefetch before set_epoch is called.
        epoch = trainer.fit_loop.epoch_progress.current.processed
        return trainer.global_rank, trainer.world_size, epoch

    def train_dataloader(self) -> DataLoader:
        rank, world, epoch = self._rank_world()
        d = self.cfg.data
        sampler = EpochSampler(len(self.train_set), self.cfg.seed, shuffle=True, rank=rank,
                               world_size=world, pad=True, with_epoch=True, epoch=epoch)
        if len(sampler) < d.batch_size:
            raise ConfigError(
                f"{len(self.train_set)} training images give {len(sampler)} per device, fewer than "
                f"one batch (data.batch_size={d.batch_size}); raise data.limit_train or lower "
                "data.batch_size"
            )
        # drop_last: every step has a full (even, for mixup) batch and ranks step together.
        return DataLoader(self.train_set, batch_size=d.batch_size, sampler=sampler, drop_last=True,
                          num_workers=d.num_workers, persistent_workers=False)

    def val_dataloader(self) -> DataLoader:
        rank, world, _ = self._rank_world()
        sampler = EpochSampler(len(self.val_set), shuffle=False, rank=rank, world_size=world,
                               pad=False)
        d = self.cfg.data
        return DataLoader(self.val_set, batch_size=d.eval_batch_size, sampler=sampler,
                          num_workers=d.num_workers)


def prepare_config(cfg: RunConfig, dataset_factory: DatasetFactory | None = None) -> RunConfig:
    """Fill what the config leaves to the data (normalisation statistics), checked against
    the host. Deterministic: the same config gives the same result, so resumed runs compare
    equal.

    Args:
        cfg: the run config (not changed).
        dataset_factory: as for `ImageDataModule`.
    """
    dm = ImageDataModule(cfg, dataset_factory)
    train = dm.build("train", cfg.data.limit_train)
    dm.check_info(train.info)
    if cfg.data.mean is not None:
        return cfg
    mean, std = image_stats(train)
    return cfg.replace({"data.mean": mean, "data.std": std})


def build_transform(cfg: RunConfig, train: bool = False, image_size: int | None = None) -> ImageTransform:
    """The preprocessing of a run: augmentation (``train``) and normalisation.

    `load_run` users take ``build_transform(cfg)`` to feed images to a trained model.

    Args:
        cfg: a resolved run config (``data.mean``/``data.std`` filled, as in ``config.yaml``).
        train: include the training augmentations.
        image_size: output side; ``cfg.data.image_size`` when None.
    """
    d, o = cfg.data, cfg.optim
    if d.mean is None:
        raise ConfigError("data.mean/std are unresolved; resolve the config with prepare_config first")
    channels = cfg.host.in_chans
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
        randaugment=o.randaugment if train else None,
        random_erasing=o.random_erasing if train else 0.0, out_chans=channels,
    )
