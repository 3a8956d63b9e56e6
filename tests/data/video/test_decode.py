"""PyAV decoding of real files: the frames asked for, and each kind of bad file told apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lm4vis.data.video import VideoDecodeError, read_frames

from video_files import frame_of, truncate, write_audio, write_video


@pytest.mark.parametrize("codec, suffix", [("libvpx-vp9", "webm"), ("libvpx", "webm"), ("mpeg4", "mp4")])
def test_the_asked_frames_come_back_in_order(tmp_path: Path, codec: str, suffix: str) -> None:
    path = write_video(tmp_path / f"clip.{suffix}", 20, codec=codec)
    decoded = read_frames(str(path), lambda n: np.array([n - 1, 0, 7, 7]))
    assert decoded.num_source == 20
    assert decoded.frames.shape == (4, 48, 64, 3) and decoded.frames.dtype == np.uint8
    assert [frame_of(f.mean()) for f in decoded.frames] == [19, 0, 7, 7]
    assert decoded.indices.tolist() == [19, 0, 7, 7]


def test_grayscale_frames_have_one_channel(tmp_path: Path) -> None:
    decoded = read_frames(str(write_video(tmp_path / "clip.webm", 6)), lambda n: np.arange(n), in_chans=1)
    assert decoded.frames.shape == (6, 48, 64, 1)
    assert [frame_of(f.mean()) for f in decoded.frames] == list(range(6))


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.webm"
    path.write_bytes(b"not a video at all " * 64)
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda tmp: truncate(write_video(tmp / "cut.webm", 30), 0.5), "truncated"),
        (lambda tmp: truncate(write_video(tmp / "head.webm", 30), 0.02), "unreadable"),
        (lambda tmp: write_audio(tmp / "sound.wav"), "no-frames"),
        (_garbage, "unreadable"),
        (lambda tmp: tmp / "absent.webm", "unreadable"),
    ],
)
def test_bad_files_raise_with_their_reason(tmp_path: Path, make, reason: str) -> None:
    with pytest.raises(VideoDecodeError) as caught:
        read_frames(str(make(tmp_path)), lambda n: np.arange(n))
    assert caught.value.reason == reason


def test_a_file_missing_only_its_last_frame_is_accepted(tmp_path: Path) -> None:
    # A frame or two short of the header's duration is within the slack; a cut at half is not.
    path = truncate(write_video(tmp_path / "nearly.webm", 30), 0.95)
    decoded = read_frames(str(path), lambda n: np.array([n - 1]))
    assert 27 <= decoded.num_source < 30
