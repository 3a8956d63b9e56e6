"""A picture of cluttered samples with their masks, to check the generator by eye.

    python -m lm4vis.data.preview [--dataset cluttered-fashion-mnist] [--out docs/images/cluttered_examples.png]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from .base import ImageDataset
from .cluttered import best_threshold_iou


def save_mask_grid(ds: ImageDataset, path: str, count: int = 16, columns: int = 4) -> list[float]:
    """Save ``count`` items of a masked dataset as a PNG grid: each image beside itself with the
    mask outlined, titled with its class and the best-threshold IoU. Returns those IoUs.

    Args:
        ds: a dataset built with ``with_masks=True``.
        path: output PNG file (its folder is created).
        count: items to show (the first ones).
        columns: image pairs per row.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    if not ds.with_masks:
        raise ValueError("save_mask_grid needs a dataset built with with_masks=True")
    count = min(count, len(ds))
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(4 * columns, 2.1 * rows), squeeze=False)
    ious = []
    for k in range(count):
        image, label, mask = ds[k]
        ious.append(best_threshold_iou(image, mask))
        gray = image.float().mean(0).numpy()
        left, right = axes[k // columns, 2 * (k % columns)], axes[k // columns, 2 * (k % columns) + 1]
        left.imshow(gray, cmap="gray", vmin=0, vmax=255)
        left.set_title(ds.info.class_names[label], fontsize=9)
        right.imshow(gray, cmap="gray", vmin=0, vmax=255)
        right.imshow(np.ma.masked_where(~mask.numpy(), mask.numpy()), cmap="autumn", alpha=0.45, vmin=0, vmax=1)
        right.contour(mask.numpy(), levels=[0.5], colors="red", linewidths=0.7)
        right.set_title(f"mask (thr. IoU {ious[-1]:.2f})", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return ious


def main(argv: list[str] | None = None) -> int:
    from .registry import build_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cluttered-fashion-mnist")
    parser.add_argument("--split", default="val")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--out", default="docs/images/cluttered_examples.png")
    args = parser.parse_args(argv)
    ds = build_dataset(args.dataset, split=args.split, seed=args.seed, with_masks=True)
    ious = save_mask_grid(ds, args.out, args.count)
    print(f"wrote {args.out}: {len(ious)} samples, best-threshold IoU mean {np.mean(ious):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
