"""GGUF reader: tiny GGUF files written here the way llama.cpp's converter writes them, from
tiny random transformers models, read back by lm4vis and compared with the HF layers."""

from __future__ import annotations

import struct

import gguf
import numpy as np
import pytest
import torch
import transformers as tf
from gguf import GGMLQuantizationType as Q

from lm4vis.checkpoint import CheckpointError, load_lm_layers
from lm4vis.checkpoint.gguf import GGUFReader, gguf_layer_names, read_header
from lm4vis.lm.config import LMConfig
from lm4vis.lm.layers import LMLayer

VOCAB, DIM, HEADS, LAYERS = 96, 64, 4, 2

# arch -> (HF config class, HF model class, extra config)
ARCHS = {
    "llama": (tf.LlamaConfig, tf.LlamaForCausalLM, dict(num_key_value_heads=2, intermediate_size=192)),
    "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM, dict(num_key_value_heads=2, intermediate_size=128)),
    "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM,
              dict(num_key_value_heads=2, intermediate_size=128, head_dim=16)),
    "gemma": (tf.GemmaConfig, tf.GemmaForCausalLM,
              dict(num_key_value_heads=1, intermediate_size=128, head_dim=32)),
    "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM,
               dict(num_key_value_heads=2, intermediate_size=128, head_dim=32,
                    query_pre_attn_scalar=32, attn_logit_softcapping=50.0)),
    "gemma3": (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM,
               dict(num_key_value_heads=1, intermediate_size=128, head_dim=32, query_pre_attn_scalar=32)),
}

# HF layer parameter -> GGUF tensor suffix, as llama.cpp's tensor map names them.
_HF_TO_GGUF = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
}


