"""Reading frames out of a video file with PyAV (FFmpeg), safely inside DataLoader workers.

Every call opens its own container and closes it before returning: nothing of FFmpeg's is held
by a dataset, so a dataset can be pickled or forked into workers, and no two processes ever
share a demuxer or a decoder.

Many containers do not state their frame count (WebM, SSv2's format, never does), so every
frame is decoded once; the frames stay in the decoder's own YUV buffers and only the ones a
clip samples are converted to RGB, which costs more than the decoding of a small frame.

A file can fail in three ways, each a `VideoDecodeError` with the reason a skip log counts:
``unreadable`` (FFmpeg cannot open or decode it), ``no-frames`` (it holds no video frame), and
``truncated``. A cut-off file decodes without any error (the demuxer just meets the end early),
so truncation is told by comparing what was decoded with the duration the header declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

#: How much shorter than its declared duration a video may decode before it counts as
#: truncated: this many frame periods, or this share of the duration, whichever is larger
#: (headers round durations, and the last frame's own duration is sometimes not counted).
TRUNCATION_SLACK_FRAMES = 3
TRUNCATION_SLACK_SHARE = 0.05
VIDEO_FORMATS = {1: "gray", 3: "rgb24"}


class VideoDecodeError(Exception):
    """A video that cannot be read whole.

    Args:
        reason: short key for the skip log: ``unreadable``, ``no-frames`` or ``truncated``.
        message: what is wrong with the file.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodedFrames:
    """Frames taken from one video.

    Args:
        frames: uint8 [K,H,W,C], the frames at ``indices``, in that order.
        indices: int64 [K], the source frame of each (repeats allowed).
        num_source: how many frames the video decoded to.
    """

    frames: np.ndarray
    indices: np.ndarray
    num_source: int


def read_frames(
    path: str,
    pick: Callable[[int], np.ndarray],
    *,
    in_chans: int = 3,
    threads: int = 1,
) -> DecodedFrames:
    """Decode a video and return the frames that ``pick`` chooses once it knows their number.

    Args:
        path: any container and codec FFmpeg reads (.webm VP8/VP9, .mp4 H.264, ...).
        pick: ``pick(num_source) -> int array`` of the source frames wanted (repeats allowed).
        in_chans: 3 for RGB, 1 for grayscale.
        threads: decoder threads; 1 by default, since DataLoader workers are the parallelism.

    Raises:
        VideoDecodeError: the file is unreadable, holds no frame, or is truncated.
    """
    if in_chans not in VIDEO_FORMATS:
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans}")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodeError("no-frames", f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = threads
            if threads > 1:
                stream.thread_type = "AUTO"  # frame threads as well as slice threads
            frames = list(container.decode(stream))
            declared = _declared_seconds(container, stream)
            rate = float(stream.average_rate) if stream.average_rate else None
    except av.FFmpegError as e:
        raise VideoDecodeError("unreadable", f"{path}: FFmpeg cannot decode it ({e})") from e
    if not frames:
        raise VideoDecodeError("no-frames", f"{path}: no frame decodes")
    _check_complete(path, frames, declared, rate)

    indices = np.asarray(pick(len(frames)), dtype=np.int64)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= len(frames):
        raise ValueError(f"{path}: frame indices {indices.tolist()} outside 0..{len(frames) - 1}")
    # Convert each distinct frame once, all at the first frame's size (a stream may change
    # resolution midway; a clip must not).
    wanted, position = np.unique(indices, return_inverse=True)
    width, height = frames[0].width, frames[0].height
    converted = np.stack([
        frames[i].to_ndarray(format=VIDEO_FORMATS[in_chans], width=width, height=height) for i in wanted
    ])
    if in_chans == 1:
        converted = converted[..., None]
    return DecodedFrames(converted[position], indices, len(frames))


def _declared_seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    # The container's duration covers every stream: it speaks for the video only when the
    # video is all there is (an audio track can run longer).
    if container.duration is not None and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _check_complete(path: str, frames: list[av.VideoFrame], declared: float | None, rate: float | None) -> None:
    if declared is None or frames[0].time is None or frames[-1].time is None:
        return  # nothing to compare with: trust the file
    period = 1.0 / rate if rate else declared / len(frames)
    decoded = frames[-1].time - frames[0].time + period
    slack = max(TRUNCATION_SLACK_FRAMES * period, TRUNCATION_SLACK_SHARE * declared)
    if declared - decoded > slack:
        raise VideoDecodeError(
            "truncated",
            f"{path}: decodes to {decoded:.2f} s of the {declared:.2f} s its header declares "
            f"({len(frames)} frames); the file is cut off or damaged",
        )


__all__ = ["DecodedFrames", "VideoDecodeError", "read_frames"]
