"""Reading decoder layers out of language-model checkpoints, lazily and checked.

Formats: Hugging Face directories (safetensors, sharded safetensors, ``pytorch_model.bin``),
GGUF files, Meta LLaMA directories (``params.json`` + ``consolidated.NN.pth``) and registered
names such as ``smollm2-135m``. Only the tensors of the requested layers are read.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..lm.config import LMConfig
from ..lm.layers import LMStack, random_lm, tensors_hash
from .base import CheckpointError, CheckpointReader, resolve_layers

__all__ = ["open_checkpoint", "load_lm_layers", "read_lm_config", "resolve_layers",
           "CheckpointError", "CheckpointReader"]


def open_checkpoint(source: str | os.PathLike) -> CheckpointReader:
    """Pick the reader for ``source``: a registered name, a GGUF file, a Meta or HF directory."""
    from . import registry

    text = os.fspath(source)
    if registry.is_registered(text):
        return open_checkpoint(registry.resolve(text))
    if not os.path.exists(text):
        known = ", ".join(registry.names())
        raise CheckpointError(
            f"no checkpoint at {text!r}: the path does not exist and it is not a registered name "
            f"({known}); pass a Hugging Face model directory, a .gguf file or a Meta checkpoint "
            "directory"
        )
    if os.path.isfile(text):
        if text.endswith(".gguf"):
            from .gguf import GGUFReader
            return GGUFReader(text)
        if text.endswith((".pth", ".pt")):
            raise CheckpointError(
                f"{text} is a single .pth file; pass the Meta checkpoint directory that holds "
                "params.json and consolidated.NN.pth"
            )
        raise CheckpointError(
            f"cannot tell the format of {text}: expected a .gguf file or a checkpoint directory"
        )
    if os.path.exists(os.path.join(text, "params.json")):
        from .meta import MetaReader
        return MetaReader(text)
    if os.path.exists(os.path.join(text, "config.json")):
        from .hf import HFReader
        return HFReader(text)
    raise CheckpointError(
        f"{text} holds neither config.json (Hugging Face) nor params.json (Meta LLaMA); "
        "point at the directory that contains one of them"
    )


def read_lm_config(source: str | os.PathLike) -> LMConfig:
    """The layer config of ``source``, read from its metadata only."""
    return open_checkpoint(source).config


def load_lm_layers(
    source: str | os.PathLike,
    layers: Any = -1,
    dtype: torch.dtype | str | None = None,
    weights: bool = True,
) -> LMStack:
    """Read a contiguous span of decoder layers into a frozen `LMStack`.

    Args:
        source: a Hugging Face model directory, a ``.gguf`` file, a Meta LLaMA directory
            (``params.json`` + ``consolidated.NN.pth``) or a registered name (``smollm2-135m``).
        layers: an index (negative counts from the end), a contiguous span (``"-2:"``,
            ``range(10, 12)``, ``slice(-2, None)``) or a list of consecutive indices.
        dtype: dtype to hold the layers in (e.g. ``torch.bfloat16``); the stored dtype
            (dequantized to float32 for quantized GGUF) when None.
        weights: read the weights. False builds the same architecture randomly initialised
            from the checkpoint's config alone (the ``random`` and ``mlp`` controls).

    Returns:
        A frozen module ``(B, N, lm_dim) -> (B, N, lm_dim)`` with ``lm_dim``, ``family``,
        ``layer_indices``, ``source``, ``config_source`` and ``source_hash`` (the hash of the
        layer tensors as read, before the cast to ``dtype``) attributes.
    """
    if isinstance(dtype, str):
        dtype = _parse_dtype(dtype)
    reader = open_checkpoint(source)
    idx = resolve_layers(layers, reader.config.num_layers)
    if not weights:
        stack = random_lm(reader.config, idx, seed=None, config_source=os.fspath(source))
        return stack.to(dtype) if dtype is not None else stack

    state = {f"layers.{slot}.{name}": t
             for slot, i in enumerate(idx) for name, t in reader.layer_state(i).items()}
    # The hash of the layers as the reader gives them, before any cast: it names the source's
    # content whatever dtype the layers are held in now or cast to later (bf16-true training).
    source_hash = tensors_hash(state)
    final = reader.final_norm_state()
    state |= {f"final_norm.{name}": t for name, t in (final or {}).items()}
    if dtype is not None:
        for name, t in state.items():  # one at a time: each stored copy is freed once cast
            state[name] = t.to(dtype)
    with torch.device("meta"):
        stack = LMStack(reader.config, idx, source=os.fspath(source),
                        has_final_norm=final is not None, source_hash=source_hash)
    _check_state(stack, state, reader)
    stack.load_state_dict(state, assign=True)
    stack.freeze()
    return stack


def _check_state(stack: LMStack, state: dict[str, torch.Tensor], reader: CheckpointReader) -> None:
    expected = stack.state_dict()
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs expected {tuple(expected[k].shape)}"
        for k in expected if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unused or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if unused:
            parts.append(f"unused {unused}")
        if wrong:
            parts.append("shape mismatch " + "; ".join(wrong))
        raise CheckpointError(
            f"{reader.source}: the {reader.format} tensors do not match a {reader.config.family} "
            f"layer ({', '.join(parts)}). The checkpoint's config and weights disagree, or the "
            "file is not what its config says."
        )


_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def _parse_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(_DTYPES)}") from None
