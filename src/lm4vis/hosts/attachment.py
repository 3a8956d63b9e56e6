"""Putting a `FrozenLMBlock` into any host model: one function, two mechanisms.

- **Slots.** A host written for lm4vis declares an `LMSlot` where the block belongs and calls
  it with ``(tokens, key_padding_mask)``; `attach` fills the slot. No hook stands in the way,
  so the mask arrives as an argument and the whole host can be compiled.
- **Hooks.** A third-party host (timm, transformers) is used as it is: the block is
  registered on the host (``model.lm_block`` by default) and applied by a forward hook on the
  target module, so every original module path, pretrained-weight key and the host's own API
  stay exactly as they were. ``mask_from`` says where a key-padding mask comes from: a
  keyword argument of the target's forward, or a function of its inputs.

A host may take several named blocks (``image_lm_block``, ``text_lm_block``). What `attach`
changed is recorded, so it can be reported (`find_attachments`) and undone (`detach`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..block import FrozenLMBlock
from ..lm.layers import LMStack
from .slot import LMSlot

#: Named placements on a host with a ``blocks`` list; an int means "after that block".
PLACEMENTS: tuple[str, ...] = ("last", "first", "middle")
#: Attribute a hook-attached block is registered under when no name is given.
ATTR = "lm_block"
_RECORD = "lm4vis_attachments"

MaskFrom = str | Callable[[nn.Module, tuple, dict], Tensor | None] | None


class AttachError(ValueError):
    """The block cannot be attached where asked; the message names the fix."""


@dataclass
class Attachment:
    """What `attach` changed, so it can be reported and undone.

    Attributes:
        block: the attached block.
        name: its name on the host (the key of `find_attachments`).
        target_path: the slot, or the module whose hook applies the block.
        where: the placement as given.
        position: ``"slot"``, ``"after"`` or ``"before"`` the target module.
        hook_id: the hook's key in the target's hook dict (-1 for a slot). A RemovableHandle is
            not kept: it holds a weak reference to the original module's dict, so a deep-copied
            host would detach the original.
    """

    block: FrozenLMBlock
    name: str
    target_path: str
    where: str | int
    position: str
    hook_id: int = -1

    @property
    def block_path(self) -> str:
        """Where the block's parameters live in the host's state dict."""
        return f"{self.target_path}.block" if self.position == "slot" else self.name


@dataclass(frozen=True)
class Target:
    """A resolved placement: a module path and how the block goes there."""

    path: str
    position: str  # "slot", "after", "before"

    def width(self, model: nn.Module) -> int:
        """The token width at this placement: the slot's, else the host's."""
        if self.position == "slot":
            slot = model.get_submodule(self.path)
            if isinstance(slot.width, int):
                return slot.width
        width = host_width(model)
        if width is None:
            raise AttachError(
                f"cannot tell the token width of {type(model).__name__} at {self.path!r}; give the "
                "slot a width (LMSlot(width)), expose embed_dim / config.hidden_size, or pass "
                "in_dim= to attach"
            )
        return width


def host_width(model: nn.Module) -> int | None:
    """Token width of a host: the attribute timm (and most ViTs) expose, or a transformers
    model's ``config.hidden_size``."""
    for name in ("embed_dim", "num_features", "hidden_size", "width"):
        value = getattr(model, name, None)
        if isinstance(value, int):
            return value
    value = getattr(getattr(model, "config", None), "hidden_size", None)
    return value if isinstance(value, int) else None


