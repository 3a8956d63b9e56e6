"""Hugging Face model directories: ``config.json`` + safetensors or ``pytorch_model.bin``.

Three pure pieces and one reader:

- `lm_config_from_hf` turns a ``config.json`` dict into an `LMConfig`;
- one key-mapping function per family (`llama_layer_rules`, `opt_layer_rules`,
  `gpt2_layer_rules`, `gpt_neox_layer_rules`) says, for one layer, which Hugging Face tensor
  feeds which canonical `LMLayer` name and how (slice of a fused tensor, Conv1D transpose);
- `checked_safetensors_header` validates a safetensors header against the file size before
  the safetensors library ever sees the file;
- `HFReader` reads only the tensors of the requested layer and never writes anything.

transformers itself is never imported here: the mapping is explicit, and the parity tests
check it against transformers' own decoder layers.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor

from ..lm.config import SUPPORTED_FAMILIES, LMConfig
from .base import CheckpointError, CheckpointReader

__all__ = ["HFReader", "lm_config_from_hf", "layer_rules", "TensorRule",
           "checked_safetensors_header", "WEIGHT_FILES"]

#: Weight files looked for, in order of preference.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")

_HF_MODEL_TYPES = tuple(t for types in SUPPORTED_FAMILIES.values() for t in types)

# Hugging Face activation names -> LMConfig activations. gelu_new, gelu_fast and
# gelu_pytorch_tanh are the same tanh approximation written three ways.
_ACTIVATIONS = {
    "silu": "silu", "swish": "silu", "relu": "relu", "gelu": "gelu",
    "gelu_new": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
}

# Per-layer tensors that are buffers, not weights (old GPT-2 / GPT-NeoX saves carry the causal
# mask and rotary tables); they are not read.
_IGNORED_LAYER_TENSORS = re.compile(
    r"^(attn\.(masked_)?bias|attention\.(masked_)?bias|(self_attn|attention)\.rotary_emb\.inv_freq)$"
)


# --------------------------------------------------------------------------------------------
# config.json -> LMConfig
# --------------------------------------------------------------------------------------------

def _need(cfg: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    raise CheckpointError(
        f"config.json of model_type {cfg.get('model_type')!r} has no {' / '.join(keys)}; "
        "the file is incomplete: re-save it with save_pretrained"
    )


def _activation(name: str, model_type: str) -> str:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise CheckpointError(
            f"activation {name!r} of this {model_type} checkpoint is not supported; "
            f"supported: {', '.join(sorted(_ACTIVATIONS))}"
        ) from None


def _rope(cfg: dict[str, Any], default_theta: float, default_fraction: float) -> tuple[float, float]:
    """(rope_theta, fraction of head_dim rotated) from old (flat) or new (rope_parameters) keys.

    Rotary scaling (llama3, linear, yarn) is not represented: lm4vis never applies rotary in
    the vision path, and the verification switch compares short sequences only.
    """
    params = cfg.get("rope_parameters") or {}
    if "full_attention" in params:
        # Gemma 3 keeps one rotary per layer type; the global layers' one is the LM's own.
        # Sliding layers used rope_local_base_freq; that only matters to the verification switch.
        params = params["full_attention"] or {}
    theta = params.get("rope_theta", cfg.get("rope_theta", cfg.get("rotary_emb_base", default_theta)))
    fraction = params.get("partial_rotary_factor",
                          cfg.get("partial_rotary_factor", cfg.get("rotary_pct", default_fraction)))
    return float(theta), float(fraction)


def lm_config_from_hf(cfg: dict[str, Any]) -> LMConfig:
    """The `LMConfig` of a Hugging Face ``config.json`` (already parsed).

    Multimodal Gemma 3 configs are read through their nested ``text_config``. Keys that
    ``save_pretrained`` may omit fall back to transformers' defaults for that ``model_type``.

    Sliding-window attention (Mistral, Qwen2, Gemma 2/3) is deliberately not represented:
    lm4vis attends bidirectionally to all visual tokens, so no window is ever applied.

    Args:
        cfg: the parsed ``config.json``.

    Raises:
        CheckpointError: unsupported ``model_type`` (the message lists the supported ones) or
            a feature the shared layer cannot reproduce exactly.
    """
    model_type = cfg.get("model_type")
    if model_type == "gemma3":  # multimodal: the language model's config is nested
        cfg = {"model_type": "gemma3_text", **(cfg.get("text_config") or {})}
        model_type = cfg["model_type"]
    if model_type not in _HF_MODEL_TYPES:
        raise CheckpointError(
            f"model_type {model_type!r} is not supported; supported: {', '.join(_HF_MODEL_TYPES)}"
        )
    builder = {
        "llama": _llama_like, "mistral": _llama_like, "qwen2": _llama_like, "qwen3": _llama_like,
        "gemma": _gemma, "gemma2": _gemma, "gemma3_text": _gemma,
        "opt": _opt, "gpt2": _gpt2, "gpt_neox": _gpt_neox,
    }[model_type]
    try:
        return builder(cfg, model_type)
    except CheckpointError:
        raise
    except ValueError as e:  # LMConfig's own consistency checks
        raise CheckpointError(
            f"config.json of this {model_type} checkpoint describes an impossible layer: {e}; "
            "fix config.json or use the checkpoint's original one"
        ) from None


def _llama_like(cfg: dict[str, Any], model_type: str) -> LMConfig:
    hidden, heads = _need(cfg, "hidden_size"), _need(cfg, "num_attention_heads")
    # Defaults where transformers' config classes differ from the plain llama ones.
    kv_default = {"mistral": 8}.get(model_type, heads)
    head_dim_default = 128 if model_type == "qwen3" else hidden // heads
    bias = bool(cfg.get("attention_bias", False))
    theta, _ = _rope(cfg, 10000.0, 1.0)
    return LMConfig(
        family="llama",
        lm_dim=hidden,
        num_layers=_need(cfg, "num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or kv_default,
        head_dim=cfg.get("head_dim") or head_dim_default,
        ffn_dim=_need(cfg, "intermediate_size"),
        norm="rms",
        norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        qk_norm=model_type == "qwen3",
        # Qwen2 hard-codes bias on q/k/v and none on o; the others follow attention_bias.
        qkv_bias=True if model_type == "qwen2" else bias,
        o_bias=False if model_type == "qwen2" else bias,
        mlp_bias=bool(cfg.get("mlp_bias", False)),
        mlp="gated",
        act=_activation(cfg.get("hidden_act", "silu"), model_type),
        rope_theta=theta,
        initializer_range=float(cfg.get("initializer_range", 0.02)),
    )


def _gemma(cfg: dict[str, Any], model_type: str) -> LMConfig:
    gemma1 = model_type == "gemma"
    # Gemma 1 configs name the activation hidden_act, Gemma 2/3 hidden_activation. In Gemma 1
    # releases the legacy value "gelu" means the tanh approximation (GemmaConfig rewrites it).
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_pytorch_tanh"
    if gemma1 and act == "gelu":
        act = "gelu_pytorch_tanh"
    heads = cfg.get("num_attention_heads") or (16 if gemma1 else 8)
    head_dim = cfg.get("head_dim") or 256
    softcap_default = 50.0 if model_type == "gemma2" else None
    softcap = None if gemma1 else cfg.get("attn_logit_softcapping", softcap_default)
    scalar = None if gemma1 else cfg.get("query_pre_attn_scalar", 256)
    bias = bool(cfg.get("attention_bias", False))
    theta, _ = _rope(cfg, 1_000_000.0 if model_type == "gemma3_text" else 10000.0, 1.0)
    return LMConfig(
        family="gemma",
        lm_dim=_need(cfg, "hidden_size"),
        num_layers=_need(cfg, "num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or (16 if gemma1 else 4),
        head_dim=head_dim,
        ffn_dim=_need(cfg, "intermediate_size"),
        norm="rms",
        norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        norm_unit_offset=True,
        sandwich_norm=not gemma1,
        qk_norm=model_type == "gemma3_text",
        qkv_bias=bias,
        o_bias=bias,
        mlp="gated",
        act=_activation(act, model_type),
        # Gemma 2/3 scale by query_pre_attn_scalar, which need not equal head_dim.
        attn_scale=None if scalar is None else float(scalar) ** -0.5,
        attn_softcap=None if softcap is None else float(softcap),
        rope_theta=theta,
        initializer_range=float(cfg.get("initializer_range", 0.02)),
    )


def _opt(cfg: dict[str, Any], model_type: str) -> LMConfig:
    if cfg.get("layer_norm_elementwise_affine", True) is False:
        raise CheckpointError(
            "this OPT checkpoint has layer_norm_elementwise_affine=false (norms without weights), "
            "which lm4vis does not read; use an OPT checkpoint with affine norms"
        )
    bias = bool(cfg.get("enable_bias", True))
    return LMConfig(
        family="opt",
        lm_dim=_need(cfg, "hidden_size"),
        num_layers=_need(cfg, "num_hidden_layers"),
        num_heads=_need(cfg, "num_attention_heads"),
        ffn_dim=_need(cfg, "ffn_dim"),
        norm="layer",
        norm_eps=1e-5,  # OPT builds nn.LayerNorm with its default eps; config.json has none
        # OPT-350m normalises after each residual add.
        norm_position="pre" if cfg.get("do_layer_norm_before", True) else "post",
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=bias,
        mlp="plain",
        act=_activation(cfg.get("activation_function", "relu"), model_type),
        rope_theta=None,
        initializer_range=float(cfg.get("init_std", 0.02)),
    )


def _gpt2(cfg: dict[str, Any], model_type: str) -> LMConfig:
    if cfg.get("scale_attn_by_inverse_layer_idx"):
        raise CheckpointError(
            "this GPT-2 checkpoint has scale_attn_by_inverse_layer_idx=true (a different attention "
            "scale in every layer), which one LMConfig cannot express; use a checkpoint without it"
        )
    if cfg.get("add_cross_attention"):
        raise CheckpointError(
            "this GPT-2 checkpoint has cross-attention layers (add_cross_attention=true); lm4vis "
            "reads decoder-only language models: use a plain GPT-2 checkpoint"
        )
    # reorder_and_upcast_attn only reorders the scale and computes the scores in fp32, which
    # the shared layer does anyway; it changes nothing in fp32, so it is accepted.
    hidden, heads = _need(cfg, "n_embd", "hidden_size"), _need(cfg, "n_head", "num_attention_heads")
    return LMConfig(
        family="gpt2",
        lm_dim=hidden,
        num_layers=_need(cfg, "n_layer", "num_hidden_layers"),
        num_heads=heads,
        ffn_dim=cfg.get("n_inner") or 4 * hidden,
        norm="layer",
        norm_eps=float(cfg.get("layer_norm_epsilon", 1e-5)),
        qkv_bias=True,
        o_bias=True,
        mlp_bias=True,
        mlp="plain",
        act=_activation(cfg.get("activation_function", "gelu_new"), model_type),
        attn_scale=None if cfg.get("scale_attn_weights", True) else 1.0,
        rope_theta=None,
        initializer_range=float(cfg.get("initializer_range", 0.02)),
    )


def _gpt_neox(cfg: dict[str, Any], model_type: str) -> LMConfig:
    hidden, heads = _need(cfg, "hidden_size"), _need(cfg, "num_attention_heads")
    theta, fraction = _rope(cfg, 10000.0, 0.25)
    bias = bool(cfg.get("attention_bias", True))
    return LMConfig(
        family="gpt_neox",
        lm_dim=hidden,
        num_layers=_need(cfg, "num_hidden_layers"),
        num_heads=heads,
        ffn_dim=_need(cfg, "intermediate_size"),
        norm="layer",
        norm_eps=float(cfg.get("layer_norm_eps", 1e-5)),
        parallel_residual=bool(cfg.get("use_parallel_residual", True)),
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=True,  # GPTNeoXMLP always has biases
        mlp="plain",
        act=_activation(cfg.get("hidden_act", "gelu"), model_type),
        rope_theta=theta,
        rotary_dim=int(hidden // heads * fraction),
        initializer_range=float(cfg.get("initializer_range", 0.02)),
    )


# --------------------------------------------------------------------------------------------
# Key mapping: Hugging Face names of one layer -> canonical LMLayer names
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorRule:
    """Where one canonical tensor comes from.

    Args:
        source: the Hugging Face name, relative to the layer prefix (``self_attn.q_proj.weight``).
        transform: applied to the source tensor (a slice of a fused tensor, a transpose).
    """

    source: str
    transform: Callable[[Tensor], Tensor] | None = None

    def apply(self, t: Tensor) -> Tensor:
        if self.transform is None:
            return t
        # A fresh tensor, never a view: q/k/v slices of one fused tensor must not share storage
        # (safetensors refuses to save shared tensors, and a view pins the whole fused tensor).
        return self.transform(t).clone(memory_format=torch.contiguous_format)


def _columns_t(part: int, parts: int, t: Tensor) -> Tensor:
    """Conv1D stores (in, out): take the ``part``-th block of columns and transpose to (out, in)."""
    width = t.shape[-1] // parts
    block = t[..., part * width:(part + 1) * width]
    return block.t() if block.dim() == 2 else block


def _transpose(t: Tensor) -> Tensor:
    return t.t()


def _per_head(part: int, num_heads: int, t: Tensor) -> Tensor:
    """GPT-NeoX's fused rows are [q, k, v] per head: (heads * 3 * head_dim, ...)."""
    grouped = t.reshape(num_heads, 3, -1, *t.shape[1:])
    return grouped[:, part].reshape(-1, *t.shape[1:])


