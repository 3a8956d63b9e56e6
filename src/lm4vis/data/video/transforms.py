"""Spatial views of a clip and its normalisation: VideoMAE's fine-tuning and test recipes.

Clips travel as uint8 [T,C,H,W] until they are normalised, so that torchvision's transforms
treat the frames as one batch and draw one set of random parameters for all of them: a crop or
flip that changed from frame to frame would be motion the video does not have. Normalised clips
come out as float32 [C,T,H,W] (`to_layout`, then `normalize`).

Training (VideoMAE's ``spatial_sampling`` with its ``scale`` and ``aspect_ratio``): a random
resized crop covering 8-100% of the frame at an aspect ratio of 3/4-4/3, resized to the output
size, then an optional horizontal flip. Testing: the short side resized to the output size and
``num_crops`` squares taken along the long side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .sampling import crop_starts

#: VideoMAE normalises with ImageNet's statistics (its ``imagenet_default_mean_and_std``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: For grayscale clips, which have no ImageNet statistics: maps 0..1 to -1..1.
GRAY_MEAN = (0.5,)
GRAY_STD = (0.5,)


def train_transform(
    size: int, scale: tuple[float, float], ratio: tuple[float, float], flip: bool
) -> v2.Transform:
    """Random resized crop (bilinear, antialiased) and, if ``flip``, a random horizontal flip.

    Args:
        size: side of the square output.
        scale: range of the crop's area as a share of the frame's.
        ratio: range of the crop's aspect ratio (width / height).
        flip: flip half of the clips left-right (never for SSv2: its classes tell left from right).
    """
    steps: list[v2.Transform] = [v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def eval_views(clip: Tensor, size: int, num_crops: int) -> Tensor:
    """Short side resized to ``size``, then ``num_crops`` squares along the long side.

    Args:
        clip: uint8 [T,C,H,W].
        size: side of the squares.
        num_crops: 1 for the centre crop, 3 for VideoMAE's test crops.

    Returns:
        uint8 [num_crops,T,C,size,size].
    """
    clip = TF.resize(clip, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    height, width = clip.shape[-2:]
    if width >= height:
        return torch.stack([clip[..., :, x : x + size] for x in crop_starts(width, size, num_crops)])
    return torch.stack([clip[..., y : y + size, :] for y in crop_starts(height, size, num_crops)])


def normalize(clip: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 [..., C, T, H, W] -> contiguous float32 ``(x / 255 - mean) / std`` per channel.

    One converting copy and two in-place passes: on a 6-view test item (14.5M values) the
    plain ``(x.float() / 255 - mean) / std`` took 5x as long, most of the item's time.

    Args:
        clip: uint8 clip(s) in the lm4vis layout (any strides: a transposed view is fine).
        mean, std: one value per channel.
    """
    shape = (len(mean), 1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(shape)
    scale, shift = 1.0 / (255.0 * std_t), torch.tensor(mean, dtype=torch.float32).view(shape) / std_t
    out = torch.empty(clip.shape, dtype=torch.float32)
    out.copy_(clip)  # converts and makes contiguous in one pass
    return out.mul_(scale).sub_(shift)


def to_layout(clip: Tensor) -> Tensor:
    """[..., T, C, H, W] -> [..., C, T, H, W], the layout of every lm4vis clip (a view).

    (C, T, H, W) is what 3-D convolutions, VideoMAE's own model and pytorchvideo take;
    transformers' ``VideoMAEModel`` takes ``pixel_values`` as (B, T, C, H, W), which is
    ``batch["video"].transpose(1, 2)`` of a collated batch.

    Args:
        clip: frames-first clip(s).
    """
    return clip.transpose(-4, -3)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "GRAY_MEAN", "GRAY_STD", "train_transform", "eval_views",
           "normalize", "to_layout"]
