"""Seeds mixed from a position in the run, so results do not depend on how they were reached."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_for(*parts: int) -> int:
    """A 32-bit seed mixed from integers (run seed, epoch, index, ...), well spread."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    """Seed the three generators augmentations and models draw from."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


__all__ = ["seed_for", "seed_all"]