def _linear_rules(dst: str, src: str, bias: bool) -> dict[str, TensorRule]:
    rules = {f"{dst}.weight": TensorRule(f"{src}.weight")}
    if bias:
        rules[f"{dst}.bias"] = TensorRule(f"{src}.bias")
    return rules


def _norm_rules(dst: str, src: str, config: LMConfig) -> dict[str, TensorRule]:
    return _linear_rules(dst, src, config.norm == "layer")


def llama_layer_rules(config: LMConfig) -> dict[str, TensorRule]:
    """LLaMA, Mistral, Qwen2/3 and Gemma 1/2/3 (``model.layers.{i}.``)."""
    c = config
    rules: dict[str, TensorRule] = {}
    rules |= _norm_rules("attn_norm", "input_layernorm", c)
    for p in "qkv":
        rules |= _linear_rules(f"attn.{p}_proj", f"self_attn.{p}_proj", c.qkv_bias)
    rules |= _linear_rules("attn.o_proj", "self_attn.o_proj", c.o_bias)
    if c.qk_norm:
        rules["attn.q_norm.weight"] = TensorRule("self_attn.q_norm.weight")
        rules["attn.k_norm.weight"] = TensorRule("self_attn.k_norm.weight")
    if c.sandwich_norm:
        # Gemma 2/3: "post_attention_layernorm" normalises the attention *output*; the norm in
        # front of the MLP is "pre_feedforward_layernorm".
        rules |= _norm_rules("post_attn_norm", "post_attention_layernorm", c)
        rules |= _norm_rules("mlp_norm", "pre_feedforward_layernorm", c)
        rules |= _norm_rules("post_mlp_norm", "post_feedforward_layernorm", c)
    else:
        rules |= _norm_rules("mlp_norm", "post_attention_layernorm", c)
    for p in ("gate", "up", "down"):
        rules |= _linear_rules(f"mlp.{p}_proj", f"mlp.{p}_proj", c.mlp_bias)
    return rules


