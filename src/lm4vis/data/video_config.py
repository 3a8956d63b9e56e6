"""Typed configs of the video datasets and their registrations (light: no torch, no PyAV).

`VideoDataConfig` holds what every video dataset shares: frames and frame size (taken from the
host when left null), and what to do with bad input. Files are decoded in DataLoader workers
(``data.num_workers``); a file that cannot be decoded is skipped and counted (``on_bad_file:
skip``) or stops the run (``fail``); a video shorter than the clip has frames repeated and is
counted (``on_short_clip: pad``) or stops the run (``fail``). The counts are the ``skipped``
section of the run summary. The data source is `lm4vis.data.video.source.VideoSource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_dataset
from .configs import DataConfig

BAD_FILE_POLICIES = ("skip", "fail")
SHORT_CLIP_POLICIES = ("pad", "fail")
ANNOTATIONS = ("auto", "json", "csv")
MOTION_SOURCES = ("auto", "fashion-mnist", "animal-mnist", "shapes")
#: `lm4vis.data.video.motion_mnist.MOTION_SETS`'s names (this module stays light; a test keeps them equal)
MOTION_SET_NAMES = ("all", "laps")


@dataclass
class VideoDataConfig(DataConfig):
    """What every video dataset shares.

    Args:
        num_frames: frames per clip; None takes ``host.num_frames``.
        image_size: side of the square frames; None takes ``host.image_size``.
        in_chans: 3 (RGB) or 1 (grayscale); None takes ``host.in_chans``.
        on_bad_file: ``skip`` (count a missing, unreadable or truncated file, and go on) or ``fail``.
        on_short_clip: ``pad`` (repeat frames evenly, counted) or ``fail``, for a video with fewer
            than ``num_frames`` frames.
    """

    name: str = "motion-mnist"
    num_frames: int | None = None
    image_size: int | None = None
    in_chans: int | None = None
    on_bad_file: str = "skip"
    on_short_clip: str = "pad"

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("num_frames", "image_size"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ValueError(f"data.{key}={value} must be positive")
        if self.in_chans not in (None, 1, 3):
            raise ValueError(f"data.in_chans={self.in_chans} must be 1 or 3")
        for key, choices in (("on_bad_file", BAD_FILE_POLICIES), ("on_short_clip", SHORT_CLIP_POLICIES)):
            if getattr(self, key) not in choices:
                raise ValueError(f"data.{key}={getattr(self, key)!r} is unknown; choose one of {', '.join(choices)}")

    def check_run(self, run: Any) -> None:
        for key in ("num_frames", "image_size", "in_chans"):
            host_value = getattr(run.host, key, None)
            if getattr(self, key) is None:
                setattr(self, key, host_value)
            elif host_value is not None and host_value != getattr(self, key):
                raise ValueError(
                    f"data.{key}={getattr(self, key)} but host.{key}={host_value}; set them to the same "
                    f"value (or leave data.{key} null)"
                )
        if self.num_frames is None or self.image_size is None:
            raise ValueError("the clip size is unknown: set data.num_frames and data.image_size (or the host's)")

    def builder_options(self) -> dict[str, Any]:
        """Keyword arguments of the dataset's builder (`lm4vis.data.video.build_video_dataset`)."""
        return dict(num_frames=self.num_frames, image_size=self.image_size)


@dataclass
class VideoFileDataConfig(VideoDataConfig):
    """Videos decoded from files: TSN segment sampling (one frame per equal segment: a random
    one in training, the centre ones in evaluation) and VideoMAE's crops.

    Args:
        scale: training random resized crop: range of the crop's area as a share of the frame's.
        ratio: its range of aspect ratios.
        flip: random horizontal flip in training; None takes the dataset's (off for SSv2,
            whose classes tell left from right; on for a video folder).
        num_clips, num_crops: evaluation views per video (VideoMAE's SSv2 test: 2 x 3), whose
            logits the host averages; 1 x 1 validates on the centre clip.
        mean, std: per-channel normalisation; None: ImageNet's for RGB, 0.5 for grayscale.
    """

    in_chans: int | None = 3
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    flip: bool | None = None
    num_clips: int = 1
    num_crops: int = 1
    mean: list[float] | None = None
    std: list[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"data.scale={self.scale} must be [low, high] with 0 < low <= high <= 1")
        if len(self.ratio) != 2 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"data.ratio={self.ratio} must be [low, high] with 0 < low <= high")
        if self.num_clips < 1 or self.num_crops < 1:
            raise ValueError(f"data.num_clips={self.num_clips} and data.num_crops={self.num_crops} must be >= 1")
        if (self.mean is None) != (self.std is None):
            raise ValueError("data.mean and data.std must be given together (or both left null)")

    def builder_options(self, train: bool = True) -> dict[str, Any]:
        opts = dict(super().builder_options(), in_chans=self.in_chans, scale=tuple(self.scale),
                    ratio=tuple(self.ratio), on_bad_file=self.on_bad_file, on_short_clip=self.on_short_clip,
                    train=train)
        if not train:
            opts.update(num_clips=self.num_clips, num_crops=self.num_crops)
        for key in ("flip", "mean", "std"):
            if getattr(self, key) is not None:
                opts[key] = getattr(self, key)
        return opts


