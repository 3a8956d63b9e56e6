"""Reference: the frozen LLaMA block written the way the paper's code writes it.

Pang et al.'s code keeps one LLaMA ``TransformerBlock`` from Meta's reference implementation,
drops the rotary embedding and the causal mask, freezes it in fp32, and puts two bias-free
linear mappers around it. Attention is plain ``torch.matmul`` + ``softmax`` (no fused kernel),
the norm is Meta's RMSNorm, the MLP is SwiGLU, and the LM's output is cast back with
``.float()``. This module rebuilds that, independently of lm4vis, so `block_speed.py` can time
lm4vis against it at the same widths on the same weights. It is a benchmark reference only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PaperRMSNorm(nn.Module):
    """Meta's reference RMSNorm: statistics in fp32, result cast back, then the weight."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        return self._norm(x.float()).type_as(x) * self.weight


class PaperAttention(nn.Module):
    """Multi-head attention with explicit matmul/softmax, grouped-query keys repeated."""

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.wq = nn.Linear(dim, num_heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, num_kv_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, num_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(num_heads * head_dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q = self.wq(x).view(b, n, self.num_heads, self.head_dim)
        k = self.wk(x).view(b, n, self.num_kv_heads, self.head_dim)
        v = self.wv(x).view(b, n, self.num_kv_heads, self.head_dim)
        # LLaMA-2's repeat_kv: copy each key/value head for its group of query heads.
        groups = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(groups, dim=2)
        v = v.repeat_interleave(groups, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        # No rotary embedding and no mask: the paper's vision path is bidirectional.
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        scores = F.softmax(scores.float(), dim=-1).type_as(q)
        out = torch.matmul(scores, v)
        return self.wo(out.transpose(1, 2).contiguous().view(b, n, -1))


class PaperFeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1(x)) * w3(x))``."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class PaperTransformerBlock(nn.Module):
    """Pre-norm LLaMA decoder layer."""

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, head_dim: int,
                 hidden_dim: int, eps: float) -> None:
        super().__init__()
        self.attention = PaperAttention(dim, num_heads, num_kv_heads, head_dim)
        self.feed_forward = PaperFeedForward(dim, hidden_dim)
        self.attention_norm = PaperRMSNorm(dim, eps)
        self.ffn_norm = PaperRMSNorm(dim, eps)

    def forward(self, x: Tensor) -> Tensor:
        h = x + self.attention(self.attention_norm(x))
        return h + self.feed_forward(self.ffn_norm(h))


class PaperLLaMA(nn.Module):
    """The paper's truncated LLaMA: the kept layers, the final norm, output cast to fp32.

    The paper's loader copies only the kept layers' weights, so its final norm keeps its
    initial weight of ones: the same as lm4vis's ``final_norm="unit"``."""

    def __init__(self, num_layers: int, dim: int, num_heads: int, num_kv_heads: int,
                 head_dim: int, hidden_dim: int, eps: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            PaperTransformerBlock(dim, num_heads, num_kv_heads, head_dim, hidden_dim, eps)
            for _ in range(num_layers)
        )
        self.norm = PaperRMSNorm(dim, eps)
        self.requires_grad_(False)  # frozen as in the paper: requires_grad=False on every weight

    def forward(self, h: Tensor) -> Tensor:
        for layer in self.layers:
            h = layer(h)
        return self.norm(h).float()


class PaperBlock(nn.Module):
    """``llama_dim_mapper2(llama(llama_dim_mapper1(x)))``, the paper's sequence.

    Args:
        in_dim: width of the vision tokens.
        dim, num_heads, num_kv_heads, head_dim, hidden_dim, eps: the LLaMA layer's sizes.
        num_layers: how many LLaMA layers are kept (the paper keeps the last one).
    """

    def __init__(self, in_dim: int, dim: int, num_heads: int, num_kv_heads: int, head_dim: int,
                 hidden_dim: int, eps: float, num_layers: int = 1) -> None:
        super().__init__()
        self.llama_dim_mapper1 = nn.Linear(in_dim, dim, bias=False)
        self.llama = PaperLLaMA(num_layers, dim, num_heads, num_kv_heads, head_dim, hidden_dim, eps)
        self.llama_dim_mapper2 = nn.Linear(dim, in_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.llama_dim_mapper2(self.llama(self.llama_dim_mapper1(x)))


@torch.no_grad()
def paper_block_like(block) -> PaperBlock:
    """A `PaperBlock` holding exactly the weights of an lm4vis `FrozenLMBlock`, in fp32.

    Args:
        block: a `lm4vis.FrozenLMBlock` of a LLaMA-family LM with a ``"unit"`` final norm
            (the paper's final norm weight is all ones).
    """
    c = block.lm_config
    if c.family != "llama" or c.qkv_bias or c.qk_norm or c.sandwich_norm:
        raise ValueError("the paper's block is a plain LLaMA layer; build lm4vis with a llama LM")
    ref = PaperBlock(block.in_dim, c.lm_dim, c.num_heads, c.num_kv_heads, c.head_dim, c.ffn_dim,
                     c.norm_eps, num_layers=len(block.layer_indices))
    ref.llama_dim_mapper1.weight.copy_(block.proj_in.weight.float())
    ref.llama_dim_mapper2.weight.copy_(block.proj_out.weight.float())
    names = {"attention.wq": "attn.q_proj", "attention.wk": "attn.k_proj",
             "attention.wv": "attn.v_proj", "attention.wo": "attn.o_proj",
             "feed_forward.w1": "mlp.gate_proj", "feed_forward.w3": "mlp.up_proj",
             "feed_forward.w2": "mlp.down_proj", "attention_norm": "attn_norm",
             "ffn_norm": "mlp_norm"}
    for ref_layer, layer in zip(ref.llama.layers, block.lm.layers):
        for ref_name, name in names.items():
            ref_layer.get_submodule(ref_name).weight.copy_(layer.get_submodule(name).weight.float())
    return ref
