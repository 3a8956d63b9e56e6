"""What every lm4vis video dataset shares: its description, the clip recipe, items and collate.

Items are dicts of tensors:

``video``
    float32 [C,T,H,W], normalised; [V,C,T,H,W] when a test recipe asks for V = num_clips x
    num_crops views (clip-major: view ``v`` is clip ``v // num_crops``, crop ``v % num_crops``).
``label``
    int64 [], the class.
``index``
    int64 [], the item's position in the dataset (to gather per-video results).
``frame_indices``
    int64 [T], or [V,T]: the source frame behind every clip frame.
``num_source_frames``
    int64 [], frames the video decoded to.
``padded``
    bool [], the video had fewer than T frames and frames were repeated; such an item is a
    `Counted` dict, which collate keeps and counts under ``short-clip-padded``.

A file that fails to decode comes back as a `Skipped` marker (``on_bad_file="skip"``);
`collate_clips` drops the markers, stacks the rest, and reports the drops by reason in
``batch["skipped"]``: counts made in DataLoader workers reach the main process only that way.
Short clips travel the same way: ``batch["padded"].sum()`` is how many clips of the batch were
padded (``on_short_clip="pad"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

from ..indexed import SubsetDataset
from ..skips import BadInputError, Counted, Policy, SkipLog, Skipped, check_policy, drop_skipped
from .decode import VideoDecodeError, read_frames
from .sampling import clip_offsets, random_offsets, segment_indices
from .transforms import (
    GRAY_MEAN, GRAY_STD, IMAGENET_MEAN, IMAGENET_STD, eval_views, normalize, to_layout, train_transform,
)

#: The axis order of ``item["video"]`` (after any views axis).
LAYOUT = "CTHW"
SHORT_CLIP_POLICIES = ("pad", "fail")
#: The reason a padded short clip is counted under.
SHORT_CLIP_PADDED = "short-clip-padded"


@dataclass(frozen=True)
class VideoDatasetInfo:
    """What a model needs to know about a video dataset before it sees an item.

    Args:
        name: registered dataset name (``ssv2``, ``video-folder``, ``motion-mnist``).
        num_classes: number of labels; labels are ``0..num_classes-1``.
        class_names: one name per label.
        num_frames: T, frames per clip.
        image_size: side of the square frames.
        in_chans: channels (3 RGB, 1 grayscale).
        num_views: views per item (1 in training; num_clips x num_crops in a test recipe).
        layout: axis order of ``item["video"]`` after the views axis.
        has_masks: items can carry per-frame object masks.
        inputs_key: the item key of the model input, which the classification task reads.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    num_frames: int
    image_size: int
    in_chans: int
    num_views: int = 1
    layout: str = LAYOUT
    has_masks: bool = False
    inputs_key: str = "video"

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"VideoDatasetInfo({self.name!r}): {len(self.class_names)} class names for "
                f"{self.num_classes} classes; give one name per class"
            )

    @property
    def clip_shape(self) -> tuple[int, ...]:
        """Shape of ``item["video"]``: (C, T, H, W), with a leading V for several views."""
        clip = (self.in_chans, self.num_frames, self.image_size, self.image_size)
        return clip if self.num_views == 1 else (self.num_views, *clip)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_names"] = list(self.class_names)
        return out


