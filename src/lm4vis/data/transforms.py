"""Resizing of uint8 images and bool masks, the only image operations the datasets apply.

Images are resized bilinearly with antialiasing (a 224 -> 28 shrink must not alias); masks with
nearest-neighbour so that they stay exact 0/1 maps.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF


def resize_image(image: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize of a uint8 image [C,H,W] to ``size`` (int: square).

    Args:
        image: uint8 tensor [C,H,W].
        size: output side, or (height, width).
    """
    hw = [size, size] if isinstance(size, int) else list(size)
    return TF.resize(image, hw, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def resize_mask(mask: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Nearest-neighbour resize of a bool mask [H,W] to ``size`` (int: square).

    Args:
        mask: bool tensor [H,W].
        size: output side, or (height, width).
    """
    hw = [size, size] if isinstance(size, int) else list(size)
    out = TF.resize(
        mask[None].to(torch.uint8), hw, interpolation=TF.InterpolationMode.NEAREST_EXACT
    )
    return out[0].bool()


def resize_center_crop(image: Tensor, size: int, *, nearest: bool = False) -> Tensor:
    """Resize the short side to ``size`` and crop the centre square (the ImageNet eval recipe).

    Args:
        image: tensor [C,H,W] (uint8 image, or a uint8 0/1 mask when ``nearest``).
        size: side of the square output.
        nearest: nearest-neighbour interpolation (for masks) instead of bilinear.
    """
    h, w = image.shape[-2:]
    short = min(h, w)
    new_h, new_w = max(size, round(h * size / short)), max(size, round(w * size / short))
    if (new_h, new_w) != (h, w):
        mode = TF.InterpolationMode.NEAREST_EXACT if nearest else TF.InterpolationMode.BILINEAR
        image = TF.resize(image, [new_h, new_w], interpolation=mode, antialias=not nearest)
    return TF.center_crop(image, [size, size])