@dataclass
class SSv2DataConfig(VideoFileDataConfig):
    """Something-Something-v2, from its release (``labels/*.json`` + ``<id>.webm``) or through
    VideoMAE's lists; classes not in ``labels.json`` stop the run before training, naming the
    first unmatched templates.

    Args:
        annotations: ``json`` (the release's), ``csv`` (VideoMAE's lists) or ``auto``.
        video_dir: folder of the videos; None: ``root/20bn-something-something-v2``, else ``root``.
        lists_dir: folder of VideoMAE's lists; None: ``root``.
    """

    name: str = "ssv2"
    annotations: str = "auto"
    video_dir: str | None = None
    lists_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.annotations not in ANNOTATIONS:
            raise ValueError(f"data.annotations={self.annotations!r} is unknown; choose one of {', '.join(ANNOTATIONS)}")

    def builder_options(self, train: bool = True) -> dict[str, Any]:
        return dict(super().builder_options(train), annotations=self.annotations, video_dir=self.video_dir,
                    lists_dir=self.lists_dir)


@dataclass
class VideoFolderDataConfig(VideoFileDataConfig):
    """Users' videos: ``root/[split/]<class>/<video>`` in any container FFmpeg reads."""

    name: str = "video-folder"


@dataclass
class MotionMNISTDataConfig(VideoDataConfig):
    """motion-mnist, generated: 14 motions whose class no single frame shows.

    Args:
        in_chans: always 1 (grayscale).
        num_train, num_val: clips per split; None: 700 and 100 per class.
        source: the moving objects: ``auto`` (Fashion-MNIST, else Animal-MNIST, else shapes),
            ``fashion-mnist``, ``animal-mnist`` or ``shapes`` (drawn, needs nothing installed).
        distractors: moving fragments of other objects per clip.
        motion_set: ``all``, the 14 motions, or ``laps``: 4 laps of a circle that differ only in
            the order of the points they visit, so that shuffled frames tell nothing (needs
            ``host.num_classes: 4`` and a number of frames that is not a multiple of 3).
        cache: render each split's clips once into the cache folder (``$LM4VIS_CACHE``, else
            ``~/.cache/lm4vis``) and read them back memory-mapped: a clip of the demo took
            ~2.4 ms to draw, and every later epoch, run and process reads it instead.
    """

    name: str = "motion-mnist"
    in_chans: int | None = 1
    num_train: int | None = None
    num_val: int | None = None
    source: str = "auto"
    distractors: int = 3
    motion_set: str = "all"
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.in_chans != 1:
            raise ValueError(f"motion-mnist is grayscale: data.in_chans must be 1, got {self.in_chans}")
        if self.source not in MOTION_SOURCES:
            raise ValueError(f"data.source={self.source!r} is unknown; choose one of {', '.join(MOTION_SOURCES)}")
        for key in ("num_train", "num_val"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"data.{key}={getattr(self, key)} must be positive")
        if self.distractors < 0:
            raise ValueError(f"data.distractors={self.distractors} must be >= 0")
        if self.motion_set not in MOTION_SET_NAMES:
            raise ValueError(f"data.motion_set={self.motion_set!r} is unknown; choose {' or '.join(MOTION_SET_NAMES)}")

    def builder_options(self, train: bool = True, split: str = "train") -> dict[str, Any]:
        size = self.num_train if split == "train" else self.num_val
        return dict(super().builder_options(), source=self.source, distractors=self.distractors,
                    motion_set=self.motion_set, seed=self.data_seed, num_items=size, cache=self.cache)


_SOURCE = "lm4vis.data.video.source:VideoSource"
register_dataset("motion-mnist", config=MotionMNISTDataConfig, builder=_SOURCE, kind="video",
                 description="generated: 14 motions of MNIST-style objects in clutter, 16x32x32 gray")
register_dataset("ssv2", config=SSv2DataConfig, builder=_SOURCE, kind="video",
                 description="Something-Something-v2 release (labels/*.json + <id>.webm) or VideoMAE's lists")
register_dataset("video-folder", config=VideoFolderDataConfig, builder=_SOURCE, kind="video",
                 description="root/[split/]<class>/<video> in any container")

__all__ = ["VideoDataConfig", "VideoFileDataConfig", "SSv2DataConfig", "VideoFolderDataConfig",
           "MotionMNISTDataConfig"]