@dataclass
class ClipConfig:
    """How clips are cut from videos: frames, views, augmentation, and what to do with bad input.

    The defaults are VideoMAE's Something-Something-v2 fine-tuning recipe (16 frames at 224 px,
    random resized crops, no flip); builders set ``train`` from the split, and may set views.

    Args:
        num_frames: T, frames per clip (one per segment).
        image_size: side of the square output frames.
        train: random frame in each segment and random resized crop (+ flip); False: the
            segment centres (or ``num_clips`` spaced offsets) and fixed crops.
        num_clips: test only: temporal views per video (VideoMAE's ``test_num_segment``, 2 on SSv2).
        num_crops: test only: spatial views per clip (``test_num_crop``, 3 on SSv2).
        scale: random resized crop: range of the crop's area as a share of the frame's.
        ratio: random resized crop: range of its aspect ratio.
        flip: random horizontal flip in training; off for SSv2, whose classes tell left from right.
        mean, std: per-channel normalisation; None: ImageNet's for RGB, 0.5 for grayscale.
        in_chans: 3 (RGB) or 1 (grayscale, converted by FFmpeg).
        on_bad_file: ``skip`` (count it and go on) or ``fail``, for missing, unreadable or truncated files.
        on_short_clip: ``pad`` (repeat frames evenly, counted) or ``fail``, for videos with fewer than T frames.
        decode_threads: FFmpeg threads per decode; 1, since DataLoader workers are the parallelism.
    """

    num_frames: int = 16
    image_size: int = 224
    train: bool = True
    num_clips: int = 1
    num_crops: int = 1
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = False
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    in_chans: int = 3
    on_bad_file: Policy = "skip"
    on_short_clip: Literal["pad", "fail"] = "pad"
    decode_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("num_frames", "image_size", "num_clips", "num_crops", "decode_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClipConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.train and (self.num_clips, self.num_crops) != (1, 1):
            raise ValueError("ClipConfig: num_clips and num_crops are test views; set train=False to use them")
        if self.in_chans not in (1, 3):
            raise ValueError(f"ClipConfig.in_chans must be 1 or 3, got {self.in_chans}")
        self.scale, self.ratio = tuple(self.scale), tuple(self.ratio)
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"ClipConfig.scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ClipConfig.ratio must satisfy 0 < low <= high, got {self.ratio}")
        rgb = self.in_chans == 3
        self.mean = tuple(self.mean) if self.mean is not None else (IMAGENET_MEAN if rgb else GRAY_MEAN)
        self.std = tuple(self.std) if self.std is not None else (IMAGENET_STD if rgb else GRAY_STD)
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ValueError(f"ClipConfig: mean and std need {self.in_chans} values, got {self.mean} and {self.std}")
        if min(self.std) <= 0:
            raise ValueError(f"ClipConfig.std must be positive, got {self.std}")
        check_policy("on_bad_file", self.on_bad_file)
        if self.on_short_clip not in SHORT_CLIP_POLICIES:
            raise ValueError(f"on_short_clip={self.on_short_clip!r} is unknown; choose pad or fail")

    @property
    def num_views(self) -> int:
        """Views per item: num_clips x num_crops."""
        return self.num_clips * self.num_crops


def collate_clips(items: Sequence[dict[str, Tensor] | Skipped]) -> dict[str, Any]:
    """Stack items into a batch; `Skipped` markers are dropped and counted in ``batch["skipped"]``.

    Every key of the items is stacked along a new first axis (``video`` [B,C,T,H,W], ``label``
    [B], ...). ``batch["skipped"]`` maps each reason to the number of items it dropped from
    this batch ({} when none was); the engine adds these up. A batch whose items were all
    skipped holds only ``skipped``.

    Args:
        items: what ``__getitem__`` returned for the batch's indices.
    """
    kept, skipped = drop_skipped(list(items))
    batch: dict[str, Any] = default_collate(kept) if kept else {}
    batch["skipped"] = skipped
    return batch


class VideoDataset(SubsetDataset):
    """What every video dataset has: ``info``, ``skips``, ``targets``, `collate` and ``limit``.

    Subclasses set ``info``, ``skips`` and ``targets`` (label of every item, read without
    decoding anything) and implement ``__getitem__`` and ``subset``.
    """

    info: VideoDatasetInfo
    skips: SkipLog
    targets: np.ndarray

    collate = staticmethod(collate_clips)

    def __len__(self) -> int:
        return len(self.targets)

    def _check_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.info.name} of length {len(self)}")
        return index % len(self)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.info.name!r}, items={len(self)}, clip={self.info.clip_shape}, "
                f"num_classes={self.info.num_classes}, skipped={self.skips.total})")