def slots(model: nn.Module) -> dict[str, LMSlot]:
    """Every `LMSlot` of a host, by module path."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LMSlot)}


def resolve_target(model: nn.Module, where: str | int = "last") -> Target:
    """The module path and position of a placement.

    Args:
        model: the host.
        where: ``"last"`` (the host's single slot if it declares one, else after the last of
            its ``blocks``: the paper's placement), ``"first"`` (before the first block),
            ``"middle"``, a block index (after that block), the path of a slot, a module path
            (after that module), or ``"before:PATH"`` / ``"after:PATH"``.
    """
    declared = slots(model)
    if isinstance(where, str) and where in declared:
        return Target(where, "slot")
    if where == "last" and declared:
        if len(declared) > 1:
            raise AttachError(
                f"{type(model).__name__} declares {len(declared)} LM slots "
                f"({', '.join(declared)}); say which with where=<slot path>"
            )
        return Target(next(iter(declared)), "slot")
    if isinstance(where, str) and where.partition(":")[0] in ("before", "after") and ":" in where:
        position, _, path = where.partition(":")
        return Target(_check_path(model, path), position)
    # "3" from a config or the command line means block 3, unless the host has no blocks and
    # "3" is a module path (an nn.Sequential's child).
    if isinstance(where, str) and where.lstrip("-").isdigit() and hasattr(model, "blocks"):
        where = int(where)
    if isinstance(where, int) or where in PLACEMENTS:
        blocks = getattr(model, "blocks", None)
        if not isinstance(blocks, (nn.Sequential, nn.ModuleList)) or len(blocks) == 0:
            raise AttachError(
                f"{type(model).__name__} has no `blocks` list and no LM slot, so where={where!r} "
                "is undefined; pass the dotted path of a module whose output is tokens "
                "(or before:PATH)"
            )
        n = len(blocks)
        if where == "last":
            return Target(f"blocks.{n - 1}", "after")
        if where == "first":
            return Target("blocks.0", "before")
        if where == "middle":
            return Target(f"blocks.{n // 2 - 1}", "after") if n > 1 else Target("blocks.0", "before")
        if not -n <= where < n:
            raise AttachError(f"block index {where} is out of range: the host has {n} blocks")
        return Target(f"blocks.{where % n}", "after")
    return Target(_check_path(model, where), "after")


def _check_path(model: nn.Module, path: str) -> str:
    names = [name for name, _ in model.named_modules() if name]
    if path not in names:
        close = difflib.get_close_matches(path, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttachError(
            f"where={path!r} matches no module of {type(model).__name__}: use "
            f"{', '.join(PLACEMENTS)}, a block index, a slot or a module path{hint}"
        )
    return path


class _ApplyBlock:
    """The hook itself; a class rather than a closure so that ``copy.deepcopy`` of the host
    carries the hook over to the copied block instead of the original one.

    Token tensors may come as the first positional argument or as ``hidden_states=`` (how
    transformers calls its layers), and a layer may return a tuple whose first element holds
    the tokens (transformers' older layers): the block replaces that element only.
    """

    def __init__(self, block: FrozenLMBlock, target_path: str, mask_from: MaskFrom) -> None:
        self.block, self.target_path, self.mask_from = block, target_path, mask_from

    def _mask(self, module: nn.Module, args: tuple, kwargs: dict) -> Tensor | None:
        if self.mask_from is None:
            return None
        if callable(self.mask_from):
            return self.mask_from(module, args, kwargs)
        if self.mask_from not in kwargs:
            raise AttachError(
                f"mask_from={self.mask_from!r}, but {self.target_path!r} was called without that "
                f"keyword argument (it got {', '.join(kwargs) or 'none'}); pass the mask by that "
                "name, or give mask_from a function of (module, args, kwargs)"
            )
        return kwargs[self.mask_from]

    def _apply(self, x: Any, mask: Tensor | None) -> Any:
        if isinstance(x, tuple) and x and isinstance(x[0], Tensor):
            return (self._apply(x[0], mask), *x[1:])
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
        return self.block(x, mask)

    def after(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        return self._apply(output, self._mask(module, args, kwargs))

    def before(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        mask = self._mask(module, args, kwargs)
        if args:
            return (self._apply(args[0], mask), *args[1:]), kwargs
        if isinstance(kwargs.get("hidden_states"), Tensor):
            return args, {**kwargs, "hidden_states": self._apply(kwargs["hidden_states"], mask)}
        raise AttachError(
            f"{self.target_path!r} was called without a token tensor to put the block before; "
            "attach after the module that produces the tokens instead"
        )


def attach(
    model: nn.Module,
    block: FrozenLMBlock | LMStack,
    where: str | int = "last",
    in_dim: int | None = None,
    *,
    name: str = ATTR,
    mask_from: MaskFrom = None,
    **block_kwargs: Any,
) -> FrozenLMBlock:
    """Insert a frozen LM block into ``model``.

    Args:
        model: a timm vision transformer (anything with ``blocks``), a transformers model, a
            host with an `LMSlot`, or any module with a sub-module that outputs ``(B, N, C)``.
        block: a `FrozenLMBlock`, or an `LMStack` from `load_lm_layers` around which the
            block is built with the host's width.
        where: see `resolve_target`: ``"last"`` (the paper's placement), ``"first"``,
            ``"middle"``, a block index, a slot path, a module path, ``"before:PATH"``.
        in_dim: the token width, when neither the slot nor the host declares it.
        name: the block's name on the host; hook-attached blocks are registered under it
            (``model.lm_block``), and a host may hold several blocks of different names.
        mask_from: for hook placements, where the key-padding mask (bool, True = padding)
            comes from: the name of a keyword argument of the target's forward, or a function
            ``(module, args, kwargs) -> mask``. A slot receives its mask from the host's call.
        **block_kwargs: passed to `FrozenLMBlock` when ``block`` is an `LMStack`.

    Returns:
        The attached block.
    """
    record: dict[str, Attachment] = getattr(model, _RECORD, None) or {}
    if name in record:
        raise AttachError(
            f"this model already has an LM block named {name!r}; call detach(model, {name!r}) "
            "first, or attach under another name="
        )
    target = resolve_target(model, where)
    if target.position != "slot" and hasattr(model, name):
        raise AttachError(f"{type(model).__name__} already has an attribute {name!r}; choose another name=")
    if target.position == "slot" and model.get_submodule(target.path).filled:
        raise AttachError(f"the slot {target.path!r} already holds a block; detach it first")
    if in_dim is not None:
        width: int | None = in_dim
    elif target.position == "slot" or host_width(model) is not None:
        width = target.width(model)
    else:
        width = None  # an unsized host: the block's own in_dim is checked on the first call
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
            f"{width} at {target.path!r}; build it with in_dim={width} (or pass the LMStack and let "
            "attach size it)"
        )

    module = model.get_submodule(target.path)
    hook_id = -1
    if target.position == "slot":
        if mask_from is not None:
            raise AttachError("a slot receives its mask from the host's own call; mask_from is for hooks")
        module.fill(block)
    else:
        hook = _ApplyBlock(block, target.path, mask_from)
        if target.position == "after":
            handle = module.register_forward_hook(hook.after, with_kwargs=True)
        else:
            handle = module.register_forward_pre_hook(hook.before, with_kwargs=True)
        hook_id = handle.id
        model.add_module(name, block)
    record[name] = Attachment(block, name, target.path, where, target.position, hook_id)
    setattr(model, _RECORD, record)
    return block


def find_attachments(model: nn.Module) -> dict[str, Attachment]:
    """Every block attached to ``model``, by name."""
    return dict(getattr(model, _RECORD, None) or {})


def find_attachment(model: nn.Module, name: str | None = None) -> Attachment | None:
    """The attachment called ``name``, or the only one when ``name`` is None (None if none)."""
    record = find_attachments(model)
    if name is not None:
        return record.get(name)
    if len(record) > 1:
        raise AttachError(f"this model holds {len(record)} LM blocks ({', '.join(record)}); name one")
    return next(iter(record.values()), None)


def detach(model: nn.Module, name: str | None = None) -> FrozenLMBlock:
    """Undo `attach`: empty the slot, or remove the hook and the block; returns the block."""
    att = find_attachment(model, name)
    if att is None:
        raise AttachError("no LM block is attached to this model" if name is None
                          else f"no LM block named {name!r} is attached to this model")
    target = model.get_submodule(att.target_path)
    if att.position == "slot":
        target.empty()
    else:
        hooks = target._forward_hooks if att.position == "after" else target._forward_pre_hooks
        hooks.pop(att.hook_id, None)
        for store in (target._forward_hooks_with_kwargs, target._forward_pre_hooks_with_kwargs):
            store.pop(att.hook_id, None)
        delattr(model, att.name)
    record = getattr(model, _RECORD)
    del record[att.name]
    return att.block


__all__ = ["attach", "detach", "find_attachment", "find_attachments", "resolve_target", "Target",
           "Attachment", "AttachError", "PLACEMENTS", "host_width", "slots"]
