"""The one data module: a registered dataset's splits, in a seeded order, collated by the task.

Reproducibility is by construction rather than by luck: the training order of an epoch is a
permutation drawn from ``(seed, epoch)`` only, so every variant trained with the same seed sees
the same batches, and a resumed run sees the batches the uninterrupted run would have seen.
Each rank of a distributed run takes every ``world_size``-th item of the same permutation.

What the data module needs from a dataset is its *data source* (`DataSource`), built by the
dataset's registered builder from the run config; how samples become a batch is the task's
(``task.collate``: padding, masks).

Skipped items are counted once each, however often they are read: the loaders stamp every
`Skipped` / `Counted` marker with its index in the split (`KeyedItems`) and report the keys
beside the batch (`KeyedCollate`), whatever the task's collate does with the markers.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from ..data.skips import SKIPPED_ITEMS, item_keys, with_key
from ..registry import DATASETS
from .config import ConfigError, RunConfig
from .seeding import seed_all, seed_for

log = logging.getLogger(__name__)


class DataSource(Protocol):
    """What a registered dataset's builder returns, given the run config.

    Attributes:
        info: the dataset's description, read by the host (sizing, checks) and the task
            (classes, vocabulary).
        accepts_epoch: optional; True when the split datasets take ``(index, epoch)`` keys,
            so that per-item augmentation can be seeded by the epoch too.
        skips: optional `lm4vis.data.skips.SkipLog` of items skipped while indexing.
        notes: optional list of sentences the run summary carries about the data (e.g. a
            motion dataset without a map: "scenes are agents only").

    A source whose run must reload files it derived from the data (a vocabulary built from
    the training text) is registered with ``run_files=True``: its builder then takes
    ``run_dir=`` (the run's folder, or None for a run not yet created), reads those files
    from a folder that holds them, and has ``save_run_files(run_dir) -> list[Path]``, which
    the engine calls once when it creates the run folder. A resumed, evaluated or analysed run
    thus sees its own files, never ones rebuilt from data that may have changed.
    """

    info: Any

    def resolve(self) -> RunConfig:
        """The run config with data-derived values filled (e.g. normalisation statistics);
        deterministic, so a resumed run's config compares equal."""
        ...

    def dataset(self, split: str, train: bool) -> Dataset:
        """The split ``train`` or ``cfg.data.val_split``; ``train`` selects the augmentations."""
        ...


def build_source(cfg: RunConfig, run_dir: str | os.PathLike | None = None) -> DataSource:
    """The data source of ``cfg.data.name``, from its registered builder.

    Args:
        cfg: the run config.
        run_dir: the folder of the run it serves, when that exists: a source registered with
            ``run_files=True`` reads the files it saved there (see `DataSource`).
    """
    part = DATASETS.get(cfg.data.name)
    if part.get("run_files"):
        return part.build(cfg, run_dir=None if run_dir is None else Path(run_dir))
    return part.build(cfg)


def save_run_files(source: DataSource, run_dir: Path) -> list[Path]:
    """Write the files a source's run must reload with (none for most sources)."""
    save = getattr(source, "save_run_files", None)
    return [] if save is None else list(save(run_dir))


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
        skip: items of epoch ``epoch`` already trained on (a run resumed inside an epoch);
            later epochs are whole. The length stays the epoch's, as Lightning counts it.
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
        skip: int = 0,
    ) -> None:
        self.num_items, self.seed, self.shuffle = num_items, seed, shuffle
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.with_epoch, self.epoch = with_epoch, epoch
        self.skip_epoch, self.skip = epoch, skip

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
        order = self._order()
        if self.skip and epoch == self.skip_epoch:
            order = order[self.skip:]
        for i in order:
            yield (i, epoch) if self.with_epoch else i

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.num_items / self.world_size)
        return len(range(self.rank, self.num_items, self.world_size))


