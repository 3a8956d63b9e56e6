"""Typed description of one decoder layer of a language model.

Every family that lm4vis reads (LLaMA-style, OPT, GPT-2, GPT-NeoX, Gemma) is expressed as one
`LMConfig`; the single layer implementation in `lm4vis.lm.layers` reads nothing else. The
checkpoint readers fill it from the checkpoint's own config, so no width is ever hard-coded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

NormKind = Literal["rms", "layer"]
MLPKind = Literal["gated", "plain"]
Activation = Literal["silu", "gelu", "gelu_tanh", "relu"]

#: Families lm4vis can read, with the Hugging Face ``model_type`` values that map onto them.
SUPPORTED_FAMILIES: dict[str, tuple[str, ...]] = {
    "llama": ("llama", "mistral", "qwen2", "qwen3"),
    "opt": ("opt",),
    "gpt2": ("gpt2",),
    "gpt_neox": ("gpt_neox",),
    "gemma": ("gemma", "gemma2", "gemma3", "gemma3_text"),
}


@dataclass
class LMConfig:
    """Hyper-parameters of one decoder layer, as the checkpoint defines them.

    Args:
        family: canonical family name, a key of ``SUPPORTED_FAMILIES``.
        lm_dim: residual width of the language model.
        num_layers: number of decoder layers in the whole checkpoint.
        num_heads: attention (query) heads.
        num_kv_heads: key/value heads; fewer than ``num_heads`` means grouped-query attention.
        head_dim: width of one head; ``lm_dim // num_heads`` unless the checkpoint says otherwise.
        ffn_dim: hidden width of the feed-forward network.
        norm: ``"rms"`` (RMSNorm) or ``"layer"`` (LayerNorm with bias).
        norm_eps: epsilon of every norm.
        norm_unit_offset: Gemma stores norm weights as ``w`` and applies ``1 + w``.
        norm_position: ``"pre"`` (norm before each sub-layer) or ``"post"`` (OPT-350m: after
            the residual add).
        parallel_residual: GPT-NeoX: ``x + attn(ln1(x)) + mlp(ln2(x))``.
        sandwich_norm: Gemma 2/3: extra norms on the outputs of attention and MLP.
        qk_norm: Gemma 3 / Qwen3: a norm over ``head_dim`` on queries and keys.
        qkv_bias, o_bias, mlp_bias: which projections carry a bias.
        mlp: ``"gated"`` (SwiGLU/GeGLU: gate, up, down) or ``"plain"`` (up, act, down).
        act: activation of the MLP.
        attn_scale: multiplier of ``q @ k^T``; ``head_dim ** -0.5`` when None.
        attn_softcap: Gemma 2 soft-capping of attention logits (None: off).
        rope_theta: base of the rotary embedding the LM was trained with. lm4vis never applies
            rotary in the vision path; the value is kept for the verification switch only.
        rotary_dim: how many dims of each head rotary touched (GPT-NeoX uses a fraction).
        initializer_range: std of the normal init used by the ``random`` control.
    """

    family: str
    lm_dim: int
    num_layers: int
    num_heads: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    ffn_dim: int | None = None
    norm: NormKind = "rms"
    norm_eps: float = 1e-5
    norm_unit_offset: bool = False
    norm_position: Literal["pre", "post"] = "pre"
    parallel_residual: bool = False
    sandwich_norm: bool = False
    qk_norm: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    mlp: MLPKind = "gated"
    act: Activation = "silu"
    attn_scale: float | None = None
    attn_softcap: float | None = None
    rope_theta: float | None = 10000.0
    rotary_dim: int | None = None
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.family not in SUPPORTED_FAMILIES:
            raise ValueError(
                f"unsupported family {self.family!r}; supported: {', '.join(SUPPORTED_FAMILIES)}"
            )
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_heads
        if self.head_dim is None:
            if self.lm_dim % self.num_heads:
                raise ValueError(
                    f"lm_dim={self.lm_dim} is not divisible by num_heads={self.num_heads}; "
                    "give head_dim explicitly"
                )
            self.head_dim = self.lm_dim // self.num_heads
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}"
            )
        if self.ffn_dim is None:
            self.ffn_dim = 4 * self.lm_dim
        if self.attn_scale is None:
            self.attn_scale = self.head_dim**-0.5
        if self.rotary_dim is None:
            self.rotary_dim = self.head_dim
        for name in ("lm_dim", "num_layers", "num_heads", "head_dim", "ffn_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def layer_params(self) -> int:
        """Parameter count of one decoder layer."""
        d, h, kv, hd, f = self.lm_dim, self.num_heads, self.num_kv_heads, self.head_dim, self.ffn_dim
        n = d * h * hd + 2 * d * kv * hd + h * hd * d
        if self.qkv_bias:
            n += h * hd + 2 * kv * hd
        if self.o_bias:
            n += d
        n += (3 if self.mlp == "gated" else 2) * d * f
        if self.mlp_bias:
            n += (2 * f if self.mlp == "gated" else f) + d
        norm_params = d if self.norm == "rms" else 2 * d
        n += norm_params * (4 if self.sandwich_norm else 2)
        if self.qk_norm:
            n += 2 * hd
        return n

    def layer_flops_per_token(self, num_tokens: int) -> int:
        """Multiply-adds x2 of one layer for one token attending to ``num_tokens`` tokens."""
        d, h, kv, hd, f = self.lm_dim, self.num_heads, self.num_kv_heads, self.head_dim, self.ffn_dim
        matmul = d * h * hd + 2 * d * kv * hd + h * hd * d
        matmul += (3 if self.mlp == "gated" else 2) * d * f
        attention = 2 * h * hd * num_tokens  # q @ k^T and probs @ v
        return 2 * (matmul + attention)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown LMConfig keys: {sorted(unknown)}")
        return cls(**d)


def tiny_config(family: str = "llama", **overrides: Any) -> LMConfig:
    """A small config of the given family for tests, presets and stand-ins."""
    base: dict[str, Any] = dict(family=family, lm_dim=64, num_layers=2, num_heads=4, ffn_dim=128)
    if family == "llama":
        base.update(num_kv_heads=2)
    elif family == "opt":
        base.update(norm="layer", mlp="plain", act="relu", qkv_bias=True, o_bias=True,
                    mlp_bias=True, rope_theta=None)
    elif family == "gpt2":
        base.update(norm="layer", mlp="plain", act="gelu_tanh", qkv_bias=True, o_bias=True,
                    mlp_bias=True, rope_theta=None)
    elif family == "gpt_neox":
        base.update(norm="layer", mlp="plain", act="gelu", qkv_bias=True, o_bias=True,
                    mlp_bias=True, parallel_residual=True, rotary_dim=4)
    elif family == "gemma":
        base.update(num_kv_heads=1, head_dim=32, norm_unit_offset=True, act="gelu_tanh",
                    sandwich_norm=True, qk_norm=True, norm_eps=1e-6)
    base.update(overrides)
    return LMConfig(**base)
