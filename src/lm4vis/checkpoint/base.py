"""What every checkpoint format provides, and the checks shared by all of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..lm.config import LMConfig


class CheckpointError(ValueError):
    """A checkpoint that cannot be read; the message names the problem and the fix."""


class CheckpointReader(ABC):
    """Reads the tensors of single layers from one checkpoint, never the whole file.

    Subclasses fill ``config`` from the checkpoint's own metadata and implement
    ``layer_state``, a pure key mapping from the format's names to the canonical names of
    `lm4vis.lm.layers.LMLayer` (``attn_norm.weight``, ``attn.q_proj.weight``, ...).
    """

    format: str = "?"

    def __init__(self, source: str, config: LMConfig) -> None:
        self.source = source
        self.config = config

    @abstractmethod
    def layer_state(self, index: int, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        """Canonical state dict of decoder layer ``index`` (0-based)."""

    @abstractmethod
    def final_norm_state(self, dtype: torch.dtype | None = None) -> dict[str, Tensor] | None:
        """Canonical state dict of the final norm (``weight``/``bias``), or None if absent."""

    @abstractmethod
    def tensor(self, name: str, dtype: torch.dtype | None = None) -> Tensor:
        """Any tensor by the format's own name (embeddings for verification, for instance)."""

    def tensor_names(self) -> list[str]:
        return []

    def layer_bytes(self, index: int) -> int:
        """Bytes one layer occupies in the file (0 if the format cannot tell cheaply)."""
        return 0

    def stored_dtype(self) -> str:
        return "?"

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, **self.config.to_dict()}


def resolve_layers(layers: Any, num_layers: int) -> list[int]:
    """Turn ``layers`` into a contiguous list of 0-based layer indices.

    Accepts an int (negative counts from the end), a contiguous sequence or range of ints,
    a slice, or a string: ``"-1"``, ``"-2:"`` (the last two), ``"10:12"``.
    """
    def bad(msg: str) -> CheckpointError:
        return CheckpointError(f"{msg}; the checkpoint has {num_layers} layers (0..{num_layers - 1}"
                               f" or -{num_layers}..-1)")

    if isinstance(layers, str):
        text = layers.strip()
        if ":" in text:
            a, _, b = text.partition(":")
            try:
                layers = slice(int(a) if a else None, int(b) if b else None)
            except ValueError:
                raise CheckpointError(f"cannot parse layers={layers!r}; use e.g. '-1', '-2:' or '10:12'")
        else:
            try:
                layers = int(text)
            except ValueError:
                raise CheckpointError(f"cannot parse layers={layers!r}; use e.g. '-1', '-2:' or '10:12'")
    if isinstance(layers, bool):
        raise bad(f"layers={layers!r} is not an index")
    if isinstance(layers, int):
        if not -num_layers <= layers < num_layers:
            raise bad(f"layer index {layers} is out of range")
        return [layers % num_layers]
    if isinstance(layers, slice):
        if layers.step not in (None, 1):
            raise bad("layers must be a contiguous span")
        for end in (layers.start, layers.stop):
            if end is not None and not -num_layers <= end <= num_layers:
                raise bad(f"layer span {layers.start}:{layers.stop} is out of range")
        idx = list(range(num_layers))[layers]
    elif isinstance(layers, Sequence) or isinstance(layers, range):
        idx = []
        for i in layers:
            if not isinstance(i, int) or not -num_layers <= i < num_layers:
                raise bad(f"layer index {i!r} is out of range")
            idx.append(i % num_layers)
    else:
        raise CheckpointError(f"layers must be an int, a span or a list of ints, got {type(layers).__name__}")
    if not idx:
        raise bad(f"layers={layers!r} selects no layer")
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise bad(f"layers {idx} are not a contiguous, increasing span")
    return idx