def opt_layer_rules(config: LMConfig) -> dict[str, TensorRule]:
    """OPT (``model.decoder.layers.{i}.``); the per-layer "final_layer_norm" precedes the MLP."""
    c = config
    rules: dict[str, TensorRule] = {}
    rules |= _norm_rules("attn_norm", "self_attn_layer_norm", c)
    for p in "qkv":
        rules |= _linear_rules(f"attn.{p}_proj", f"self_attn.{p}_proj", c.qkv_bias)
    rules |= _linear_rules("attn.o_proj", "self_attn.out_proj", c.o_bias)
    rules |= _norm_rules("mlp_norm", "final_layer_norm", c)
    rules |= _linear_rules("mlp.up_proj", "fc1", c.mlp_bias)
    rules |= _linear_rules("mlp.down_proj", "fc2", c.mlp_bias)
    return rules


def gpt2_layer_rules(config: LMConfig) -> dict[str, TensorRule]:
    """GPT-2 (``transformer.h.{i}.``): Conv1D weights are (in, out); ``c_attn`` fuses q, k, v."""
    rules: dict[str, TensorRule] = {}
    rules |= _norm_rules("attn_norm", "ln_1", config)
    for part, p in enumerate("qkv"):
        rules[f"attn.{p}_proj.weight"] = TensorRule("attn.c_attn.weight", partial(_columns_t, part, 3))
        rules[f"attn.{p}_proj.bias"] = TensorRule("attn.c_attn.bias", partial(_columns_t, part, 3))
    rules["attn.o_proj.weight"] = TensorRule("attn.c_proj.weight", _transpose)
    rules["attn.o_proj.bias"] = TensorRule("attn.c_proj.bias")
    rules |= _norm_rules("mlp_norm", "ln_2", config)
    rules["mlp.up_proj.weight"] = TensorRule("mlp.c_fc.weight", _transpose)
    rules["mlp.up_proj.bias"] = TensorRule("mlp.c_fc.bias")
    rules["mlp.down_proj.weight"] = TensorRule("mlp.c_proj.weight", _transpose)
    rules["mlp.down_proj.bias"] = TensorRule("mlp.c_proj.bias")
    return rules


