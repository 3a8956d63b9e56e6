"""The point-cloud data source: every registered point dataset, as the engine asks for it.

One source serves ``shapes3d``, ``modelnet40-h5``, ``modelnet40-resampled``, ``scanobjectnn``
and ``point-folder`` (their configs are `lm4vis.data.points_config`'s). It checks what can be
checked before any file is read (the validation split exists, a release has its ``root``),
describes the data (``info``: classes, class names, points, channels, and ``inputs_key =
"points"`` for the task), and builds each split with Point-BERT's augmentation in training.
Each item's augmentation is drawn from ``(seed, epoch, index)`` (`accepts_epoch`), and bad
input is counted on the split's ``skips``, which the run summary reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from ...train.config import ConfigError, RunConfig
from ..points_config import PointDataConfig
from . import POINT_DATASETS, build_point_dataset
from .base import BadInputPolicy, PointCloudDataset, PointCloudInfo
from .transforms import PointAugment

_POLICY_KEYS = ("short_cloud", "nonfinite", "unreadable")


class PointSource:
    """The data source of a point dataset (see `lm4vis.train.datamodule.DataSource`).

    Args:
        cfg: the run config (``data``: a `PointDataConfig`).
    """

    #: Items are looked up by (index, epoch), so each augmentation is seeded by both.
    accepts_epoch = True

    def __init__(self, cfg: RunConfig) -> None:
        d = cfg.data
        if not isinstance(d, PointDataConfig):
            raise ConfigError(f"data.name={d.name!r}: the point source needs a PointDataConfig, got "
                              f"{type(d).__name__}")
        spec = POINT_DATASETS[d.name]
        if d.val_split not in spec.splits:
            raise ConfigError(
                f"dataset {d.name!r} has the splits {', '.join(spec.splits)}, no {d.val_split!r}; set "
                f"data.val_split=test (Point-BERT validates on the test split)"
            )
        if spec.needs_root and d.root is None:
            raise ConfigError(f"dataset {d.name!r} reads files: set data.root to {spec.description}")
        self.cfg = cfg
        self._train: PointCloudDataset | None = None

    def _options(self, train: bool) -> dict[str, Any]:
        d = self.cfg.data
        opts = d.builder_options()
        if d.reads_files:
            opts["policy"] = BadInputPolicy(**{k: getattr(d, k) for k in _POLICY_KEYS})
        augment = d.augment_options() if train else None
        opts["augment"] = None if augment is None else PointAugment(**augment)
        opts["seed"] = self.cfg.seed
        return opts

    def _build(self, split: str, train: bool, limit: int | None) -> PointCloudDataset:
        d = self.cfg.data
        ds = build_point_dataset(d.name, split=split, root=d.root, **self._options(train)).limit(limit)
        if len(ds) == 0:
            where = f" at {d.root}" if d.root else ""
            raise FileNotFoundError(
                f"the {split} split of dataset {d.name!r}{where} holds no usable clouds "
                f"(skipped: {ds.skips.to_dict()['counts'] or 'none'}); check data.root"
            )
        return ds

    def _train_set(self) -> PointCloudDataset:
        if self._train is None:
            self._train = self._build("train", True, self.cfg.data.limit_train)
        return self._train

    @property
    def info(self) -> PointCloudInfo:
        """The dataset's `PointCloudInfo` (classes, class names, points, channels)."""
        return self._train_set().info

    def resolve(self) -> RunConfig:
        """Nothing is estimated from point data: the config as given."""
        return self.cfg

    def dataset(self, split: str, train: bool) -> PointCloudDataset:
        """A split, augmented when ``train``."""
        if split == "train" and train:
            return self._train_set()
        limit = self.cfg.data.limit_train if split == "train" else self.cfg.data.limit_val
        return self._build(split, train, limit)

    def analysis_batches(self, split: str, limit: int, batch_size: int, name: str | None = None,
                         root: str | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Model-ready ``(points (B, N, C), masks (B, N))`` batches of a split whose clouds have
        per-point object masks (shapes3d, ScanObjectNN), for `lm4vis.analysis.analyze_runs`.

        Args:
            split: the split to read.
            limit: how many clouds.
            batch_size: clouds per batch.
            name: another point dataset with masks (default: the run's own).
            root: its folder (default: the run's ``data.root`` for the run's own dataset).
        """
        d = self.cfg.data
        opts = self._options(train=False)
        if name is not None and name != d.name:
            opts = {"num_points": d.num_points, "seed": self.cfg.seed}
        root = root if root is not None else (d.root if name is None else None)
        ds = build_point_dataset(name or d.name, split=split, root=root, **opts).limit(limit)
        if not ds.info.has_masks:
            raise ValueError(f"dataset {ds.info.name!r} has no per-point object masks for the analysis; "
                             "give one that has with --data (shapes3d, or scanobjectnn with its masks)")
        for start in range(0, len(ds), batch_size):
            items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
            items = [it for it in items if isinstance(it, dict)]  # skipped clouds have no mask to score
            if items:
                yield torch.stack([it["points"] for it in items]), torch.stack([it["mask"] for it in items])


__all__ = ["PointSource"]
