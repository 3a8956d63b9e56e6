"""Building a model from its configs: the registered host, then the variant's LM block."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..registry import HOSTS
from .configs import VARIANTS, BlockConfig, HostConfig

#: Attribute `build_host` records the host's registered kind under (the analysis reads the
#: host's declared hook points and layout through it).
HOST_KIND_ATTR = "lm4vis_host_kind"


def build_host(cfg: HostConfig, info: Any = None) -> nn.Module:
    """The host that ``cfg.kind`` names, built by its registered builder.

    Args:
        cfg: the host's config (an instance of its registered config class).
        info: the dataset's description (``DatasetInfo`` or a part's own), for sizing.
    """
    model = HOSTS.get(cfg.kind).build(cfg, info)
    setattr(model, HOST_KIND_ATTR, cfg.kind)
    return model


def build_model(host: HostConfig, block: BlockConfig, seed: int = 0, info: Any = None) -> nn.Module:
    """The host with the variant's block attached where ``block.where`` says.

    The host is initialised from ``seed`` before anything else, so every variant built with
    the same seed starts from the same host weights; the block's adapters draw from a separate
    stream and never shift the host's initialisation.

    Args:
        host: the host config.
        block: the block config (``variant: baseline`` builds the host alone).
        seed: the run seed.
        info: the dataset's description, passed to the host builder.
    """
    from ..block import PRETRAINED_VARIANTS, FrozenLMBlock
    from ..checkpoint import load_lm_layers
    from .attachment import attach, resolve_target

    torch.manual_seed(seed)
    model = build_host(host, info)
    core_variant = VARIANTS[block.variant]
    if core_variant is None:
        return model
    # Several blocks: a placement the host names (``both``: one per slot), declared as
    # ``placements={where: {block name: slot path}}`` with its registration, or a comma list.
    named = (HOSTS.get(host.kind).get("placements") or {}).get(str(block.where))
    places = list(named.items()) if named else [(None, w) for w in block_placements(block.where)]
    targets = [resolve_target(model, where) for _, where in places]  # a bad placement fails before the LM is read
    for k, ((name, where), target) in enumerate(zip(places, targets)):
        lm = load_lm_layers(
            block.source, block.layers, dtype=block.dtype,
            weights=core_variant in PRETRAINED_VARIANTS,  # the controls need only the config
        ).set_attention(block.attention)
        with torch.random.fork_rng(devices=[]):
            # k = 0 draws as the single block of every earlier run, so ``visual`` and ``both`` share it.
            torch.manual_seed(seed + 1_000_003 + k)
            lm_block = FrozenLMBlock(lm, in_dim=target.width(model), variant=core_variant,
                                     final_norm=block.final_norm, seed=seed + k)
        attach(model, lm_block, where=where, name=name or block_name(where, target.path, k, len(places)))
    return model


def block_placements(where: str | int) -> list[str | int]:
    """``block.where`` as a list: several placements are separated by commas
    (``image_lm_slot,text_lm_slot``), each getting a block of its own."""
    if not isinstance(where, str) or "," not in where:
        return [where]
    parts = [p.strip() for p in where.split(",")]
    if any(not p for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"block.where={where!r} must list distinct placements separated by commas")
    return parts


def block_name(where: str | int, path: str, k: int, count: int) -> str:
    """The name of the ``k``-th of ``count`` blocks: ``lm_block`` when it is the only one, else
    named by its slot (``image_lm_slot`` -> ``image_lm_block``) or numbered."""
    from .attachment import ATTR

    if count == 1:
        return ATTR
    if path.endswith("_lm_slot") and "." not in path:
        return path[: -len("_slot")] + "_block"
    return f"{ATTR}_{k}"


__all__ = ["build_host", "build_model", "block_placements", "block_name"]
