"""Shared fixtures: seeding and tiny random Hugging Face checkpoints of every family.

`HF_CASES` is the one table of tiny transformers models the checkpoint tests run over. A
checkpoint is built once per session and format and must be treated as read-only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch


# Every preset sets trainer.fast: true. The suite runs them on the plain path (fp32, eager), so
# that what a test asserts does not depend on whether CI got a CPU with bf16 (it compiles there);
# tests/train/test_fastpath.py unsets it to check the fast path on simulated machines.
# LM4VIS_FAST=1 runs the suite on the fast path instead.
os.environ.setdefault("LM4VIS_FAST", "0")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer random LLaMA (width 32) saved by transformers: the LM of the CLI tests and the
    presets' stand-in. Read-only."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(path)
    return str(path)


@dataclass(frozen=True)
class HFCase:
    """One tiny transformers model.

    Args:
        config_cls, model_cls: names in the ``transformers`` namespace.
        kwargs: the config's arguments (tiny sizes; GQA where the family has it).
        layers: attribute path from the model to its ``nn.ModuleList`` of decoder layers.
        final_norm: attribute path to the final norm (the attribute is None on a post-norm OPT).
        rotary: attribute path to its rotary-embedding module, None without rotary.
        rotary_layer_type: Gemma 3 keeps one rotary per layer type; the type of the tested layer.
    """

    config_cls: str
    model_cls: str
    kwargs: dict[str, Any]
    layers: str
    final_norm: str
    rotary: str | None = None
    rotary_layer_type: str | None = None


_LLAMA_SIZES = dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, vocab_size=64)

HF_CASES: dict[str, HFCase] = {
    # attention_bias and mlp_bias on, to exercise every bias of the llama mapping
    "llama": HFCase("LlamaConfig", "LlamaForCausalLM",
                    dict(_LLAMA_SIZES, num_attention_heads=6, num_key_value_heads=2,
                         attention_bias=True, mlp_bias=True, rms_norm_eps=1e-5),
                    "model.layers", "model.norm", "model.rotary_emb"),
    # head_dim given explicitly and != hidden_size / num_heads
    "mistral": HFCase("MistralConfig", "MistralForCausalLM",
                      dict(_LLAMA_SIZES, num_attention_heads=4, num_key_value_heads=2, head_dim=16),
                      "model.layers", "model.norm", "model.rotary_emb"),
    "qwen2": HFCase("Qwen2Config", "Qwen2ForCausalLM",
                    dict(_LLAMA_SIZES, num_attention_heads=6, num_key_value_heads=3),
                    "model.layers", "model.norm", "model.rotary_emb"),
    "qwen3": HFCase("Qwen3Config", "Qwen3ForCausalLM",
                    dict(_LLAMA_SIZES, num_attention_heads=4, num_key_value_heads=2, head_dim=16),
                    "model.layers", "model.norm", "model.rotary_emb"),
    "opt_pre": HFCase("OPTConfig", "OPTForCausalLM",
                      dict(hidden_size=48, ffn_dim=80, num_hidden_layers=3, num_attention_heads=4,
                           vocab_size=64, word_embed_proj_dim=48, do_layer_norm_before=True),
                      "model.decoder.layers", "model.decoder.final_layer_norm"),
    "opt_post": HFCase("OPTConfig", "OPTForCausalLM",
                       dict(hidden_size=48, ffn_dim=80, num_hidden_layers=3, num_attention_heads=4,
                            vocab_size=64, word_embed_proj_dim=48, do_layer_norm_before=False),
                       "model.decoder.layers", "model.decoder.final_layer_norm"),
    "gpt2": HFCase("GPT2Config", "GPT2LMHeadModel",
                   dict(n_embd=48, n_inner=80, n_layer=3, n_head=4, vocab_size=64,
                        bos_token_id=0, eos_token_id=0),
                   "transformer.h", "transformer.ln_f"),
    "gpt_neox_parallel": HFCase("GPTNeoXConfig", "GPTNeoXForCausalLM",
                                dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3,
                                     num_attention_heads=4, vocab_size=64, rotary_pct=0.5,
                                     use_parallel_residual=True),
                                "gpt_neox.layers", "gpt_neox.final_layer_norm",
                                "gpt_neox.rotary_emb"),
    "gpt_neox_sequential": HFCase("GPTNeoXConfig", "GPTNeoXForCausalLM",
                                  dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3,
                                       num_attention_heads=4, vocab_size=64, rotary_pct=0.5,
                                       use_parallel_residual=False),
                                  "gpt_neox.layers", "gpt_neox.final_layer_norm",
                                  "gpt_neox.rotary_emb"),
    "gemma": HFCase("GemmaConfig", "GemmaForCausalLM",
                    dict(_LLAMA_SIZES, num_attention_heads=4, num_key_value_heads=1, head_dim=16),
                    "model.layers", "model.norm", "model.rotary_emb"),
    # query_pre_attn_scalar != head_dim and a small soft-cap, so both are really exercised
    "gemma2": HFCase("Gemma2Config", "Gemma2ForCausalLM",
                     dict(_LLAMA_SIZES, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                          query_pre_attn_scalar=24, attn_logit_softcapping=2.0),
                     "model.layers", "model.norm", "model.rotary_emb"),
    "gemma3_text": HFCase("Gemma3TextConfig", "Gemma3ForCausalLM",
                          dict(_LLAMA_SIZES, num_attention_heads=4, num_key_value_heads=2,
                               head_dim=16, query_pre_attn_scalar=24,
                               layer_types=["sliding_attention", "sliding_attention",
                                            "full_attention"]),
                          "model.layers", "model.norm", "model.rotary_emb",
                          rotary_layer_type="full_attention"),
}

ROTARY_CASES = [name for name, case in HF_CASES.items() if case.rotary is not None]


def module_at(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part)
    return root


@torch.no_grad()
def build_hf_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A tiny transformers model of case ``name`` with every parameter randomised.

    Norm weights and biases are perturbed too, so that Gemma's ``1 + w`` and every bias are
    exercised (a fresh model has norms at their identity and zero biases).
    """
    import transformers

    case = HF_CASES[name]
    # Eager attention: with attention_mask=None it applies no mask at all (SDPA would be causal).
    config = getattr(transformers, case.config_cls)(**case.kwargs, attn_implementation="eager")
    model = getattr(transformers, case.model_cls)(config)
    assert model.config._attn_implementation == "eager"
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return model.eval()