def tiny_hf(arch: str, seed: int = 0) -> torch.nn.Module:
    config_cls, model_cls, extra = ARCHS[arch]
    torch.manual_seed(seed)
    cfg = config_cls(vocab_size=VOCAB, hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                     max_position_embeddings=64, attn_implementation="eager", **extra)
    model = model_cls(cfg).eval()
    with torch.no_grad():  # HF inits norms at 1 (or 0 for Gemma): perturb them so they are tested
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def _interleave(w: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's permute: HF's rotate-half rows -> Meta's interleaved rows, per head."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def hf_to_gguf_name(arch: str, name: str) -> str:
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    _, _, i, rest = name.split(".", 3)
    module, _, kind = rest.rpartition(".")
    if module == "post_attention_layernorm":
        # Sandwich-norm models have a separate pre-MLP norm; elsewhere this is the pre-MLP norm.
        suffix = "post_attention_norm" if arch in ("gemma2", "gemma3") else "ffn_norm"
    else:
        suffix = _HF_TO_GGUF[module]
    return f"blk.{i}.{suffix}.{kind}"


def write_gguf(path, model, arch: str, qtype: Q = Q.F32, gguf_arch: str | None = None) -> dict:
    """Write ``model`` as llama.cpp's convert_hf_to_gguf.py would; returns the stored arrays."""
    cfg = model.config
    w = gguf.GGUFWriter(str(path), gguf_arch or arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)
    head_dim = getattr(cfg, "head_dim", None)
    if head_dim is not None:  # the converter writes it whenever the config has head_dim
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "gemma2":
        w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
    stored = {}
    for hf_name, t in model.state_dict().items():
        if hf_name == "lm_head.weight":
            continue  # tied to the embedding
        name = hf_to_gguf_name(arch, hf_name)
        t = t.float()
        if arch == "llama" and ".attn_q." in name:
            t = _interleave(t, cfg.num_attention_heads)
        elif arch == "llama" and ".attn_k." in name:
            t = _interleave(t, cfg.num_key_value_heads)
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            t = t + 1  # llama.cpp applies plain RMSNorm to Gemma's 1 + w
        data = t.numpy()
        if data.ndim == 1 or qtype == Q.F32:  # llama.cpp keeps 1-D tensors in F32
            w.add_tensor(name, data)
        elif qtype == Q.F16:
            w.add_tensor(name, data.astype(np.float16))
        else:
            data = gguf.quants.quantize(data, qtype)
            w.add_tensor(name, data, raw_dtype=qtype)
        stored[name] = data
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return stored


def hf_layer_output(model, i: int, x: torch.Tensor) -> torch.Tensor:
    """HF decoder layer ``i`` with rotary off (cos 1, sin 0) and no mask (bidirectional)."""
    layer = model.model.layers[i]
    hd = layer.self_attn.head_dim
    cos = torch.ones(x.shape[0], x.shape[1], hd)
    out = layer(hidden_states=x, attention_mask=None, position_embeddings=(cos, torch.zeros_like(cos)))
    return out[0] if isinstance(out, tuple) else out


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def f32_file(tmp_path_factory, arch):
    model = tiny_hf(arch)
    path = tmp_path_factory.mktemp(arch) / f"{arch}-f32.gguf"
    write_gguf(path, model, arch)
    return model, path


def test_header_matches_gguf_package(f32_file):
    _, path = f32_file
    ours = read_header(str(path))
    ref = gguf.GGUFReader(str(path))
    assert set(ours.tensors) == {t.name for t in ref.tensors}
    for t in ref.tensors:
        info = ours.tensors[t.name]
        assert (info.offset, info.nbytes, info.qtype) == (t.data_offset, t.n_bytes, t.tensor_type)
        assert info.shape == tuple(int(d) for d in reversed(t.shape))
    assert ours.metadata["general.architecture"] == ref.fields["general.architecture"].contents()


def test_config_from_metadata(f32_file, arch):
    model, path = f32_file
    c, hf = GGUFReader(path).config, model.config
    assert (c.lm_dim, c.num_layers, c.num_heads, c.num_kv_heads, c.ffn_dim) == (
        hf.hidden_size, hf.num_hidden_layers, hf.num_attention_heads, hf.num_key_value_heads,
        hf.intermediate_size)
    assert c.head_dim == getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
    assert c.norm_eps == pytest.approx(hf.rms_norm_eps)
    expected = {  # arch -> (family, qkv_bias, qk_norm, sandwich_norm, norm_unit_offset, softcap)
        "llama": ("llama", False, False, False, False, None),
        "qwen2": ("llama", True, False, False, False, None),
        "qwen3": ("llama", False, True, False, False, None),
        "gemma": ("gemma", False, False, False, True, None),
        "gemma2": ("gemma", False, False, True, True, 50.0),
        "gemma3": ("gemma", False, True, True, True, None),
    }[arch]
    assert (c.family, c.qkv_bias, c.qk_norm, c.sandwich_norm, c.norm_unit_offset, c.attn_softcap) == expected
    assert c.attn_scale == pytest.approx(c.head_dim ** -0.5)


def test_layer_weights_equal_hf(f32_file, arch):
    model, path = f32_file
    reader = GGUFReader(path)
    hf = model.state_dict()
    for i in range(LAYERS):
        state = reader.layer_state(i)
        names = gguf_layer_names(reader.config, i)
        assert set(state) == set(names)
        for canonical, gname in names.items():
            hf_name = next(k for k in hf if k.startswith(f"model.layers.{i}.")
                           and hf_to_gguf_name(arch, k) == gname)
            # Gemma's +1/-1 round trip through float32 may move the last bit of a norm weight.
            atol = 1e-6 if arch.startswith("gemma") and canonical.endswith("norm.weight") else 0.0
            torch.testing.assert_close(state[canonical], hf[hf_name], rtol=0, atol=atol,
                                       msg=f"{canonical} <- {gname}")
    final = reader.final_norm_state()
    atol = 1e-6 if arch.startswith("gemma") else 0.0
    torch.testing.assert_close(final["weight"], hf["model.norm.weight"], rtol=0, atol=atol)
    assert torch.equal(reader.tensor("token_embd.weight"), hf["model.embed_tokens.weight"])


def test_transformers_reads_the_file_the_same_way(f32_file, arch):
    """transformers' own GGUF loader (an independent reading of llama.cpp's conventions) agrees."""
    if arch == "gemma":
        pytest.skip("transformers has no GGUF loader for the Gemma 1 architecture")
    _, path = f32_file
    reader = GGUFReader(path)
    # transformers' qwen3 GGUF mapping ignores attention.key_length (real Qwen3 has 128): pass it.
    extra = {"head_dim": reader.config.head_dim} if arch == "qwen3" else {}
    ref = tf.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, vocab_size=VOCAB, **extra)
    ref_state = ref.state_dict()
    for i in range(LAYERS):
        state = reader.layer_state(i)
        for canonical, gname in gguf_layer_names(reader.config, i).items():
            hf_name = next(k for k in ref_state if k.startswith(f"model.layers.{i}.")
                           and hf_to_gguf_name(arch, k) == gname)
            assert torch.equal(state[canonical], ref_state[hf_name]), canonical


