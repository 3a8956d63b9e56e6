"""Which frames a clip takes, and where its crops sit: pure functions of sizes and offsets.

Temporal sampling is TSN's segment sampling, as VideoMAE uses it on Something-Something-v2: the
video's ``num_source`` frames are cut into ``num_frames`` equal segments and the clip takes one
frame from each, at a fraction ``offset`` of the segment (random in training, the centre for a
single test clip). Segment ``s`` covers source frames ``[s * n / T, (s + 1) * n / T)``, so

    frame(s) = floor((s + offset_s) * n / T)

Segment bounds are real numbers rather than TSN's ``n // T``: every frame can be drawn (TSN
never draws the last ``n mod T``), and a video shorter than the clip (``n < T``) gets each of
its frames repeated evenly, in order, which is how short clips are padded.

Test views follow VideoMAE's protocol (``test_num_segment`` x ``test_num_crop``): ``num_clips``
clips at evenly spaced offsets ``(k + 1/2) / num_clips`` of every segment, times ``num_crops``
square crops evenly spaced along the frame's long side. VideoMAE's own two SSv2 test clips sit
at offsets 0 and 1/2; the offsets here are centred (1/4 and 3/4), so that they reduce to the
segment centres, TSN's test frames, when there is a single clip.
"""

from __future__ import annotations

import numpy as np
import torch


def segment_indices(num_source: int, num_frames: int, offsets: np.ndarray | float) -> np.ndarray:
    """The source frame of every segment: ``floor((s + offsets[s]) * num_source / num_frames)``.

    Args:
        num_source: frames in the video (at least 1).
        num_frames: frames of the clip, one per segment.
        offsets: position inside each segment, in ``[0, 1)``: one value, or one per segment.

    Returns:
        int64 [num_frames], non-decreasing, in ``0..num_source-1``.
    """
    if num_source < 1 or num_frames < 1:
        raise ValueError(f"need at least one source frame and one clip frame, got {num_source} and {num_frames}")
    offsets = np.broadcast_to(np.asarray(offsets, dtype=np.float64), (num_frames,))
    if offsets.min() < 0 or offsets.max() >= 1:
        raise ValueError(f"segment offsets must lie in [0, 1), got {offsets.min()}..{offsets.max()}")
    frames = np.floor((np.arange(num_frames) + offsets) * num_source / num_frames).astype(np.int64)
    # A product like 0.9999999 * n can round up to n: keep the last index inside the video.
    return np.minimum(frames, num_source - 1)


def random_offsets(num_frames: int, generator: torch.Generator | None = None) -> np.ndarray:
    """One uniform random offset per segment, drawn from torch's generator.

    torch's generator, not numpy's: DataLoader seeds torch afresh in every worker, while a
    numpy generator created before the fork would hand every worker the same draws.

    Args:
        num_frames: segments of the clip.
        generator: torch generator; None uses torch's default one.
    """
    return torch.rand(num_frames, generator=generator, dtype=torch.float64).numpy()


def clip_offsets(num_clips: int) -> np.ndarray:
    """Offsets of ``num_clips`` evenly spaced test clips: ``(k + 1/2) / num_clips``.

    Args:
        num_clips: temporal views per video; 1 gives the segment centres.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    return (np.arange(num_clips) + 0.5) / num_clips


def crop_starts(length: int, size: int, num_crops: int) -> list[int]:
    """First pixel of each of ``num_crops`` crops of ``size`` evenly spaced along ``length``.

    One crop is the centre one; more span the side from end to end (VideoMAE's left, centre,
    right for 3), at ``floor(k * (length - size) / (num_crops - 1))``.

    Args:
        length: the frame's side along which the crops move (the long side).
        size: the crops' side.
        num_crops: crops per frame.
    """
    if size > length:
        raise ValueError(f"a crop of {size} does not fit in {length} pixels")
    if num_crops < 1:
        raise ValueError(f"num_crops must be at least 1, got {num_crops}")
    if num_crops == 1:
        return [(length - size) // 2]
    step = (length - size) / (num_crops - 1)
    return [int(k * step) for k in range(num_crops)]


__all__ = ["segment_indices", "random_offsets", "clip_offsets", "crop_starts"]
