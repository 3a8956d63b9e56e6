"""Putting a `FrozenLMBlock` into any host model.

The block is registered on the host as ``model.lm_block`` and applied by a forward hook on the
target module, so every original module path, pretrained-weight key and the timm API
(``forward_features``, ``forward_head``, ``no_weight_decay``) stay exactly as they were.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..block import FrozenLMBlock
from ..lm.layers import LMStack

#: Named placements; an int means "after that block".
PLACEMENTS: tuple[str, ...] = ("last", "first", "middle")
ATTR = "lm_block"


class AttachError(ValueError):
    """The block cannot be attached where asked; the message names the fix."""


@dataclass
class Attachment:
    """What `attach` changed, so it can be reported and undone."""

    block: FrozenLMBlock
    target_path: str
    where: str | int
    position: str  # "after" or "before" the target module
    # The hook's key in the target's hook dict. A RemovableHandle is not kept: it holds a weak
    # reference to the original module's dict, so a deep-copied host would detach the original.
    hook_id: int = -1


class _ApplyBlock:
    """The hook itself; a class rather than a closure so that ``copy.deepcopy`` of the host
    carries the hook over to the copied block instead of the original one."""

    def __init__(self, block: FrozenLMBlock, target_path: str) -> None:
        self.block, self.target_path = block, target_path

    def _apply(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise AttachError(
                f"the output of {self.target_path!r} is not a token tensor (B, N, C) but {shape}; "
                "attach to a module that outputs tokens (e.g. a transformer block)"
            )
        if x.shape[-1] != self.block.in_dim:
            raise AttachError(
                f"{self.target_path!r} outputs tokens of width {x.shape[-1]} but the block expects "
                f"{self.block.in_dim}; build the block with in_dim={x.shape[-1]}"
            )
        return self.block(x)

    def after(self, module: nn.Module, args: tuple, output: Any) -> Tensor:
        return self._apply(output)

    def before(self, module: nn.Module, args: tuple) -> tuple:
        return (self._apply(args[0]), *args[1:])


def host_width(model: nn.Module) -> int | None:
    """Token width of a host, from the attribute timm (and most ViTs) expose."""
    for name in ("embed_dim", "num_features", "hidden_size", "width"):
        value = getattr(model, name, None)
        if isinstance(value, int):
            return value
    return None


def resolve_target(model: nn.Module, where: str | int) -> tuple[str, str]:
    """(module path, "after"|"before") for a placement."""
    # "3" from a config or the command line means block 3, unless the host has no blocks and
    # "3" is a module path (an nn.Sequential's child).
    if isinstance(where, str) and where.lstrip("-").isdigit() and hasattr(model, "blocks"):
        where = int(where)
    if isinstance(where, int) or where in PLACEMENTS:
        blocks = getattr(model, "blocks", None)
        if not isinstance(blocks, (nn.Sequential, nn.ModuleList)) or len(blocks) == 0:
            raise AttachError(
                f"{type(model).__name__} has no `blocks` list, so where={where!r} is undefined; "
                "pass the dotted path of a module whose output is tokens"
            )
        n = len(blocks)
        if where == "last":
            return f"blocks.{n - 1}", "after"
        if where == "first":
            return "blocks.0", "before"
        if where == "middle":
            return f"blocks.{n // 2 - 1}", "after" if n > 1 else "before"
        if not -n <= where < n:
            raise AttachError(f"block index {where} is out of range: the host has {n} blocks")
        return f"blocks.{where % n}", "after"
    names = [name for name, _ in model.named_modules() if name]
    if where not in names:
        close = difflib.get_close_matches(where, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttachError(
            f"where={where!r} matches no module of {type(model).__name__}: use "
            f"{', '.join(PLACEMENTS)}, a block index or a module path{hint}"
        )
    return where, "after"


def attach(
    model: nn.Module,
    block: FrozenLMBlock | LMStack,
    where: str | int = "last",
    in_dim: int | None = None,
    **block_kwargs: Any,
) -> FrozenLMBlock:
    """Insert a frozen LM block into ``model``.

    Args:
        model: a timm vision transformer (anything with ``blocks``) or any module with a
            sub-module that outputs ``(B, N, C)`` tokens.
        block: a `FrozenLMBlock`, or an `LMStack` from `load_lm_layers` around which the
            block is built with the host's width.
        where: ``"last"`` (after the last block, before the final norm: the paper's placement),
            ``"first"`` (before the first block), ``"middle"``, a block index (after that block),
            or a dotted module path (after that module).
        in_dim: the host's token width, when the host does not expose ``embed_dim``.
        **block_kwargs: passed to `FrozenLMBlock` when ``block`` is an `LMStack`.

    Returns:
        The attached block, also reachable as ``model.lm_block``.
    """
    if find_attachment(model) is not None:
        raise AttachError("this model already has an LM block attached; call detach(model) first")
    path, position = resolve_target(model, where)
    width = in_dim or host_width(model)
    if isinstance(block, LMStack):
        if width is None:
            raise AttachError(
                f"cannot tell the token width of {type(model).__name__}; pass in_dim= to attach"
            )
        block = FrozenLMBlock(block, width, **block_kwargs)
    elif not isinstance(block, FrozenLMBlock):
        raise TypeError(f"block must be a FrozenLMBlock or an LMStack, got {type(block).__name__}")
    elif block_kwargs:
        raise TypeError("block_kwargs apply only when attaching an LMStack")
    if width is not None and block.in_dim != width:
        raise AttachError(
            f"the block takes tokens of width {block.in_dim} but {type(model).__name__} has width "
            f"{width}; build it with in_dim={width} (or pass the LMStack and let attach size it)"
        )

    target = model.get_submodule(path)
    hook = _ApplyBlock(block, path)
    if position == "after":
        handle = target.register_forward_hook(hook.after)
    else:
        handle = target.register_forward_pre_hook(hook.before)
    model.add_module(ATTR, block)
    model.lm4vis_attachment = Attachment(block, path, where, position, handle.id)
    return block


def find_attachment(model: nn.Module) -> Attachment | None:
    return getattr(model, "lm4vis_attachment", None)


def detach(model: nn.Module) -> FrozenLMBlock:
    """Undo `attach`: remove the hook and the block; returns the block."""
    att = find_attachment(model)
    if att is None:
        raise AttachError("no LM block is attached to this model")
    target = model.get_submodule(att.target_path)
    hooks = target._forward_hooks if att.position == "after" else target._forward_pre_hooks
    hooks.pop(att.hook_id, None)
    delattr(model, ATTR)
    del model.lm4vis_attachment
    return att.block