def gpt_neox_layer_rules(config: LMConfig) -> dict[str, TensorRule]:
    """GPT-NeoX (``gpt_neox.layers.{i}.``): ``query_key_value`` rows are grouped per head.

    transformers views the fused output as (..., heads, 3 * head_dim) and chunks the last dim
    into q, k, v, so head h's rows are [q_h, k_h, v_h], not [all q, all k, all v].
    """
    c = config
    rules: dict[str, TensorRule] = {}
    rules |= _norm_rules("attn_norm", "input_layernorm", c)
    for part, p in enumerate("qkv"):
        split = partial(_per_head, part, c.num_heads)
        rules[f"attn.{p}_proj.weight"] = TensorRule("attention.query_key_value.weight", split)
        if c.qkv_bias:
            rules[f"attn.{p}_proj.bias"] = TensorRule("attention.query_key_value.bias", split)
    rules |= _linear_rules("attn.o_proj", "attention.dense", c.o_bias)
    rules |= _norm_rules("mlp_norm", "post_attention_layernorm", c)
    rules |= _linear_rules("mlp.up_proj", "mlp.dense_h_to_4h", c.mlp_bias)
    rules |= _linear_rules("mlp.down_proj", "mlp.dense_4h_to_h", c.mlp_bias)
    return rules