class VideoFileDataset(VideoDataset):
    """Clips decoded from video files (see the module docstring for the items).

    Args:
        info: the dataset's description (its sizes must match ``clip``).
        files: path of every video, in item order.
        targets: label of every video.
        clip: how clips are cut.
        skips: the dataset's skip log, holding what indexing already dropped.
    """

    def __init__(
        self, info: VideoDatasetInfo, files: Sequence[str], targets: np.ndarray, clip: ClipConfig, skips: SkipLog
    ) -> None:
        if len(files) != len(targets):
            raise ValueError(f"{info.name}: {len(files)} files for {len(targets)} labels")
        self.info = info
        self.files = list(files)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.clip = clip
        self.skips = skips
        self._train_transform = (
            train_transform(clip.image_size, clip.scale, clip.ratio, clip.flip) if clip.train else None
        )

    def _pick(self, num_source: int) -> np.ndarray:
        clip = self.clip
        if clip.train:
            return segment_indices(num_source, clip.num_frames, random_offsets(clip.num_frames))
        return np.stack([segment_indices(num_source, clip.num_frames, o) for o in clip_offsets(clip.num_clips)])

    def __getitem__(self, index: int) -> dict[str, Tensor] | Skipped:
        index = self._check_index(index)
        path, clip = self.files[index], self.clip
        try:
            # The test views' clips are decoded together: one pass over the file for all of them.
            decoded = read_frames(path, lambda n: self._pick(n).reshape(-1), in_chans=clip.in_chans,
                                  threads=clip.decode_threads)
        except VideoDecodeError as e:
            if clip.on_bad_file == "fail":
                raise BadInputError(f"{self.info.name}: {e}; replace the file, or pass on_bad_file='skip' "
                                    "to count and skip such files") from e
            return Skipped(e.reason, str(e))
        short = decoded.num_source < clip.num_frames
        if short and clip.on_short_clip == "fail":
            raise BadInputError(
                f"{self.info.name}: {path} has {decoded.num_source} frames, fewer than num_frames="
                f"{clip.num_frames}; lower num_frames, or pass on_short_clip='pad' to repeat frames"
            )
        frames = torch.from_numpy(decoded.frames).permute(0, 3, 1, 2)  # [clips*T, C, H, W]
        indices = torch.from_numpy(decoded.indices)
        if clip.train:
            video = normalize(to_layout(self._train_transform(frames)), clip.mean, clip.std)
        else:
            clips = frames.unflatten(0, (clip.num_clips, clip.num_frames))
            # [clips, crops, T, C, H, W] -> views, clip-major
            views = torch.stack([eval_views(c, clip.image_size, clip.num_crops) for c in clips]).flatten(0, 1)
            video = normalize(to_layout(views), clip.mean, clip.std)
            indices = indices.view(clip.num_clips, 1, clip.num_frames).expand(-1, clip.num_crops, -1).flatten(0, 1)
            if clip.num_views == 1:
                video, indices = video[0], indices[0]
        item = {
            "video": video,
            "label": torch.tensor(self.targets[index]),
            "index": torch.tensor(index),
            "frame_indices": indices.contiguous(),
            "num_source_frames": torch.tensor(decoded.num_source),
            "padded": torch.tensor(short),
        }
        # Padded clips are used, but counted: the count reaches the run summary from the workers.
        return Counted(item, SHORT_CLIP_PADDED) if short else item

    def subset(self, positions: Sequence[int] | np.ndarray) -> VideoFileDataset:
        """The same dataset restricted to the items at ``positions`` (in that order).

        Args:
            positions: item positions in this dataset.
        """
        positions = np.asarray(positions, dtype=np.int64)
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.files, out.targets = [self.files[p] for p in positions], self.targets[positions]
        return out


def info_for(name: str, class_names: Sequence[str], clip: ClipConfig) -> VideoDatasetInfo:
    """The `VideoDatasetInfo` of a file dataset cut by ``clip``.

    Args:
        name: registered dataset name.
        class_names: one per label.
        clip: the clip recipe, which sets frames, size, channels and views.
    """
    return VideoDatasetInfo(
        name=name, num_classes=len(class_names), class_names=tuple(class_names), num_frames=clip.num_frames,
        image_size=clip.image_size, in_chans=clip.in_chans, num_views=clip.num_views,
    )


__all__ = ["LAYOUT", "VideoDatasetInfo", "ClipConfig", "VideoDataset", "VideoFileDataset", "collate_clips",
           "info_for"]
