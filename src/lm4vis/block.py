"""`FrozenLMBlock`: proj_in -> frozen LM layers -> final norm -> proj_out.

This is the unit every host attaches. The paper's controls are variants of the same block so
that an ablation changes exactly one thing:

- ``frozen-lm``: the pretrained layers, frozen (the method);
- ``frozen-ffn``: the pretrained layers, frozen, with their attention sub-layers skipped (the
  ``only_mlp`` ablation of the paper's video code);
- ``random-lm``: the same architecture, randomly initialised, frozen;
- ``finetune-lm``: the pretrained layers, trainable;
- ``mlp``: a trainable residual MLP with the frozen layers' parameter count (capacity control).

Padding follows one convention everywhere: a boolean ``key_padding_mask`` of shape (B, N),
True where a token is padding. Padded tokens change nothing at the other positions, and the
block's outputs there are zeros.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from .lm.config import LMConfig
from .lm.layers import LMStack, Norm, check_key_padding_mask, random_lm

Variant = Literal["frozen-lm", "frozen-ffn", "random-lm", "finetune-lm", "mlp"]
FinalNorm = Literal["unit", "pretrained", "none"]
#: The names Python, configs and the CLI share (configs add ``baseline``: no block).
VARIANTS: tuple[str, ...] = ("frozen-lm", "frozen-ffn", "random-lm", "finetune-lm", "mlp")
#: Variants that run the checkpoint's weights; the others read only its config.
PRETRAINED_VARIANTS: tuple[str, ...] = ("frozen-lm", "frozen-ffn", "finetune-lm")
#: Names of releases before the one vocabulary; read from their checkpoints, refused as input.
OLD_VARIANT_NAMES: dict[str, str] = {"frozen": "frozen-lm", "random": "random-lm", "finetune": "finetune-lm"}
FINAL_NORMS: tuple[str, ...] = ("unit", "pretrained", "none")


class MLPControl(nn.Module):
    """``x + fc2(act(fc1(norm(x))))`` in the LM width, sized to a target parameter count.

    Two choices make the control trainable by the recipe that trains the other variants
    (measured in docs/analysis.md, "Why the MLP control stalls"):

    - ``fc2`` starts at zero, so the block starts as ``proj_in -> norm -> proj_out`` and the
      branch grows from nothing (the zero-initialised last layer of a residual branch, as in
      Fixup or DiT's adaLN-Zero). Alone this is not enough under Adam: Adam moves every weight
      by about the learning rate per step whatever its size, so a zero start is forgotten in a
      few steps.
    - `lr_multipliers`: the width-aware (muP) Adam rate. An Adam step changes a matrix's output
      by about ``lr * fan_in`` times its inputs' size when the steps line up, so ``fc2``
      (fan-in ~5x the LM width, itself ~9x a small host's width) outgrows the residual it is
      added to within tens of steps; the block's unit final norm then divides every upstream
      gradient by that growth and ``proj_in`` and the host stop learning. Scaling each
      matrix's rate by ``base_width / fan_in`` makes it move as a matrix of the host's width,
      the width the recipe's learning rate is chosen for.

    The parameter count is unchanged (the frozen layers').

    Args:
        lm_dim: width of the tokens.
        num_params: the parameter count to match (the frozen layers').
        norm: ``"rms"`` or ``"layer"``, the LM family's norm.
    """

    def __init__(self, lm_dim: int, num_params: int, norm: str = "rms") -> None:
        super().__init__()
        norm_params = lm_dim if norm == "rms" else 2 * lm_dim
        # fc1 (d*h + h) + fc2 (h*d + d) + norm = num_params, solved for the hidden width h.
        hidden = max(1, round((num_params - norm_params - lm_dim) / (2 * lm_dim + 1)))
        self.norm = Norm(lm_dim, norm)
        self.fc1 = nn.Linear(lm_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, lm_dim)
        nn.init.zeros_(self.fc2.weight)  # the branch starts at zero: the block starts as its adapters
        nn.init.zeros_(self.fc2.bias)
        self.lm_dim = lm_dim

    def lr_multipliers(self, base_width: int) -> dict[str, float]:
        """Per-parameter factors on the optimizer's learning rate (muP's Adam rule).

        ``min(1, base_width / fan_in)`` for every matrix (chosen by tensor rank, as the decay
        groups are), 1 for the norm and the biases, whose Adam step moves the output by about
        the learning rate whatever the width. ``min(1, .)``: a matrix narrower than the base
        is never sped up beyond the recipe's rate.

        The optimizer should put each parameter of this module in a group whose peak rate is
        the run's peak times its factor (the schedule then scales every group alike) and
        leave its weight decay as for any other matrix; parameters not listed keep factor 1.

        Args:
            base_width: the width the learning rate is chosen for: the host's token width
                (`FrozenLMBlock.in_dim`).

        Returns:
            ``{parameter name in this module: factor}`` for every trainable parameter.
        """
        if base_width <= 0:
            raise ValueError(f"base_width={base_width} must be positive")
        return {name: min(1.0, base_width / p.shape[1]) if p.ndim == 2 else 1.0
                for name, p in self.named_parameters() if p.requires_grad}

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


def _trunc_normal_linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim, bias=False)
    nn.init.trunc_normal_(layer.weight, std=0.02)  # timm's ViT init, as in the paper's hosts
    return layer


class FrozenLMBlock(nn.Module):
    """proj_in (in_dim -> lm_dim) -> LM layers -> final norm -> proj_out (lm_dim -> out_dim).

    Args:
        lm: the layers, from `lm4vis.load_lm_layers` (or `lm4vis.lm.random_lm`). The ``random-lm``
            and ``mlp`` variants read only its config and leave it as it is; ``frozen-ffn``
            shares its FFN tensors.
        in_dim: width of the host's tokens.
        out_dim: width handed back to the host; ``in_dim`` when None.
        final_norm: ``"unit"`` (RMS/LayerNorm with weight fixed at 1, what the paper's code
            does in effect), ``"pretrained"`` (the checkpoint's final norm, frozen) or ``"none"``.
        variant: one of ``VARIANTS`` (see the module doc).
        save_lm_weights: write the LM weights into the host's state dict. By default only the
            frozen variants with a known source are saved by reference (source, layer indices and
            the source's content hash, verified on load); every other variant is saved inline.
        seed: seed of the ``random-lm`` variant's initialisation.
    """

    def __init__(
        self,
        lm: LMStack,
        in_dim: int,
        out_dim: int | None = None,
        final_norm: FinalNorm = "unit",
        variant: Variant = "frozen-lm",
        save_lm_weights: bool | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if variant in OLD_VARIANT_NAMES:
            raise ValueError(f"variant {variant!r} is called {OLD_VARIANT_NAMES[variant]!r}, as in configs "
                             "and on the command line")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if final_norm not in FINAL_NORMS:
            raise ValueError(
                f"unknown final_norm {final_norm!r}; choose one of {', '.join(FINAL_NORMS)}"
            )
        if not isinstance(lm, LMStack):
            raise TypeError(f"lm must be an LMStack from load_lm_layers, got {type(lm).__name__}")
        out_dim = in_dim if out_dim is None else out_dim
        self.variant, self.final_norm = variant, final_norm
        self.in_dim, self.out_dim, self.lm_dim = in_dim, out_dim, lm.lm_dim
        self.lm_config: LMConfig = lm.config
        self.layer_indices = lm.layer_indices
        # Where the weights came from (None for the controls that do not run them), apart
        # from where the architecture came from.
        pretrained = variant in PRETRAINED_VARIANTS
        self.lm_source = lm.source if pretrained else None
        self.lm_source_hash = lm.source_hash if pretrained else None
        self.lm_config_source = lm.config_source

        self.proj_in = _trunc_normal_linear(in_dim, self.lm_dim)
        layers = lm if variant == "mlp" else self._layers(variant, lm, seed)
        self.frozen_params = layers.num_params()
        self.lm: nn.Module = (MLPControl(self.lm_dim, self.frozen_params, lm.config.norm)
                              if variant == "mlp" else layers)
        self.norm = self._make_final_norm(final_norm, layers)
        if final_norm != "pretrained" and isinstance(self.lm, LMStack):
            self.lm.final_norm = None  # unused: keep it out of the parameter counts
        self.proj_out = _trunc_normal_linear(self.lm_dim, out_dim)

        by_reference = (variant in ("frozen-lm", "frozen-ffn") and self.lm_source is not None
                        and self.lm_source_hash is not None)
        self.save_lm_weights = (not by_reference) if save_lm_weights is None else save_lm_weights
        if not self.save_lm_weights and not by_reference:
            raise ValueError(
                f"variant {variant!r} has no checkpoint to re-read its layers from (a stack from "
                "load_lm_layers records its source and content hash); use save_lm_weights=True"
            )
        self.register_state_dict_post_hook(_drop_lm_weights)
        self._register_load_state_dict_pre_hook(_restore_lm_weights, with_module=True)

    @staticmethod
    def _layers(variant: str, lm: LMStack, seed: int) -> LMStack:
        """The stack the variant runs; the caller's ``lm`` unless the variant changes it."""
        if variant == "random-lm":
            # A fresh stack: the caller's may hold pretrained weights it still means to use.
            fresh = random_lm(lm.config, lm.layer_indices, seed, has_final_norm=lm.final_norm is not None)
            return fresh.to(lm.dtype).set_attention(lm.attention_impl)
        if variant == "frozen-ffn":
            return lm.without_attention().freeze()
        return lm.unfreeze() if variant == "finetune-lm" else lm.freeze()

    @staticmethod
    def _make_final_norm(kind: str, lm: LMStack) -> nn.Module:
        c = lm.config
        if kind == "none":
            return nn.Identity()
        if kind == "unit":
            return Norm(c.lm_dim, c.norm, c.norm_eps, affine=False)
        if lm.final_norm is None:
            raise ValueError(
                f"{lm.source or 'this checkpoint'} has no final norm (e.g. post-norm OPT); "
                "use final_norm='unit' or 'none'"
            )
        lm.final_norm.requires_grad_(False)
        return lm.final_norm

    @classmethod
    def from_pretrained(
        cls,
        source: str,
        in_dim: int,
        layers: Any = -1,
        out_dim: int | None = None,
        variant: Variant = "frozen-lm",
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> FrozenLMBlock:
        """Read the layers of ``source`` and build the block. The ``random-lm`` and ``mlp``
        variants read only the checkpoint's config, never its weights."""
        from .checkpoint import load_lm_layers

        lm = load_lm_layers(source, layers, dtype=dtype, weights=variant in PRETRAINED_VARIANTS)
        return cls(lm, in_dim, out_dim, variant=variant, **kwargs)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """(B, N, in_dim) tokens -> (B, N, out_dim); zeros where ``key_padding_mask`` (bool,
        (B, N), True = padding) marks padding."""
        if x.dim() != 3:
            raise ValueError(
                f"FrozenLMBlock takes tokens of shape (B, N, {self.in_dim}); got a rank-{x.dim()} "
                f"tensor of shape {tuple(x.shape)}. Flatten spatial dims into N first."
            )
        if x.shape[-1] != self.in_dim:
            raise ValueError(
                f"tokens have width {x.shape[-1]} but the block was built with in_dim={self.in_dim};"
                f" build it with in_dim={x.shape[-1]}"
            )
        check_key_padding_mask(key_padding_mask, x)
        h = self.lm(self.proj_in(x), key_padding_mask)
        out = self.proj_out(self.norm(h))
        if key_padding_mask is not None:
            out = out.masked_fill(key_padding_mask[..., None], 0.0)
        return out

    def param_lr_factors(self) -> dict[str, float]:
        """Rate factors of the block's trainable core matrices for the optimizer
        (`lm4vis.train.optim.lr_factors`): the MLP control's width-aware (muP) rates, with the
        host's token width as the base. The adapters and every other variant keep factor 1."""
        declare = getattr(self.lm, "lr_multipliers", None)
        if not callable(declare):
            return {}
        return {f"lm.{name}": f for name, f in declare(self.in_dim).items() if f != 1.0}

    def param_counts(self) -> dict[str, int]:
        """Trainable and frozen parameter counts of the whole block."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return {"trainable": trainable, "frozen": frozen}

    def block_config(self) -> dict[str, Any]:
        """What the block was built with; a checkpoint loads only into a block built alike."""
        return {
            "variant": self.variant,
            "final_norm": self.final_norm,
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "lm_dim": self.lm_dim,
            "layer_indices": list(self.layer_indices),
            "lm_config": self.lm_config.to_dict(),
        }

    def get_extra_state(self) -> dict[str, Any]:
        return {
            **self.block_config(),
            "lm_source": self.lm_source,
            "lm_config_source": self.lm_config_source,
            "lm_inline": self.save_lm_weights,
            "lm_hash": None if self.save_lm_weights else self.lm_source_hash,
            # the dtype the layers were held in when saved; the hash does not depend on it
            "lm_dtype": str(next(self.lm.parameters()).dtype).removeprefix("torch."),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        differences = self._differences(state)
        if differences:
            of = f" of {state['lm_config_source']}" if state.get("lm_config_source") else ""
            raise ValueError(
                f"the checkpoint holds a {state.get('variant')!r} block built differently from "
                f"this model's {self.variant!r} block: {'; '.join(differences)}. Build the model "
                f"with the checkpoint's block config (LM layers {state.get('layer_indices')}{of})"
            )

    def _differences(self, state: dict[str, Any]) -> list[str]:
        """Every key of `block_config` on which ``state`` (a checkpoint's extra state) differs."""
        out = []
        for key, ours in self.block_config().items():
            theirs = state.get(key, _UNRECORDED)
            if key == "variant":
                theirs = OLD_VARIANT_NAMES.get(theirs, theirs)  # saved before the one vocabulary
            if key == "lm_config" and isinstance(theirs, dict):
                out += [f"lm_config.{k}: checkpoint {theirs.get(k, _UNRECORDED)!r}, this model {v!r}"
                        for k, v in ours.items() if theirs.get(k, _UNRECORDED) != v]
                out += [f"lm_config.{k}: checkpoint {theirs[k]!r}, this model {_UNRECORDED!r}"
                        for k in theirs.keys() - ours.keys()]
            elif theirs != ours:
                out.append(f"{key}: checkpoint {theirs!r}, this model {ours!r}")
        return out

    def extra_repr(self) -> str:
        return f"variant={self.variant}, in_dim={self.in_dim}, lm_dim={self.lm_dim}, out_dim={self.out_dim}"


class _Unrecorded:
    """A key a checkpoint does not record (saved by an older lm4vis)."""

    def __repr__(self) -> str:
        return "<not recorded>"


_UNRECORDED = _Unrecorded()


def _drop_lm_weights(module: FrozenLMBlock, state_dict: dict, prefix: str, local_metadata) -> None:
    if module.save_lm_weights:
        return
    for key in [k for k in state_dict if k.startswith(prefix + "lm.")]:
        del state_dict[key]


def _restore_lm_weights(module: FrozenLMBlock, state_dict: dict, prefix: str, *args) -> None:
    """Loading a by-reference checkpoint: check the hash, then supply the layers we hold."""
    extra = state_dict.get(prefix + "_extra_state")
    if extra is None or extra.get("lm_inline", True):
        return
    if module._differences(extra):
        return  # set_extra_state, which runs next, names them
    if extra.get("lm_hash") != module.lm_source_hash:
        raise ValueError(
            f"the LM layers read from {module.lm_source} differ from the ones this checkpoint was "
            f"trained with ({extra.get('lm_source')}, layers {extra.get('layer_indices')}): "
            "content hash mismatch. Point the model at the same checkpoint"
        )
    for key, value in module.lm.state_dict().items():
        state_dict.setdefault(prefix + "lm." + key, value)