_LAYER_RULES: dict[str, Callable[[LMConfig], dict[str, TensorRule]]] = {
    "llama": llama_layer_rules, "gemma": llama_layer_rules, "opt": opt_layer_rules,
    "gpt2": gpt2_layer_rules, "gpt_neox": gpt_neox_layer_rules,
}

# (layer prefix, final-norm prefix) pairs as saved in practice: by a *ForCausalLM, by a bare
# base *Model, and for Gemma 3 multimodal by transformers 5 and by earlier versions.
_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "llama": (("model.layers.", "model.norm."), ("layers.", "norm."),
              ("model.language_model.layers.", "model.language_model.norm."),
              ("language_model.model.layers.", "language_model.model.norm."),
              ("language_model.layers.", "language_model.norm.")),
    "opt": (("model.decoder.layers.", "model.decoder.final_layer_norm."),
            ("decoder.layers.", "decoder.final_layer_norm.")),
    "gpt2": (("transformer.h.", "transformer.ln_f."), ("h.", "ln_f.")),
    "gpt_neox": (("gpt_neox.layers.", "gpt_neox.final_layer_norm."),
                 ("layers.", "final_layer_norm.")),
}
_PREFIXES["gemma"] = _PREFIXES["llama"]


def layer_rules(config: LMConfig) -> dict[str, TensorRule]:
    """Canonical name -> `TensorRule` for one layer of ``config.family`` (pure, no I/O).

    Args:
        config: the layer config (decides biases, q/k norms, sandwich norms, head grouping).
    """
    return _LAYER_RULES[config.family](config)