def test_layer_output_matches_hf(f32_file):
    model, path = f32_file
    stack = load_lm_layers(path, layers=":")
    assert stack.frozen and not any(p.requires_grad for p in stack.parameters())
    x = torch.randn(2, 7, DIM)
    with torch.no_grad():
        ref = x
        for i in range(LAYERS):
            ref = hf_layer_output(model, i, ref)
        ours = stack(x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch_q,qtype", [("llama", Q.Q8_0), ("llama", Q.Q4_1), ("gemma3", Q.Q8_0)],
                         ids=["llama-Q8_0", "llama-Q4_1", "gemma3-Q8_0"])
def test_quantized_weights_within_quantization_error(tmp_path, arch_q, qtype):
    model = tiny_hf(arch_q, seed=1)
    stored = write_gguf(tmp_path / "q.gguf", model, arch_q, qtype)
    reader = GGUFReader(tmp_path / "q.gguf")
    assert reader.stored_dtype() == qtype.name
    hf = model.state_dict()
    state = reader.layer_state(1)
    for canonical, gname in gguf_layer_names(reader.config, 1).items():
        hf_name = next(k for k in hf if k.startswith("model.layers.1.") and hf_to_gguf_name(arch_q, k) == gname)
        got, want = state[canonical], hf[hf_name]
        if stored[gname].dtype == np.uint8:
            # Exactly the dequantized stored blocks (after the q/k un-permutation) ...
            deq = torch.from_numpy(gguf.quants.dequantize(stored[gname], qtype))
            if arch_q == "llama" and canonical in ("attn.q_proj.weight", "attn.k_proj.weight"):
                heads = HEADS if canonical.startswith("attn.q") else model.config.num_key_value_heads
                deq = deq.reshape(heads, deq.shape[0] // heads // 2, 2, -1).transpose(1, 2).reshape(deq.shape)
            assert torch.equal(got, deq), canonical
            # ... and within one quantization step of the HF weight (step = block max / levels).
            levels = {Q.Q8_0: 127, Q.Q4_1: 15}[qtype]
            step = want.reshape(want.shape[0], -1, 32).abs().amax(-1, keepdim=True) * 2 / levels
            err = (got - want).reshape(want.shape[0], -1, 32).abs()
            assert (err <= step * 0.51 + 1e-6).all(), canonical
            assert err.max() > 0  # it really was quantized
        else:
            atol = 1e-6 if arch_q.startswith("gemma") else 0.0
            torch.testing.assert_close(got, want, rtol=0, atol=atol)
    assert reader.layer_bytes(1) == sum(stored[g].nbytes for g in gguf_layer_names(reader.config, 1).values())


@pytest.mark.parametrize("arch_q,qtype,dtype", [
    ("llama", Q.F16, torch.float16), ("llama", Q.F32, torch.float32), ("gemma2", Q.F16, torch.float16),
    ("llama", Q.Q8_0, torch.float32),
], ids=["llama-F16", "llama-F32", "gemma2-F16", "llama-Q8_0"])
def test_one_dtype_per_stack(tmp_path, arch_q, qtype, dtype):
    """Matrices keep their stored float type (quantized: fp32) and the F32 norms follow them."""
    model = tiny_hf(arch_q)
    write_gguf(tmp_path / "m.gguf", model, arch_q, qtype)
    stack = load_lm_layers(tmp_path / "m.gguf", layers=":")
    assert {p.dtype for p in stack.parameters()} == {dtype}
    assert stack(torch.randn(1, 5, DIM)).dtype == torch.float32
    half = load_lm_layers(tmp_path / "m.gguf", dtype="bf16")
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    if qtype == Q.F16:  # the stored halves, bit for bit
        stored = GGUFReader(tmp_path / "m.gguf").tensor("blk.0.attn_v.weight")
        assert stored.dtype == torch.float16 and torch.equal(stack.layers[0].attn.v_proj.weight, stored)


def test_reading_a_layer_does_not_map_the_file(tmp_path):
    write_gguf(tmp_path / "m.gguf", tiny_hf("llama"), "llama")
    reader = GGUFReader(tmp_path / "m.gguf")
    reader.layer_state(1)
    with open("/proc/self/maps") as f:
        assert str(tmp_path / "m.gguf") not in f.read()


# ----------------------------------------------------------------------------- bad inputs


def _bad_truncated_data(tmp_path):
    path = tmp_path / "m.gguf"
    write_gguf(path, tiny_hf("llama"), "llama")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    return path


def _bad_truncated_header(tmp_path):
    path = tmp_path / "m.gguf"
    write_gguf(path, tiny_hf("llama"), "llama")
    path.write_bytes(path.read_bytes()[:200])
    return path


def _bad_magic(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    return path


def _bad_lengths(tmp_path):
    """Magic and version fine, then a key whose length field is absurd (a corrupt header)."""
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40) + bytes(64))
    return path


