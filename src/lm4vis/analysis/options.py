"""What `lm4vis analyze` measures and where: checked before torch is imported."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class AnalyzeOptions:
    """What to measure and where.

    Args:
        checkpoint: file under ``RUN_DIR/checkpoints/``.
        data: a dataset with masks (default: the run's own); root: its folder.
        split: where mIoU is measured (None: ``test``; a motion run's validation split);
            calib_split: where fixed thresholds are chosen.
        num_images, num_calib: how many samples (num_calib None: as many as num_images).
        batch_size: samples per forward pass.
        maps: map kinds (l2, freq, attn).
        freq_top, fg_coverage, seed: see `AnalysisConfig`.
        show: the map drawn in ``grid.png`` (default l2@post_lm, or l2@last_block).
        num_examples: rows of ``grid.png``.
        out: output folder (default ``RUN_DIR/analysis``).
    """

    checkpoint: str = "last.ckpt"
    data: str | None = None
    root: str | None = None
    split: str | None = None
    calib_split: str = "val"
    num_images: int = 256
    num_calib: int | None = None
    batch_size: int = 64
    maps: tuple[str, ...] = ("l2", "freq", "attn")
    freq_top: float = 0.1
    fg_coverage: float = 0.5
    show: str | None = None
    num_examples: int = 8
    seed: int = 0
    out: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("num_images", "num_calib", "batch_size", "num_examples"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name.replace('_', '-')}={value} must be positive")
        if (self.split or "test") == self.calib_split:
            raise ValueError(
                f"--split and --calib-split are both {self.calib_split!r}: the fixed threshold would be "
                "chosen on the images it is scored on; use e.g. --split test --calib-split val"
            )


__all__ = ["AnalyzeOptions"]