# --------------------------------------------------------------------------------------------
# safetensors headers, checked before the library reads anything
# --------------------------------------------------------------------------------------------

_ST_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit


@dataclass(frozen=True)
class _Entry:
    file: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    nbytes: int


def checked_safetensors_header(path: str) -> dict[str, _Entry]:
    """Tensor entries of a safetensors file, after checking every size against the file.

    Args:
        path: the ``.safetensors`` file.

    Raises:
        CheckpointError: truncated file, header length beyond the file, bad JSON, unknown
            dtype, or data offsets beyond the file or inconsistent with the shape.
    """
    fix = "the file is truncated or corrupt: download or save it again"
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is {size} bytes, too short for a safetensors header; {fix}")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(size - 8, _MAX_HEADER):
            raise CheckpointError(
                f"{path}: the safetensors header claims {header_len} bytes but the file has only "
                f"{size - 8} after the length field; {fix}"
            )
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(
            f"{path}: the safetensors header is not valid JSON ({e}); {fix}"
        ) from None
    data_size = size - 8 - header_len
    entries: dict[str, _Entry] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _ST_DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path}: malformed safetensors entry for {name!r}: {info!r}; {fix}"
            ) from None
        numel = 1
        for s in shape:
            numel *= s
        expected = numel * dtype.itemsize
        if not 0 <= begin <= end or end > data_size:
            raise CheckpointError(
                f"{path}: tensor {name!r} lies at bytes {begin}..{end} of the data but the file "
                f"holds only {data_size} data bytes; {fix}"
            )
        if end - begin != expected:
            raise CheckpointError(
                f"{path}: tensor {name!r} has {end - begin} bytes for shape {list(shape)} "
                f"{info['dtype']} ({expected} expected); {fix}"
            )
        entries[name] = _Entry(path, dtype, shape, expected)
    return entries


# --------------------------------------------------------------------------------------------
# The reader
# --------------------------------------------------------------------------------------------

