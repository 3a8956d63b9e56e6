"""Spatial views: test crops where the hand says, training crops shared by all frames."""

from __future__ import annotations

import torch

from lm4vis.data.video.transforms import eval_views, normalize, to_layout, train_transform


def _columns(height: int, width: int, frames: int = 2) -> torch.Tensor:
    """uint8 [T,1,H,W] whose pixels hold their column index."""
    return torch.arange(width, dtype=torch.uint8).expand(frames, 1, height, width).clone()


def test_three_test_crops_span_the_long_side() -> None:
    views = eval_views(_columns(4, 10), size=4, num_crops=3)  # short side already 4: no resize
    assert views.shape == (3, 2, 1, 4, 4)
    # starts floor(k * (10 - 4) / 2) = 0, 3, 6
    assert [v[0, 0, 0, 0].item() for v in views] == [0, 3, 6]


def test_portrait_frames_are_cropped_along_their_height() -> None:
    clip = _columns(4, 10).transpose(-1, -2).contiguous()  # pixels hold their row index
    views = eval_views(clip, size=4, num_crops=2)
    assert [v[0, 0, 0, 0].item() for v in views] == [0, 6]


def test_the_short_side_is_resized_to_the_output_size() -> None:
    views = eval_views(torch.zeros(3, 3, 48, 64, dtype=torch.uint8), size=24, num_crops=1)
    assert views.shape == (1, 3, 3, 24, 24)


def test_a_training_crop_is_the_same_for_every_frame() -> None:
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    clip = frame.expand(8, -1, -1, -1).clone()
    out = train_transform(16, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip=True)(clip)
    assert out.shape == (8, 3, 16, 16)
    assert (out == out[0]).all()
    # and not always the same crop: two draws differ
    assert not torch.equal(out, train_transform(16, (0.08, 1.0), (3 / 4, 4 / 3), flip=True)(clip))


def test_normalize_and_layout() -> None:
    clip = torch.full((4, 3, 2, 2), 255, dtype=torch.uint8)  # [T,C,H,W]
    clip[:, 1] = 0
    out = normalize(to_layout(clip), (0.5, 0.0, 1.0), (0.5, 1.0, 2.0))
    assert out.shape == (3, 4, 2, 2) and out.dtype == torch.float32 and out.is_contiguous()
    assert out[:, 0, 0, 0].tolist() == [1.0, 0.0, 0.0]  # (1 - 0.5) / 0.5, (0 - 0) / 1, (1 - 1) / 2