def _bad_version(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 1, 0, 0))
    return path


def _bad_arch(tmp_path):
    path = tmp_path / "m.gguf"
    write_gguf(path, tiny_hf("llama"), "llama", gguf_arch="mamba")
    return path


def _bad_quant(tmp_path):
    """A well-formed file whose matrices are Q8_1, a type gguf cannot dequantize."""
    path = tmp_path / "m.gguf"
    config = LMConfig(family="llama", lm_dim=32, num_layers=1, num_heads=2, ffn_dim=64)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_embedding_length(config.lm_dim)
    w.add_feed_forward_length(config.ffn_dim)
    w.add_head_count(config.num_heads)
    block, size = gguf.GGML_QUANT_SIZES[Q.Q8_1]
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in LMLayer(config).state_dict().items()}
    for canonical, name in gguf_layer_names(config, 0).items():
        shape = shapes[canonical]
        if len(shape) == 1:
            w.add_tensor(name, np.ones(shape, np.float32))
        else:
            w.add_tensor(name, np.zeros((shape[0], shape[1] // block * size), np.uint8), raw_dtype=Q.Q8_1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("make,words", [
    (_bad_truncated_data, ["truncated", "re-download"]),
    (_bad_truncated_header, ["truncated", "re-download"]),
    (_bad_magic, ["not a GGUF file", "b'PK"]),
    (_bad_lengths, ["corrupt GGUF header", "implausible string length"]),
    (_bad_version, ["GGUF version 1", "re-convert"]),
    (_bad_arch, ["'mamba' is not supported", "llama, qwen2"]),
    (_bad_quant, ["Q8_1", "re-quantize"]),
])
def test_bad_files_give_one_clear_error(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_lm_layers(path)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message
