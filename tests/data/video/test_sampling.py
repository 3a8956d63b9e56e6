"""Frame and crop positions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm4vis.data.video import clip_offsets, crop_starts, random_offsets, segment_indices


@pytest.mark.parametrize(
    "num_source, num_frames, offset, expected",
    [
        # 48 frames, 16 segments of 3: centres 1, 4, ..., 46 (VideoMAE's int(tick / 2 + tick * s))
        (48, 16, 0.5, list(range(1, 48, 3))),
        (48, 16, 0.0, list(range(0, 48, 3))),
        (48, 16, 0.999, list(range(2, 48, 3))),
        # 50 frames, 8 segments of 6.25: floor(3.125 + 6.25 s)
        (50, 8, 0.5, [3, 9, 15, 21, 28, 34, 40, 46]),
        # shorter than the clip: every frame repeated evenly, in order
        (5, 8, 0.5, [0, 0, 1, 2, 2, 3, 4, 4]),
        (1, 4, 0.5, [0, 0, 0, 0]),
        (8, 8, 0.5, list(range(8))),
    ],
)
def test_segment_indices(num_source: int, num_frames: int, offset: float, expected: list[int]) -> None:
    assert segment_indices(num_source, num_frames, offset).tolist() == expected


def test_segment_indices_take_one_offset_per_segment() -> None:
    # segments of 3: offsets 0, 1/3, 2/3, 0.99 pick the 1st, 2nd, 3rd, 3rd frame of their segment
    assert segment_indices(12, 4, np.array([0.0, 1 / 3, 2 / 3, 0.99])).tolist() == [0, 4, 8, 11]


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_offsets_outside_a_segment_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        segment_indices(10, 4, bad)


@pytest.mark.parametrize(
    "num_clips, expected", [(1, [0.5]), (2, [0.25, 0.75]), (4, [0.125, 0.375, 0.625, 0.875])]
)
def test_clip_offsets_are_evenly_spaced_and_centred(num_clips: int, expected: list[float]) -> None:
    assert clip_offsets(num_clips).tolist() == expected


def test_two_test_clips_of_a_48_frame_video() -> None:
    first, second = (segment_indices(48, 16, o).tolist() for o in clip_offsets(2))
    assert first == list(range(0, 48, 3))  # floor(0.75 + 3 s)
    assert second == list(range(2, 48, 3))  # floor(2.25 + 3 s)


def test_random_offsets_draw_a_frame_inside_each_segment_reproducibly() -> None:
    draws = [segment_indices(48, 16, random_offsets(16, torch.Generator().manual_seed(s))) for s in range(50)]
    segments = np.stack(draws) // 3
    assert (segments == np.arange(16)).all()  # always inside its own segment
    assert {int(d[0]) for d in draws} == {0, 1, 2}  # and any frame of it
    again = segment_indices(48, 16, random_offsets(16, torch.Generator().manual_seed(0)))
    assert again.tolist() == draws[0].tolist()


@pytest.mark.parametrize(
    "length, size, num_crops, expected",
    [
        (300, 224, 3, [0, 38, 76]),  # VideoMAE: int(k * (300 - 224) / 2)
        (299, 224, 3, [0, 37, 75]),
        (300, 224, 1, [38]),
        (301, 224, 1, [38]),
        (224, 224, 3, [0, 0, 0]),
        (100, 20, 5, [0, 20, 40, 60, 80]),
    ],
)
def test_crop_starts(length: int, size: int, num_crops: int, expected: list[int]) -> None:
    assert crop_starts(length, size, num_crops) == expected


def test_a_crop_larger_than_the_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        crop_starts(100, 224, 1)
