"""Figures of the analysis: the example grid and the foreground/background activation histogram."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .layout import draw_example, take_layout
from .metrics import auroc, normalize
from .runner import Collected


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_grid(
    path: str | Path,
    run: Collected,
    run_map: str,
    run_threshold: float,
    base: Collected | None = None,
    base_map: str | None = None,
    base_threshold: float | None = None,
    labels: tuple[str, str] = ("LM", "baseline"),
    num: int = 8,
) -> Path:
    """Rows of input | ground truth | baseline map | LM map | their pseudo-masks.

    Each panel is drawn by the layout (`draw_example`): images as pictures, point clouds as
    x-y scatter projections with every point coloured by its token's value.

    Args:
        path: PNG to write.
        run: the analysed model's maps (its first images are shown).
        run_map: which of its maps to show (e.g. ``l2@post_lm``).
        run_threshold: the pseudo-mask threshold of that map (the calibrated one).
        base: the baseline's maps on the same images, or None.
        base_map, base_threshold: the baseline map shown and its threshold.
        labels: names of the run and the baseline in column titles.
        num: images (rows).
    """
    plt = _pyplot()
    k = min(num, run.images.shape[0])
    size = tuple(run.masks.shape[1:])
    columns: list[tuple[str, str, Tensor]] = []  # (title, kind, (k, H, W))

    def dense(c: Collected, name: str) -> Tensor:
        return take_layout(c.layout, k).render(normalize(c.scores[name][:k]), size)

    layout = take_layout(run.layout, k)
    columns.append((getattr(layout, "input_title", "image"), "image", run.images[:k]))
    columns.append(("ground truth", "mask", run.masks[:k].float()))
    if base is not None and base_map is not None:
        columns.append((f"{labels[1]}: {base_map}", "map", dense(base, base_map)))
    columns.append((f"{labels[0]}: {run_map}", "map", dense(run, run_map)))
    if base is not None and base_map is not None:
        columns.append((f"{labels[1]} mask (t={base_threshold:g})", "mask",
                        (dense(base, base_map) >= base_threshold).float()))
    columns.append((f"{labels[0]} mask (t={run_threshold:g})", "mask",
                    (dense(run, run_map) >= run_threshold).float()))

    # A wide panel (a video's frames side by side) goes one per row, its title on the left: each
    # example is a block of rows (clip, mask, maps), frames across, as the paper's Fig. 5.
    shape = run.images.shape  # (B, C, T, H, W) for clips
    aspect = shape[2] * shape[4] / shape[3] if len(shape) == 5 else 1.0
    if aspect > 2:
        fig, grid = plt.subplots(k * len(columns), 1, figsize=(1.0 + 0.9 * aspect, 0.95 * k * len(columns)),
                                 squeeze=False)
        axes = grid[:, 0].reshape(k, len(columns))
    else:
        fig, axes = plt.subplots(k, len(columns), figsize=(1.9 * len(columns), 1.9 * k + 0.4), squeeze=False)
    for j, (title, kind, data) in enumerate(columns):
        for i in range(k):
            ax = axes[i, j]
            if aspect > 2:
                ax.set_ylabel(f"clip {i + 1}" if j == 0 else title, fontsize=6, rotation=0, ha="right", va="center")
            if kind == "image":
                draw_example(layout, ax, run.images[i])
            else:
                draw_example(layout, ax, run.images[i], data[i], "inferno" if kind == "map" else "gray")
            ax.set_xticks([])
            ax.set_yticks([])
        if aspect <= 2:
            axes[0, j].set_title(title, fontsize=7)
    if aspect > 2:
        fig.suptitle(getattr(layout, "input_title", "clips"), fontsize=7)
    fig.tight_layout()
    if aspect > 2:
        fig.subplots_adjust(left=max(fig.subplotpars.left, 1.6 / fig.get_figwidth()))  # room for the row titles
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_activation_hist(
    path: str | Path,
    panels: list[tuple[str, Collected, str]],
    fg_coverage: float = 0.5,
    bins: int = 40,
) -> Path:
    """Per-token L2 norm of foreground vs background tokens, one panel per (model, stage).

    Args:
        path: PNG to write.
        panels: ``(title, collected, map name)``, e.g. ``("frozen-lm post_lm", c, "l2@post_lm")``.
        fg_coverage: mask coverage from which a token is foreground.
        bins: histogram bins per panel.
    """
    plt = _pyplot()
    n = len(panels)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (title, c, name) in zip(axes.flat, panels):
        values = c.scores[name].flatten()
        fg = c.foreground(fg_coverage).flatten()
        lo, hi = float(values.min()), float(values.max())
        edges = torch.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1).tolist()
        for members, label, colour in ((~fg, "background", "tab:blue"), (fg, "foreground", "tab:orange")):
            if members.any():  # a density of no tokens is 0/0: a batch may hold no foreground at all
                ax.hist(values[members].tolist(), bins=edges, density=True, alpha=0.55, label=label, color=colour)
        ratio = float(values[fg].mean() / values[~fg].mean()) if fg.any() and (~fg).any() else float("nan")
        ax.set_title(f"{title}\nAUROC {auroc(values, fg):.3f}, fg/bg mean {ratio:.2f}", fontsize=8)
        ax.set_xlabel("token L2 norm", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["plot_grid", "plot_activation_hist"]
