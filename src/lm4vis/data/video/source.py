"""The video data source: every registered video dataset, as the engine asks for it.

One source serves ``motion-mnist``, ``ssv2`` and ``video-folder`` (their configs are
`lm4vis.data.video_config`'s). Items are decoded (or generated) in ``__getitem__``, so in
DataLoader workers; a file that fails to decode comes back as a `Skipped` marker and a padded
short clip as a `Counted` item, which the task's collate counts in ``batch["skipped"]``, and what
indexing dropped (a listed video that is missing) is on the split's ``skips``: both reach the
run summary. Clips are ``(C, T, H, W)`` under ``info.inputs_key = "video"``.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from ...train.config import ConfigError, RunConfig
from ..video_config import MotionMNISTDataConfig, VideoDataConfig
from .base import VideoDataset
from .registry import VIDEO_DATASETS, build_video_dataset


class VideoSource:
    """The data source of a video dataset (see `lm4vis.train.datamodule.DataSource`).

    Args:
        cfg: the run config (``data``: a `VideoDataConfig`).
    """

    def __init__(self, cfg: RunConfig) -> None:
        d = cfg.data
        if not isinstance(d, VideoDataConfig):
            raise ConfigError(f"data.name={d.name!r}: the video source needs a VideoDataConfig, got {type(d).__name__}")
        spec = VIDEO_DATASETS[d.name]
        if spec.needs_root and d.root is None:
            raise ConfigError(f"dataset {d.name!r} reads files: set data.root to the {spec.description}")
        self.cfg = cfg
        self._train: VideoDataset | None = None

    def _options(self, split: str, train: bool) -> dict[str, Any]:
        d = self.cfg.data
        if isinstance(d, MotionMNISTDataConfig):
            return d.builder_options(train, split)
        return d.builder_options(train)

    def _build(self, split: str, train: bool, limit: int | None) -> VideoDataset:
        d = self.cfg.data
        ds = build_video_dataset(d.name, split=split, root=d.root, limit=limit, **self._options(split, train))
        if len(ds) == 0:
            raise FileNotFoundError(
                f"the {split} split of dataset {d.name!r}{f' at {d.root}' if d.root else ''} holds no usable "
                f"videos (skipped: {ds.skips.to_dict()['counts'] or 'none'}); check data.root"
            )
        return ds

    def _train_set(self) -> VideoDataset:
        if self._train is None:
            self._train = self._build("train", True, self.cfg.data.limit_train)
        return self._train

    @property
    def info(self) -> Any:
        """The training split's `VideoDatasetInfo` (classes, frames, size, channels)."""
        return self._train_set().info

    def resolve(self) -> RunConfig:
        """Nothing is estimated from the data (clip sizes come from the host, statistics are fixed)."""
        return self.cfg

    def analysis_batches(self, split: str, limit: int, batch_size: int, name: str | None = None,
                         root: str | None = None) -> Any:
        """Model-ready ``(clips, masks)`` batches of a split whose items carry the object's mask
        in every frame (``masks``: bool ``(B, T, H, W)``), for the information-filtering
        analysis (`lm4vis.analysis.analyze_runs`); the clips are the evaluation ones.

        Args:
            split: the split to read.
            limit: how many clips.
            batch_size: clips per batch.
            name: another video dataset with masks (default: the run's own), at the run's clip size.
            root: its folder (default: the run's ``data.root`` for the run's own dataset).
        """
        from ...analysis.runner import batches_from

        d = self.cfg.data
        name = name or d.name
        spec = VIDEO_DATASETS.get(name)
        if spec is None or not spec.has_masks:
            with_masks = [n for n, s in VIDEO_DATASETS.items() if s.has_masks]
            raise ValueError(f"video dataset {name!r} has no per-frame object masks for the analysis; "
                             f"use one that does ({', '.join(with_masks)})")
        if name == d.name:
            options, root = self._options(split, False), root if root is not None else d.root
        else:
            options = dict(num_frames=d.num_frames, image_size=d.image_size)
        ds = build_video_dataset(name, split=split, root=root, limit=limit, with_masks=True, **options)
        if len(ds) == 0:
            raise ValueError(f"split {split!r} of {name} holds no clips; choose another --split")
        return batches_from(_WithMasks(ds), lambda clips: clips, batch_size)

    def dataset(self, split: str, train: bool) -> Dataset:
        """A split: random segment frames and crops in training, centre frames (or the
        configured test views) in evaluation."""
        if split == "train" and train:
            return self._train_set()
        return self._build(split, train, self.cfg.data.limit_val)


class _WithMasks:
    """A video dataset's items as the ``(clip, label, masks)`` triples the analysis reads."""

    def __init__(self, dataset: VideoDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        item = self.dataset[index]
        return item["video"], item["label"], item["masks"]


__all__ = ["VideoSource"]
