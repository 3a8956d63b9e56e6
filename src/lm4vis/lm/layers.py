"""The one decoder-layer implementation shared by every family and every host.

Read top to bottom: norm -> attention -> MLP -> layer -> stack. Everything a family does
differently is a field of `LMConfig`; nothing here branches on a family name.

In the vision path there is no position information and no causal mask, as in Pang et al.:
rotary embeddings are never applied and absolute position embeddings live outside the layers.
`rope=` and `causal=` exist only so tests can check the weights against the original language
model; lm4vis itself never sets them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import LMConfig

AttentionImpl = Literal["auto", "sdpa", "matmul"]
ATTENTION_IMPLS: tuple[str, ...] = ("auto", "sdpa", "matmul")

_ACTIVATIONS = {
    "silu": F.silu,
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


class Norm(nn.Module):
    """RMSNorm or LayerNorm, with Gemma's ``1 + w`` option and an affine-free ("unit") form."""

    def __init__(
        self,
        dim: int,
        kind: str = "rms",
        eps: float = 1e-5,
        unit_offset: bool = False,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.kind, self.eps, self.unit_offset, self.dim = kind, eps, unit_offset, dim
        if affine:
            # Gemma's stored weight is an offset from 1, so "identity" is 0 there.
            self.weight = nn.Parameter(torch.zeros(dim) if unit_offset else torch.ones(dim))
            self.bias = nn.Parameter(torch.zeros(dim)) if kind == "layer" else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "layer":
            return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)
        # RMS statistics in fp32 even when the weights are bf16, as the reference models do.
        w = None
        if self.weight is not None:
            w = self.weight.float()
            w = 1.0 + w if self.unit_offset else w
        return F.rms_norm(x.float(), (self.dim,), w, self.eps).type_as(x)

    def extra_repr(self) -> str:
        return f"{self.dim}, kind={self.kind}, eps={self.eps}, unit_offset={self.unit_offset}"


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary embedding on the first ``cos.shape[-1]`` dims of each head (verification only)."""
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    x_rot = x_rot * cos + _rotate_half(x_rot) * sin
    return torch.cat((x_rot, x_pass), dim=-1)


def rope_tables(config: LMConfig, num_tokens: int, device=None) -> tuple[Tensor, Tensor]:
    """cos/sin tables of the LM's own rotary embedding (verification only)."""
    if config.rope_theta is None:
        raise ValueError(f"family {config.family!r} has no rotary embedding")
    rot = config.rotary_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, rot, 2, device=device).float() / rot))
    freqs = torch.outer(torch.arange(num_tokens, device=device).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def check_key_padding_mask(mask: Tensor | None, tokens: Tensor) -> None:
    """Refuse a key-padding mask that does not follow lm4vis's one convention.

    Args:
        mask: None, or a boolean tensor of shape (B, N), True where a token is padding.
        tokens: the (B, N, D) tokens the mask belongs to.
    """
    if mask is None:
        return
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = f"a {mask.dtype} tensor" if isinstance(mask, Tensor) else f"a {type(mask).__name__}"
        raise TypeError(
            f"key_padding_mask must be a boolean tensor of shape (B, N), True where a token is "
            f"padding; got {got}. A Hugging Face attention_mask (1 = keep) is the inverse: pass "
            "attention_mask == 0"
        )
    if mask.shape != tokens.shape[:2]:
        raise ValueError(
            f"key_padding_mask has shape {tuple(mask.shape)} but the tokens are "
            f"{tuple(tokens.shape)}; it must be (B, N) = {tuple(tokens.shape[:2])}, True where a "
            "token is padding"
        )


def _attn_mask(
    key_padding_mask: Tensor | None, causal: bool, n: int, device: torch.device
) -> Tensor | None:
    """Boolean mask, True where a query may attend to a key, broadcastable to (B, H, N, N)."""
    mask = None
    if key_padding_mask is not None:
        # A sample that is all padding would leave its queries no key at all: a softmax over
        # nothing but -inf, NaN in the matmul kernel (SDPA on the CPU returns zeros). Its
        # outputs are discarded, so let it attend to all its keys instead, in every kernel.
        keep = ~key_padding_mask | key_padding_mask.all(-1, keepdim=True)
        mask = keep[:, None, None, :]
    if causal:
        tri = torch.ones(n, n, dtype=torch.bool, device=device).tril()
        mask = tri if mask is None else mask & tri
    return mask


#: Longest sequence for which ``attention="auto"`` takes explicit matmuls over SDPA, per dtype,
#: on CPU. Measured by benchmarks/attention.py (table in the README): in bf16, SDPA's CPU flash
#: kernel has a large fixed cost, above all in its backward, that two AMX/AVX-512-bf16 matmuls
#: avoid (2-7x faster from 17 to 197 tokens, 1.2x at 577); at 785 tokens the N x N scores cost
#: more than they save. In fp32 neither wins consistently below 128 tokens and SDPA wins above,
#: so SDPA (fused, less memory) is kept.
MATMUL_MAX_TOKENS: dict[torch.dtype, int] = {torch.bfloat16: 512}


def matmul_is_faster(q: Tensor) -> bool:
    """The ``"auto"`` rule: on CPU, explicit matmuls up to `MATMUL_MAX_TOKENS` tokens; SDPA on
    longer sequences, other dtypes and GPUs (where its fused kernels win)."""
    limit = MATMUL_MAX_TOKENS.get(q.dtype) if q.device.type == "cpu" else None
    return limit is not None and q.shape[-2] <= limit


def attention_scores(
    q: Tensor, k: Tensor, mask: Tensor | None, scale: float, softcap: float | None = None,
) -> Tensor:
    """Logits ``q k^T * scale`` (soft-capped, masked to -inf), (B, H, N, N), from (B, H, N, D)
    queries and (B, KV, N, D) keys.

    Grouped-query heads are handled by folding each group's queries into the sequence axis,
    (B, KV, G*N, D), so keys are never repeated in memory. ``mask`` is boolean, True where a
    query may attend, broadcastable to (B, H, N, N).
    """
    b, h, n, d = q.shape
    kv = k.shape[1]
    groups = h // kv
    scores = (q * scale).reshape(b, kv, groups * n, d) @ k.transpose(-2, -1)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.view(b, kv, groups, n, n)
    if mask is not None:
        # split the mask's head axis into (KV, G) to match the scores
        scores = scores.masked_fill(~(mask.unsqueeze(1) if mask.dim() == 4 else mask), float("-inf"))
    return scores.view(b, h, n, n)


def matmul_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, scale: float,
    softcap: float | None = None,
) -> Tensor:
    """``softmax(q k^T * scale) v`` with explicit matmuls: (B, H, N, D) queries, (B, KV, N, D)
    keys and values -> (B, H, N, D); values are not repeated either (see `attention_scores`)."""
    b, h, n, d = q.shape
    kv = k.shape[1]
    probs = attention_scores(q, k, mask, scale, softcap).softmax(-1)
    return (probs.view(b, kv, (h // kv) * n, n) @ v).view(b, h, n, d)


class LMAttention(nn.Module):
    """Multi-head attention with grouped-query heads, optional q/k norms and bias."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        c = config
        self.num_heads, self.num_kv_heads, self.head_dim = c.num_heads, c.num_kv_heads, c.head_dim
        self.scale, self.softcap = c.attn_scale, c.attn_softcap
        self.q_proj = nn.Linear(c.lm_dim, c.num_heads * c.head_dim, bias=c.qkv_bias)
        self.k_proj = nn.Linear(c.lm_dim, c.num_kv_heads * c.head_dim, bias=c.qkv_bias)
        self.v_proj = nn.Linear(c.lm_dim, c.num_kv_heads * c.head_dim, bias=c.qkv_bias)
        self.o_proj = nn.Linear(c.num_heads * c.head_dim, c.lm_dim, bias=c.o_bias)
        if c.qk_norm:
            self.q_norm = Norm(c.head_dim, c.norm, c.norm_eps, c.norm_unit_offset)
            self.k_norm = Norm(c.head_dim, c.norm, c.norm_eps, c.norm_unit_offset)
        else:
            self.q_norm = self.k_norm = None
        self.impl: AttentionImpl = "auto"

    def _qkv(self, x: Tensor, rope: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor, Tensor]:
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
        causal: bool = False,
    ) -> Tensor:
        b, n, _ = x.shape
        q, k, v = self._qkv(x, rope)
        mask = _attn_mask(key_padding_mask, causal, n, x.device)
        if self._use_matmul(q):
            out = matmul_attention(q, k, v, mask, self.scale, self.softcap)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, scale=self.scale,
                enable_gqa=self.num_kv_heads != self.num_heads,
            )
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))

    def _use_matmul(self, q: Tensor) -> bool:
        if self.softcap is not None or self.impl == "matmul":
            return True  # SDPA has no soft-capping
        return self.impl == "auto" and matmul_is_faster(q)

    @torch.no_grad()
    def attention_weights(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """Attention probabilities (B, H, N, N) for input ``x``; used by the analysis hooks."""
        q, k, _ = self._qkv(x, None)
        mask = _attn_mask(key_padding_mask, False, x.shape[1], x.device)
        return attention_scores(q.float(), k.float(), mask, self.scale, self.softcap).softmax(-1)


class LMMLP(nn.Module):
    """Gated (SwiGLU / GeGLU) or plain two-layer feed-forward network."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        c = config
        self.act = _ACTIVATIONS[c.act]
        self.gate_proj = nn.Linear(c.lm_dim, c.ffn_dim, bias=c.mlp_bias) if c.mlp == "gated" else None
        self.up_proj = nn.Linear(c.lm_dim, c.ffn_dim, bias=c.mlp_bias)
        self.down_proj = nn.Linear(c.ffn_dim, c.lm_dim, bias=c.mlp_bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.gate_proj is not None:
            return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(self.act(self.up_proj(x)))


class LMLayer(nn.Module):
    """One decoder layer of any supported family, bidirectional and position-free.

    Args:
        config: the layer's hyper-parameters.
        skip_attention: leave the attention sub-layer out (its norms included), keeping only
            the FFN sub-layer with its norm and residual: the ``frozen-ffn`` control, the
            ``only_mlp`` ablation of the paper's video code.
    """

    def __init__(self, config: LMConfig, skip_attention: bool = False) -> None:
        super().__init__()
        c = config
        self.parallel_residual = c.parallel_residual
        self.post_norm = c.norm_position == "post"

        def norm() -> Norm:
            return Norm(c.lm_dim, c.norm, c.norm_eps, c.norm_unit_offset)

        attend = not skip_attention
        self.attn_norm = norm() if attend else None
        self.attn = LMAttention(c) if attend else None
        self.mlp_norm = norm()
        self.mlp = LMMLP(c)
        self.post_attn_norm = norm() if attend and c.sandwich_norm else None
        self.post_mlp_norm = norm() if c.sandwich_norm else None

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
        causal: bool = False,
    ) -> Tensor:
        attend = self.attn is not None
        if self.post_norm:  # OPT-350m: norm after each residual add
            if attend:
                x = self.attn_norm(x + self.attn(x, key_padding_mask, rope, causal))
            return self.mlp_norm(x + self.mlp(x))
        if self.parallel_residual and attend:  # GPT-NeoX: both branches read the same input
            return (x + self.attn(self.attn_norm(x), key_padding_mask, rope, causal)
                    + self.mlp(self.mlp_norm(x)))
        if attend:
            h = self.attn(self.attn_norm(x), key_padding_mask, rope, causal)
            if self.post_attn_norm is not None:
                h = self.post_attn_norm(h)
            x = x + h
        h = self.mlp(self.mlp_norm(x))
        if self.post_mlp_norm is not None:
            h = self.post_mlp_norm(h)
        return x + h


class LMStack(nn.Module):
    """A contiguous span of decoder layers: ``(B, N, lm_dim) -> (B, N, lm_dim)``.

    Built by `lm4vis.load_lm_layers`. Frozen by default: no parameter requires grad and the
    stack stays in eval mode whatever the host does with ``.train()``.

    Args:
        config: the checkpoint's layer config.
        layer_indices: which layers of the checkpoint these are (for records and reports).
        source: where the weights came from (a path or a registered name), or None.
        has_final_norm: allocate the checkpoint's final norm (read but not applied here;
            `FrozenLMBlock(final_norm="pretrained")` uses it).
        skip_attention: layers without their attention sub-layer (see `LMLayer`).
        source_hash: `tensors_hash` of the layer tensors as read from ``source``, before any
            dtype cast; what a by-reference checkpoint verifies the re-read layers against.
        config_source: where ``config`` came from; ``source`` when None. A stack built from a
            checkpoint's config alone has a config source and no weight source.
    """

    def __init__(
        self,
        config: LMConfig,
        layer_indices: Iterable[int],
        source: str | None = None,
        has_final_norm: bool = True,
        *,
        skip_attention: bool = False,
        source_hash: str | None = None,
        config_source: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.layer_indices = tuple(layer_indices)
        self.source, self.source_hash = source, source_hash
        self.config_source = source if config_source is None else config_source
        self.skip_attention = skip_attention
        self.layers = nn.ModuleList(LMLayer(config, skip_attention) for _ in self.layer_indices)
        self.final_norm = (
            Norm(config.lm_dim, config.norm, config.norm_eps, config.norm_unit_offset)
            if has_final_norm else None
        )
        self.attention_impl: AttentionImpl = "auto"
        self.frozen = False
        self.freeze()

    @property
    def lm_dim(self) -> int:
        return self.config.lm_dim

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def freeze(self) -> LMStack:
        self.frozen = True
        self.requires_grad_(False)
        return self.train(False)

    def unfreeze(self) -> LMStack:
        self.frozen = False
        self.requires_grad_(True)
        return self

    def set_attention(self, impl: AttentionImpl) -> LMStack:
        """Choose the attention kernel of every layer: ``"auto"`` (the default: matmuls for
        short bf16 sequences on CPU, SDPA otherwise), ``"sdpa"`` or ``"matmul"``. The result
        is the same function either way; only speed and rounding differ."""
        if impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention={impl!r} is unknown; choose one of {', '.join(ATTENTION_IMPLS)}")
        self.attention_impl = impl
        for module in self.modules():
            if isinstance(module, LMAttention):
                module.impl = impl
        return self

    def without_attention(self) -> LMStack:
        """These layers with their attention sub-layers skipped (the ``frozen-ffn`` control).

        A new stack holding this one's FFN and norm tensors (shared, not copied), with the same
        sources and frozen state; this stack is left as it is.
        """
        with torch.device("meta"):
            stack = LMStack(
                self.config, self.layer_indices, self.source, self.final_norm is not None,
                skip_attention=True, source_hash=self.source_hash, config_source=self.config_source,
            )
        kept = stack.state_dict().keys()
        stack.load_state_dict({k: v for k, v in self.state_dict().items() if k in kept}, assign=True)
        stack.attention_impl = self.attention_impl
        return stack.freeze() if self.frozen else stack.unfreeze()

    def train(self, mode: bool = True) -> LMStack:
        # A frozen stack always runs as at inference, whatever the host asks.
        return super().train(mode and not self.frozen)

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None = None,
        *,
        rope: tuple[Tensor, Tensor] | None = None,
        causal: bool = False,
    ) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.lm_dim:
            raise ValueError(
                f"expected tokens of shape (B, N, {self.lm_dim}), got {tuple(x.shape)}"
            )
        check_key_padding_mask(key_padding_mask, x)
        h = x.to(self.dtype)  # the stack may be held in bf16 while the host runs in fp32
        for layer in self.layers:
            h = layer(h, key_padding_mask, rope, causal)
        return h.to(x.dtype)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialise every weight (the ``random`` control): normal(0, initializer_range)."""
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * std)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, Norm) and m.weight is not None:
                m.weight.fill_(0.0 if m.unit_offset else 1.0)
                if m.bias is not None:
                    m.bias.zero_()

    def num_params(self) -> int:
        return sum(p.numel() for p in self.layers.parameters())

    def content_hash(self) -> str:
        """`tensors_hash` of the layers as they are held now (dtype included); compare
        checkpoints with it. A by-reference block verifies `source_hash` instead, which a
        later cast does not change."""
        return tensors_hash(self.layers.state_dict(prefix="layers."))

    def extra_repr(self) -> str:
        return (f"family={self.family}, lm_dim={self.lm_dim}, layers={list(self.layer_indices)}, "
                f"frozen={self.frozen}" + (", skip_attention=True" if self.skip_attention else ""))


@torch.no_grad()
def tensors_hash(state: Mapping[str, Tensor]) -> str:
    """sha256 of a state dict: every tensor's name, dtype, shape and bytes, in name order.

    Args:
        state: names (a stack's own, ``"layers.0.attn.q_proj.weight"``) to tensors.
    """
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def random_lm(
    config: LMConfig,
    layer_indices: Iterable[int] | None = None,
    seed: int | None = 0,
    *,
    has_final_norm: bool = True,
    config_source: str | None = None,
) -> LMStack:
    """A randomly initialised, frozen stack: tests, presets' stand-ins and the ``random`` control.

    Args:
        config: the layer config.
        layer_indices: which layers of the checkpoint these stand for; the last when None.
        seed: seed of the initialisation; None draws from torch's global generator.
        has_final_norm: allocate a final norm (at its identity).
        config_source: where ``config`` came from, for the records.
    """
    idx = list(layer_indices) if layer_indices is not None else [config.num_layers - 1]
    # Allocate without nn.Linear's own initialisation, then initialise once.
    with torch.device("meta"):
        lm = LMStack(config, idx, has_final_norm=has_final_norm, config_source=config_source)
    lm = lm.to_empty(device="cpu")
    lm.reset_parameters(None if seed is None else torch.Generator().manual_seed(seed))
    return lm


__all__ = [
    "ATTENTION_IMPLS", "AttentionImpl", "MATMUL_MAX_TOKENS", "attention_scores", "matmul_attention",
    "matmul_is_faster", "check_key_padding_mask", "tensors_hash",
    "Norm", "LMAttention", "LMMLP", "LMLayer", "LMStack", "random_lm", "rope_tables",
    "apply_rope",
]