class KeyedItems(Dataset):
    """A split as the loaders read it: each skip marker stamped with its item's index
    (`lm4vis.data.skips.with_key`), so that the engine counts every bad item once.

    Args:
        dataset: the split; indexed by ``i`` or, for sources that take the epoch, ``(i, epoch)``.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> Any:
        index = key[0] if isinstance(key, tuple) else key
        return with_key(self.dataset[key], int(index))


class KeyedCollate:
    """The task's collate, with the stamped keys of the batch's skip markers added to a dict
    batch under `SKIPPED_ITEMS` (``{reason: [index, ...]}``).

    Args:
        collate: the task's collate (torch's default when None).
    """

    def __init__(self, collate: Any = None) -> None:
        self.collate = collate if collate is not None else default_collate

    def __call__(self, items: list[Any]) -> Any:
        keys = item_keys(items)
        batch = self.collate(items)
        if keys and isinstance(batch, dict):
            batch[SKIPPED_ITEMS] = keys
        return batch


class RunDataModule(L.LightningDataModule):
    """Train and validation loaders of one `RunConfig`.

    Args:
        cfg: the resolved run config.
        source: the dataset's data source (`build_source(cfg)` when None).
        collate: how samples become a batch (the task's ``collate``); torch's default when None.
    """

    def __init__(self, cfg: RunConfig, source: DataSource | None = None, collate: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.source = source if source is not None else build_source(cfg)
        self.collate = collate
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    @property
    def info(self) -> Any:
        return self.source.info

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = self.source.dataset("train", train=True)
        self.val_set = self.source.dataset(self.cfg.data.val_split, train=False)
        for name, ds in (("train", self.train_set), (self.cfg.data.val_split, self.val_set)):
            if len(ds) == 0:
                raise ConfigError(f"the {name} split of dataset {self.cfg.data.name!r} holds no samples")

    def skips(self) -> dict[str, Any]:
        """Items the source skipped while indexing, by split (see `lm4vis.data.skips`)."""
        out = {}
        for name, ds in (("train", self.train_set), ("val", self.val_set)):
            log_ = getattr(ds, "skips", None)
            if log_ is not None and log_.total:
                out[name] = log_.to_dict()
        return out

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

    def batches_done(self) -> int:
        """Training batches of the current epoch that the restored checkpoint already holds
        (a run stopped inside an epoch; 0 otherwise). Lightning restores the loop's progress
        before it asks for the loader, and continues counting batches from there."""
        trainer = self.trainer
        if trainer is None or not trainer.fit_loop.restarting:
            return 0
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.completed)

    def train_dataloader(self) -> DataLoader:
        rank, world, epoch = self._rank_world()
        d = self.cfg.data
        sampler = EpochSampler(len(self.train_set), self.cfg.seed, shuffle=True, rank=rank,
                               world_size=world, pad=True,
                               with_epoch=getattr(self.source, "accepts_epoch", False), epoch=epoch,
                               skip=self.batches_done() * d.batch_size)
        if len(sampler) < d.batch_size:
            raise ConfigError(
                f"{len(self.train_set)} training samples give {len(sampler)} per device, fewer than "
                f"one batch (data.batch_size={d.batch_size}); raise data.limit_train or lower "
                "data.batch_size"
            )
        # drop_last: every step has a full (even, for mixup) batch and ranks step together.
        return DataLoader(KeyedItems(self.train_set), batch_size=d.batch_size, sampler=sampler, drop_last=True,
                          num_workers=d.num_workers, persistent_workers=False,
                          collate_fn=KeyedCollate(self.collate), worker_init_fn=_seed_worker)

    def val_dataloader(self) -> DataLoader:
        rank, world, _ = self._rank_world()
        sampler = EpochSampler(len(self.val_set), shuffle=False, rank=rank, world_size=world,
                               pad=False)
        d = self.cfg.data
        return DataLoader(KeyedItems(self.val_set), batch_size=d.eval_batch_size, sampler=sampler,
                          num_workers=d.num_workers, collate_fn=KeyedCollate(self.collate))


def _seed_worker(worker_id: int) -> None:
    # Datasets that seed per item need nothing; others get a distinct, reproducible stream.
    seed_all(torch.initial_seed() % 2**32)


def prepare_config(cfg: RunConfig, source: DataSource | None = None) -> RunConfig:
    """Fill what the config leaves to the data, and check the host against the data.

    Args:
        cfg: the run config (not changed).
        source: its data source (`build_source(cfg)` when None).
    """
    from ..registry import HOSTS

    from .fastpath import resolve_fast_path

    source = source if source is not None else build_source(cfg)
    check = HOSTS.get(cfg.host.kind).get("check_data")
    if check is not None:
        check(cfg.host, source.info)
    return resolve_fast_path(source.resolve())


__all__ = ["DataSource", "EpochSampler", "KeyedItems", "KeyedCollate", "RunDataModule", "build_source", "prepare_config",
           "seed_all", "seed_for"]