def save_bin(model: torch.nn.Module, path: Path, shards: int = 1) -> None:
    """``pytorch_model.bin`` (or ``shards`` shards plus an index) as older transformers wrote it."""
    path.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if shards == 1:
        torch.save(state, path / "pytorch_model.bin")
        return
    names = list(state)
    weight_map = {}
    for s in range(shards):
        file = f"pytorch_model-{s + 1:05d}-of-{shards:05d}.bin"
        part = names[s::shards]
        torch.save({k: state[k] for k in part}, path / file)
        weight_map |= {k: file for k in part}
    with open(path / "pytorch_model.bin.index.json", "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


class TinyHF:
    """Session cache of tiny checkpoints: ``get(name, fmt)`` -> (model, directory).

    Formats: ``safetensors``, ``sharded`` (several safetensors shards + index), ``bin``,
    ``bin_sharded``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._models: dict[str, torch.nn.Module] = {}
        self._paths: dict[tuple[str, str], Path] = {}

    @staticmethod
    def case(name: str) -> HFCase:
        return HF_CASES[name]

    def module(self, name: str, path: str) -> Any:
        """The submodule at ``path`` of case ``name``'s reference model."""
        return module_at(self.model(name), path)

    def layers(self, name: str) -> torch.nn.ModuleList:
        """The decoder layers of case ``name``'s reference model."""
        return self.module(name, HF_CASES[name].layers)

    def model(self, name: str) -> torch.nn.Module:
        if name not in self._models:
            self._models[name] = build_hf_model(name)
        return self._models[name]

    def get(self, name: str, fmt: str = "safetensors") -> tuple[torch.nn.Module, Path]:
        model = self.model(name)
        key = (name, fmt)
        if key not in self._paths:
            path = self.root / f"{name}-{fmt}"
            if fmt == "safetensors":
                model.save_pretrained(path)
            elif fmt == "sharded":
                model.save_pretrained(path, max_shard_size="40KB")
            elif fmt == "bin":
                save_bin(model, path)
            elif fmt == "bin_sharded":
                save_bin(model, path, shards=3)
            else:
                raise ValueError(f"unknown format {fmt!r}")
            self._paths[key] = path
        return model, self._paths[key]


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> TinyHF:
    """Tiny random transformers checkpoints, built once per session (treat as read-only)."""
    return TinyHF(tmp_path_factory.mktemp("tiny_hf"))


@pytest.fixture(params=list(HF_CASES))
def hf_case(request: pytest.FixtureRequest) -> str:
    """Every case of `HF_CASES` in turn."""
    return request.param


@pytest.fixture(params=ROTARY_CASES)
def hf_rotary_case(request: pytest.FixtureRequest) -> str:
    """Every case of `HF_CASES` that has rotary embeddings."""
    return request.param
