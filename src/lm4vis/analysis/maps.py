"""Per-token maps: how strongly each spatial token is "active" at a stage.

Every map is a score per patch token, ``(B, P)``, with the prefix tokens (CLS, registers)
dropped by the `Layout`. The kinds:

- ``l2``: the L2 norm of a token's feature vector;
- ``freq``: activation frequency. For each channel, the tokens whose absolute activation is
  among the channel's top ``top`` fraction *within the same image* are marked; a token's score
  is the fraction of channels that mark it. It counts *how many* channels single a token out,
  where ``l2`` measures *how much* (a few huge channels dominate ``l2`` but not ``freq``);
- ``attn``: attention from the first prefix token (CLS) to each patch token, averaged over
  heads (``attn``) or per head (``attn.h<j>``). A host without prefix tokens has no CLS; its
  map is then the attention each token receives, averaged over all queries.

Map names are ``<kind>@<stage>``, e.g. ``l2@post_lm`` or ``attn.h2@lm_attn.0``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .hooks import Capture
from .layout import Layout, patch_tokens

MAP_KINDS: tuple[str, ...] = ("l2", "freq", "attn")


def l2_map(tokens: Tensor, layout: Layout | None = None) -> Tensor:
    """Per-token L2 norm ``(B, P)``.

    Args:
        tokens: features ``(B, N, C)``.
        layout: drops the prefix tokens; None keeps all ``N``.
    """
    return patch_tokens(tokens, layout).float().norm(dim=-1)


def freq_map(tokens: Tensor, layout: Layout | None = None, top: float = 0.1) -> Tensor:
    """Activation frequency ``(B, P)``: the fraction of channels in which a token's absolute
    activation is in that channel's top ``top`` fraction of the image's tokens.

    Args:
        tokens: features ``(B, N, C)``.
        layout: drops the prefix tokens; None keeps all ``N``.
        top: fraction of tokens marked per channel, in (0, 1]; at least one token is marked.
    """
    if not 0.0 < top <= 1.0:
        raise ValueError(f"top={top} must be in (0, 1]")
    x = patch_tokens(tokens, layout).float().abs()  # (B, P, C)
    k = max(1, math.ceil(top * x.shape[1]))
    idx = x.topk(k, dim=1).indices  # (B, k, C): the marked tokens of every channel
    marks = torch.zeros_like(x).scatter_(1, idx, 1.0)
    return marks.mean(dim=-1)


def attention_map(probs: Tensor, layout: Layout | None = None) -> Tensor:
    """CLS-to-patch attention per head ``(B, heads, P)``.

    Args:
        probs: attention probabilities ``(B, heads, N, N)`` (rows are queries).
        layout: gives the prefix count; with no prefix token (or no layout) the map is the
            attention each token receives, averaged over queries.
    """
    n_prefix = layout.num_prefix_tokens if layout is not None else 0
    if n_prefix > 0:
        rows = probs[:, :, 0, :]  # the CLS query
    else:
        rows = probs.mean(dim=2)
    # (B, heads, N) -> (B, N, heads) so the layout drops prefix keys on the token axis.
    return patch_tokens(rows.transpose(1, 2), layout).transpose(1, 2)


def token_maps(
    cap: Capture,
    layout: Layout | None,
    kinds: tuple[str, ...] = MAP_KINDS,
    top: float = 0.1,
    per_head: bool = True,
) -> dict[str, Tensor]:
    """Every map of a capture: ``{"<kind>@<stage>": (B, P)}``.

    Args:
        cap: a filled `Capture`.
        layout: the host's token layout.
        kinds: which of ``l2``, ``freq``, ``attn`` to compute.
        top: the ``freq`` fraction.
        per_head: also return each attention head (``attn.h<j>@<source>``).
    """
    unknown = [k for k in kinds if k not in MAP_KINDS]
    if unknown:
        raise ValueError(f"unknown map kind(s) {unknown}; choose from {', '.join(MAP_KINDS)}")
    out: dict[str, Tensor] = {}
    for stage, tokens in cap.features.items():
        if "l2" in kinds:
            out[f"l2@{stage}"] = l2_map(tokens, layout)
        if "freq" in kinds:
            out[f"freq@{stage}"] = freq_map(tokens, layout, top)
    if "attn" in kinds:
        for source, probs in cap.attention.items():
            heads = attention_map(probs, layout)
            out[f"attn@{source}"] = heads.mean(dim=1)
            if per_head:
                for j in range(heads.shape[1]):
                    out[f"attn.h{j}@{source}"] = heads[:, j]
    return out


def split_name(name: str) -> tuple[str, str]:
    """``"l2@post_lm"`` -> ``("l2", "post_lm")``."""
    kind, sep, stage = name.partition("@")
    if not sep:
        raise ValueError(f"map name {name!r} is not of the form <kind>@<stage>")
    return kind, stage


__all__ = ["MAP_KINDS", "l2_map", "freq_map", "attention_map", "token_maps", "split_name"]
