"""Video dataset names and their one factory, `build_video_dataset`, for the engine to register."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import VideoDataset
from .folder import build_video_folder
from .motion_mnist import build_motion_mnist
from .ssv2 import build_ssv2


@dataclass(frozen=True)
class VideoDatasetSpec:
    """One registered video dataset.

    Args:
        builder: ``builder(split, root, **options) -> VideoDataset``.
        needs_root: ``root`` must be given (users' data) rather than found on the machine.
        has_masks: items can carry per-frame object masks (``with_masks=True``).
        description: one line for listings.
    """

    builder: Callable[..., VideoDataset]
    needs_root: bool
    has_masks: bool
    description: str


VIDEO_DATASETS: dict[str, VideoDatasetSpec] = {
    "motion-mnist": VideoDatasetSpec(build_motion_mnist, False, True,
                                     "generated: 14 motions of MNIST-style objects in clutter, 16x32x32 gray"),
    "ssv2": VideoDatasetSpec(build_ssv2, True, False,
                             "Something-Something-v2 release (labels/*.json + <id>.webm) or VideoMAE's lists"),
    "video-folder": VideoDatasetSpec(build_video_folder, True, False,
                                     "root/[split/]<class>/<video> in any container"),
}


def build_video_dataset(
    name: str, split: str = "train", root: str | None = None, limit: int | None = None, **options: Any
) -> VideoDataset:
    """Build a registered video dataset (items: see `lm4vis.data.video.base`).

    Args:
        name: one of `VIDEO_DATASETS`.
        split: ``train``, ``val`` or ``test``.
        root: data folder; required for ssv2 and video-folder, an override of the source images'
            folder for motion-mnist.
        limit: keep only the first ``limit`` items, for quick runs.
        **options: `ClipConfig` fields for ssv2 and video-folder (and ssv2's ``annotations``,
            ``video_dir``, ``lists_dir``); `MotionMNISTConfig` fields and ``with_masks`` for
            motion-mnist.
    """
    if name not in VIDEO_DATASETS:
        raise ValueError(f"unknown video dataset {name!r}; available: {', '.join(VIDEO_DATASETS)}")
    spec = VIDEO_DATASETS[name]
    if spec.needs_root and root is None:
        raise ValueError(f"video dataset {name!r} needs root=<path to your data> ({spec.description})")
    return spec.builder(split, root, **options).limit(limit)


__all__ = ["VIDEO_DATASETS", "VideoDatasetSpec", "build_video_dataset"]