def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class HFReader(CheckpointReader):
    """A Hugging Face model directory, read one layer at a time and never written to.

    Args:
        path: directory with ``config.json`` and ``model.safetensors``,
            ``model.safetensors.index.json``, ``pytorch_model.bin`` or
            ``pytorch_model.bin.index.json`` (first found wins, in that order).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        config_path = os.path.join(self.path, "config.json")
        try:
            with open(config_path, encoding="utf-8") as f:
                self.hf_config: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            raise CheckpointError(
                f"{self.path} has no config.json; point at a Hugging Face model directory"
            ) from None
        except (ValueError, UnicodeDecodeError) as e:
            raise CheckpointError(
                f"{config_path} is not valid JSON ({e}); download or save it again"
            ) from None
        super().__init__(self.path, lm_config_from_hf(self.hf_config))
        self.weights_file = self._find_weights()
        self.format = "safetensors" if "safetensors" in self.weights_file else "pytorch_model.bin"
        self._headers: dict[str, dict[str, _Entry]] = {}
        self._stored_dtype: str | None = None
        self._file_of = self._tensor_files()
        self._layer_prefix, self._norm_prefix = self._find_prefixes()

    # -- discovery --------------------------------------------------------------------------

    def _find_weights(self) -> str:
        for name in WEIGHT_FILES:
            if os.path.isfile(os.path.join(self.path, name)):
                return name
        present = sorted(os.listdir(self.path))
        shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
        raise CheckpointError(
            f"no weights in {self.path} (it holds: {shown}); expected one of "
            f"{', '.join(WEIGHT_FILES)}. "
            "Re-save the model with save_pretrained (safetensors) or copy its weight files there"
        )

    def _tensor_files(self) -> dict[str, str]:
        """Tensor name -> file name, from the index or from the single file itself."""
        if self.weights_file.endswith(".index.json"):
            index_path = os.path.join(self.path, self.weights_file)
            try:
                with open(index_path, encoding="utf-8") as f:
                    weight_map = json.load(f)["weight_map"]
            except (ValueError, KeyError, UnicodeDecodeError) as e:
                raise CheckpointError(
                    f"{index_path} is not a valid shard index ({e!r}); download or save it again"
                ) from None
            for shard in sorted(set(weight_map.values())):
                if not os.path.isfile(os.path.join(self.path, shard)):
                    raise CheckpointError(
                        f"{self.path}: shard {shard} listed in {self.weights_file} is missing; "
                        "download every shard of the checkpoint"
                    )
            return dict(weight_map)
        if self.format == "safetensors":
            return {name: self.weights_file for name in self._header(self.weights_file)}
        return {name: self.weights_file for name in self._load_bin(self.weights_file)}

    def _find_prefixes(self) -> tuple[str, str]:
        for layer_prefix, norm_prefix in _PREFIXES[self.config.family]:
            if any(name.startswith(f"{layer_prefix}0.") for name in self._file_of):
                return layer_prefix, norm_prefix
        tried = ", ".join(p for p, _ in _PREFIXES[self.config.family])
        raise CheckpointError(
            f"{self.path}: no tensor of layer 0 under any known {self.config.family} prefix "
            f"({tried}); the weights do not belong to this config.json"
        )

    # -- file access ------------------------------------------------------------------------

    def _header(self, file: str) -> dict[str, _Entry]:
        if file not in self._headers:
            self._headers[file] = checked_safetensors_header(os.path.join(self.path, file))
        return self._headers[file]

    def _load_bin(self, file: str) -> dict[str, Tensor]:
        """A memory-mapped ``.bin`` state dict; a pickle that wants to run code is refused."""
        path = os.path.join(self.path, file)
        try:
            try:
                state = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
            except RuntimeError as e:
                if "zipfile" not in str(e) and "mmap" not in str(e):
                    raise
                # Pre-1.6 (non-zip) torch.save files cannot be memory-mapped.
                state = torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as e:
            found = re.search(r"GLOBAL ([\w.]+)", str(e)) or re.search(r"global[: ]+([\w.]+)", str(e))
            what = found.group(1) if found else "code outside torch's allow-list"
            raise CheckpointError(
                f"{path} was refused: its pickle tries to import/execute {what}, which a weights "
                "file never needs; re-save the model with safetensors (save_pretrained) from a "
                "trusted copy"
            ) from None
        except (RuntimeError, EOFError, OSError) as e:
            raise CheckpointError(f"{path} cannot be read ({e}); download or save it again") from None
        if not isinstance(state, dict):
            raise CheckpointError(
                f"{path} holds a {type(state).__name__}, not a state dict; re-save it"
            )
        return state

    def _read(self, names: list[str], dtype: torch.dtype | None) -> dict[str, Tensor]:
        """Read exactly ``names`` (full Hugging Face names), file by file."""
        by_file: dict[str, list[str]] = {}
        for name in names:
            if name not in self._file_of:
                raise CheckpointError(
                    f"tensor {name!r} is missing from {os.path.join(self.path, self.weights_file)}; "
                    "the checkpoint is incomplete or its config.json does not match its weights"
                )
            by_file.setdefault(self._file_of[name], []).append(name)
        out: dict[str, Tensor] = {}
        for file, file_names in by_file.items():
            path = os.path.join(self.path, file)
            if self.format == "safetensors":
                from safetensors import safe_open

                header = self._header(file)
                for name in file_names:
                    if name not in header:
                        raise CheckpointError(
                            f"tensor {name!r} is missing from {path} although the index lists it "
                            "there; download the shard again"
                        )
                    # One open per tensor: the mapping of earlier tensors is released at once.
                    with safe_open(path, framework="pt", device="cpu") as f:
                        out[name] = f.get_tensor(name)
            else:
                state = self._load_bin(file)
                for name in file_names:
                    if name not in state:
                        raise CheckpointError(
                            f"tensor {name!r} is missing from {path} although the index lists it "
                            "there; download the shard again"
                        )
                    # Copy out of the memory map so the file is released when `state` goes.
                    t = state[name]
                    out[name] = t.clone() if dtype in (None, t.dtype) else t.to(dtype)
                del state
        if dtype is not None:
            out = {k: v.to(dtype) for k, v in out.items()}  # no-op for what is already cast
        return out

    def _target_dtype(self, dtype: torch.dtype | None) -> torch.dtype:
        # Mixed storage (e.g. fp32 norms next to bf16 matrices) would break the matmuls:
        # without an explicit dtype, every tensor, final norm included, takes the dominant
        # stored dtype of the layers.
        return dtype if dtype is not None else getattr(torch, self.stored_dtype())

    # -- CheckpointReader API ---------------------------------------------------------------

    def _layer_names(self, index: int) -> list[str]:
        prefix = f"{self._layer_prefix}{index}."
        return [n for n in self._file_of if n.startswith(prefix)]

    def _check_index(self, index: int) -> None:
        n = self.config.num_layers
        if not 0 <= index < n:
            raise CheckpointError(
                f"layer index {index} is out of range; the checkpoint has {n} layers (0..{n - 1})"
            )

    def layer_state(self, index: int, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        self._check_index(index)
        prefix = f"{self._layer_prefix}{index}."
        rules = layer_rules(self.config)
        sources = sorted({rule.source for rule in rules.values()})
        present = {n[len(prefix):] for n in self._layer_names(index)}
        unused = sorted(n for n in present - set(sources) if not _IGNORED_LAYER_TENSORS.match(n))
        if unused:
            raise CheckpointError(
                f"{self.path}: layer {index} has tensors a {self.config.family} layer with this "
                f"config.json does not use: {unused}; config.json and the weights disagree"
            )
        raw = self._read([prefix + s for s in sources], self._target_dtype(dtype))
        return {name: rule.apply(raw[prefix + rule.source]) for name, rule in rules.items()}

    def final_norm_state(self, dtype: torch.dtype | None = None) -> dict[str, Tensor] | None:
        if self.config.norm_position == "post" or self.hf_config.get("_remove_final_layer_norm"):
            return None  # OPT-350m style: every layer already ends with a norm
        suffixes = ("weight", "bias") if self.config.norm == "layer" else ("weight",)
        raw = self._read([self._norm_prefix + s for s in suffixes], self._target_dtype(dtype))
        return {s: raw[self._norm_prefix + s] for s in suffixes}

    def tensor(self, name: str, dtype: torch.dtype | None = None) -> Tensor:
        return self._read([name], dtype)[name]

    def tensor_names(self) -> list[str]:
        return sorted(self._file_of)

    def _layer_sources(self, index: int) -> list[str]:
        """Full names of the tensors layer ``index`` is built from (buffers excluded)."""
        prefix = f"{self._layer_prefix}{index}."
        sources = {rule.source for rule in layer_rules(self.config).values()}
        return [prefix + s for s in sorted(sources) if prefix + s in self._file_of]

    def layer_bytes(self, index: int) -> int:
        """Bytes of the weights of layer ``index``, from the safetensors headers alone."""
        self._check_index(index)
        if self.format != "safetensors":
            return 0
        return sum(self._header(self._file_of[n])[n].nbytes for n in self._layer_sources(index))

    def stored_dtype(self) -> str:
        """The dtype most of layer 0's tensors are stored in (e.g. ``"bfloat16"``)."""
        if self._stored_dtype is None:
            self._stored_dtype = self._dominant_dtype()
        return self._stored_dtype

    def _dominant_dtype(self) -> str:
        names = self._layer_sources(0)
        if self.format == "safetensors":
            dtypes = Counter(self._header(self._file_of[n])[n].dtype for n in names)
        else:
            dtypes = Counter()
            for file in sorted({self._file_of[n] for n in names}):
                state = self._load_bin(file)
                dtypes.update(state[n].dtype for n in names if n in state)
                del state
        if not dtypes:
            raise CheckpointError(f"{self.path}: layer 0 holds none of the tensors of a "
                                  f"{self.config.family} layer; the weights do not match config.json")
        return _dtype_name(dtypes.most_common(1)[0][0])
