"""Reading a model's intermediate tokens and attention with removable forward hooks.

Nothing in the host or the block is changed or monkeypatched: `capture` registers forward
(pre-)hooks that only *read*, and removes every one of them on exit, also when the body raises.
The model's outputs are therefore bit-identical with and without a capture.

Stages (token features, ``(B, N, C)``):

=================  =======================================  ==========================
stage              what it is                               when
=================  =======================================  ==========================
``pre_proj_in``    input of ``lm_block.proj_in``            an LM block is attached
``post_lm``        output of ``lm_block.lm`` (pre-norm)     an LM block is attached
``post_proj_out``  output of ``lm_block.proj_out``          an LM block is attached
``last_block``     output of the host's last block          no block, or block not last
``post_norm``      output of the host's final ``norm``      the host has a final norm
=================  =======================================  ==========================

Attention sources (probabilities, ``(B, heads, N, N)``): ``host_attn`` (the attention of the
host's last block, recomputed from its ``qkv``) and ``lm_attn.<slot>`` for every LM layer
(`LMAttention.attention_weights`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..hosts.attachment import find_attachment
from ..hosts.build import HOST_KIND_ATTR
from ..lm.layers import LMAttention, LMStack

log = logging.getLogger(__name__)

#: Feature stages in network order; `available_stages` says which a model has.
STAGES: tuple[str, ...] = ("pre_proj_in", "post_lm", "post_proj_out", "last_block", "post_norm")


@dataclass(frozen=True)
class HookPoint:
    """A module and which side of it to read.

    Args:
        name: stage or attention-source name.
        path: dotted module path in the model.
        side: ``"input"`` (first positional argument) or ``"output"``.
    """

    name: str
    path: str
    side: str


@dataclass
class Capture:
    """What one forward pass exposed; overwritten by the next forward inside the context.

    Attributes:
        features: stage -> tokens ``(B, N, C)`` (float32, detached, on the CPU).
        attention: source -> probabilities ``(B, heads, N, N)`` (float32, on the CPU).
    """

    features: dict[str, Tensor] = field(default_factory=dict)
    attention: dict[str, Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.features.clear()
        self.attention.clear()


def host_points(model: nn.Module) -> dict[str, tuple[str, str]]:
    """The host's own hook points, as its registration declares them (``stages``):
    ``stage -> (module path, "input" | "output")``. The host kind is the one `build_host`
    recorded on the model; a model built otherwise is taken for a timm ViT."""
    from ..registry import HOSTS

    stages = HOSTS.get(getattr(model, HOST_KIND_ATTR, "timm-vit")).get("stages")
    return dict(stages(model)) if stages is not None else {}


def feature_points(model: nn.Module) -> list[HookPoint]:
    """The feature stages this model has, in network order.

    Args:
        model: a host, with or without an attached LM block.
    """
    points: list[HookPoint] = []
    att = find_attachment(model)
    own = host_points(model)
    if att is not None:
        root = att.block_path
        points += [
            HookPoint("pre_proj_in", f"{root}.proj_in", "input"),
            HookPoint("post_lm", f"{root}.lm", "output"),
            HookPoint("post_proj_out", f"{root}.proj_out", "output"),
        ]
    last = own.get("last_block")
    # With a block hooked onto the last host block, that block's output *is* the LM block's
    # output (post_proj_out); only a block placed elsewhere leaves a distinct last_block.
    block_on_last = (att is not None and last is not None and att.target_path == last[0]
                     and att.position == "after")
    if last is not None and not block_on_last:
        points.append(HookPoint("last_block", *last))
    if "post_norm" in own:
        points.append(HookPoint("post_norm", *own["post_norm"]))
    if not points:
        raise ValueError(
            f"{type(model).__name__} declares no hook points (its host registration's stages) "
            "and has no LM block: nothing to capture"
        )
    return points


def attention_points(model: nn.Module) -> list[HookPoint]:
    """Attention sources: the host's declared ``host_attn`` and every layer of an attached LM
    stack."""
    points: list[HookPoint] = []
    host_attn = host_points(model).get("host_attn")
    if host_attn is not None:
        if _is_timm_attention(model.get_submodule(host_attn[0])):
            points.append(HookPoint("host_attn", *host_attn))
        else:
            log.info("the host's attention is not a timm qkv Attention; skipping it")
    att = find_attachment(model)
    if att is not None and isinstance(att.block.lm, LMStack):
        for slot, layer in enumerate(att.block.lm.layers):
            if layer.attn is not None:  # frozen-ffn layers have none
                points.append(HookPoint(f"lm_attn.{slot}", f"{att.block_path}.lm.layers.{slot}.attn", "input"))
    return points


def available_stages(model: nn.Module) -> list[str]:
    """Names of the feature stages of ``model``."""
    return [p.name for p in feature_points(model)]


def _is_timm_attention(module: Any) -> bool:
    return (isinstance(module, nn.Module) and isinstance(getattr(module, "qkv", None), nn.Linear)
            and isinstance(getattr(module, "num_heads", None), int))


@torch.no_grad()
def timm_attention_probs(attn: nn.Module, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
    """Attention probabilities ``(B, heads, N, N)`` of a timm ``Attention`` for its input ``x``.

    Recomputes what the module's (fused) forward does: ``qkv`` -> ``q_norm``/``k_norm`` ->
    ``softmax(q k^T * scale)``, with the optional boolean (True = attend) or additive mask.

    Args:
        attn: the module (``qkv``, ``num_heads``, ``scale``, optional ``q_norm``/``k_norm``).
        x: its input tokens ``(B, N, C)`` (already normed by the block).
        attn_mask: the mask the block passed, if any.
    """
    b, n, _ = x.shape
    heads = attn.num_heads
    head_dim = getattr(attn, "head_dim", attn.qkv.out_features // (3 * heads))
    qkv = attn.qkv(x).reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    q_norm, k_norm = getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)
    if q_norm is not None:
        q, k = q_norm(q), k_norm(k)
    scores = (q.float() @ k.float().transpose(-2, -1)) * float(attn.scale)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask.float()
    return scores.softmax(-1)


def _store(t: Tensor) -> Tensor:
    # A copy: a later in-place op in the host must not change what was captured.
    return t.detach().float().cpu().clone()


@contextmanager
def capture(
    model: nn.Module,
    stages: Iterable[str] | None = None,
    attention: bool = True,
) -> Iterator[Capture]:
    """Record the stages' tokens and the attention maps of every forward pass inside the block.

    Args:
        model: a host (timm ViT), with or without an attached LM block.
        stages: which feature stages to record; None records every available one.
        attention: also record attention probabilities (``host_attn``, ``lm_attn.<slot>``).

    Yields:
        A `Capture`, filled by each forward pass. All hooks are removed on exit.

    Example::

        with capture(model) as cap:
            model(images)
        cap.features["post_lm"], cap.attention["host_attn"]
    """
    points = feature_points(model)
    if stages is not None:
        wanted = list(stages)
        names = [p.name for p in points]
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise ValueError(
                f"stage(s) {', '.join(unknown)} not available for this model; available: "
                f"{', '.join(names)}"
            )
        points = [p for p in points if p.name in wanted]
    attn_points = attention_points(model) if attention else []

    cap = Capture()
    handles = []
    try:
        for p in points:
            module = model.get_submodule(p.path)
            if p.side == "input":
                handles.append(module.register_forward_pre_hook(_read_input(cap, p.name)))
            else:
                handles.append(module.register_forward_hook(_read_output(cap, p.name)))
        for p in attn_points:
            module = model.get_submodule(p.path)
            handles.append(module.register_forward_pre_hook(
                _read_attention(cap, p.name), with_kwargs=True))
        yield cap
    finally:
        for h in handles:
            h.remove()


def _read_input(cap: Capture, name: str):
    def hook(module: nn.Module, args: tuple) -> None:
        cap.features[name] = _store(args[0])
    return hook


def _read_output(cap: Capture, name: str):
    def hook(module: nn.Module, args: tuple, output: Any) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        cap.features[name] = _store(out)
    return hook


def _read_attention(cap: Capture, name: str):
    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if args else kwargs["x"]
        if isinstance(module, LMAttention):
            mask = args[1] if len(args) > 1 else kwargs.get("key_padding_mask")
            probs = module.attention_weights(x, mask)
        else:
            probs = timm_attention_probs(module, x, kwargs.get("attn_mask"))
        cap.attention[name] = _store(probs)
    return hook


__all__ = ["capture", "Capture", "HookPoint", "STAGES", "feature_points", "attention_points",
           "available_stages", "timm_attention_probs"]
