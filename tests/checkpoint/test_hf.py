"""`HFReader` and `lm_config_from_hf`: bad inputs, prefixes, dtypes and lazy reading."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import lm4vis
from lm4vis.checkpoint import CheckpointError, open_checkpoint
from lm4vis.checkpoint.hf import HFReader, checked_safetensors_header, layer_rules, lm_config_from_hf


def _copy(tiny_hf, name: str = "llama", fmt: str = "safetensors", *, to: Path) -> Path:
    _, src = tiny_hf.get(name, fmt)
    dst = to / "ckpt"
    shutil.copytree(src, dst)
    return dst


def _listing(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}


def _save_state(path: Path, state: dict[str, torch.Tensor], config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(config))
    return path


# ---------------------------------------------------------------------------------------------
# config.json -> LMConfig (pure)
# ---------------------------------------------------------------------------------------------

_BASE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)


@pytest.mark.parametrize("cfg, expected", [
    (dict(_BASE, model_type="llama", num_key_value_heads=2),
     dict(family="llama", num_kv_heads=2, head_dim=16, act="silu", qkv_bias=False, rope_theta=10000.0)),
    (dict(_BASE, model_type="llama", rope_theta=500000.0),  # pre-5.x flat key
     dict(rope_theta=500000.0, num_kv_heads=4)),
    (dict(_BASE, model_type="mistral", num_attention_heads=16, head_dim=None),
     dict(num_kv_heads=8, head_dim=4)),
    (dict(_BASE, model_type="qwen2"), dict(qkv_bias=True, o_bias=False)),
    (dict(_BASE, model_type="qwen3", head_dim=32, attention_bias=True),
     dict(qk_norm=True, head_dim=32, qkv_bias=True, o_bias=True)),
    (dict(_BASE, model_type="opt", ffn_dim=96, do_layer_norm_before=False, enable_bias=False),
     dict(family="opt", norm_position="post", qkv_bias=False, mlp="plain", act="relu", rope_theta=None)),
    (dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, activation_function="gelu_new"),
     dict(family="gpt2", ffn_dim=256, act="gelu_tanh", attn_scale=0.25, rope_theta=None)),
    (dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, scale_attn_weights=False,
          reorder_and_upcast_attn=True),
     dict(attn_scale=1.0)),
    (dict(_BASE, model_type="gpt_neox", rotary_pct=0.25, rotary_emb_base=20000),  # legacy keys
     dict(family="gpt_neox", rotary_dim=4, rope_theta=20000.0, parallel_residual=True, act="gelu")),
    (dict(_BASE, model_type="gpt_neox", use_parallel_residual=False,
          rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
     dict(rotary_dim=8, parallel_residual=False)),
    (dict(_BASE, model_type="gemma", num_attention_heads=16, head_dim=32, hidden_act="gelu"),
     # legacy "gelu" in Gemma 1 releases means the tanh approximation
     dict(family="gemma", act="gelu_tanh", norm_unit_offset=True, sandwich_norm=False, qk_norm=False,
          num_kv_heads=16, attn_scale=32 ** -0.5)),
    (dict(_BASE, model_type="gemma2", head_dim=32, query_pre_attn_scalar=64),
     dict(sandwich_norm=True, qk_norm=False, attn_scale=64 ** -0.5, attn_softcap=50.0, act="gelu_tanh")),
    (dict(_BASE, model_type="gemma2", head_dim=32, hidden_activation="gelu", attn_logit_softcapping=None),
     dict(act="gelu", attn_softcap=None)),  # only Gemma 1 rewrites "gelu"
    (dict(_BASE, model_type="gemma3_text", head_dim=32),
     dict(sandwich_norm=True, qk_norm=True, attn_softcap=None, attn_scale=256 ** -0.5,
          rope_theta=1_000_000.0)),
    # multimodal Gemma 3 as released: a sparse text_config, the rest are class defaults
    (dict(model_type="gemma3", text_config=dict(hidden_size=2560, intermediate_size=10240,
                                                num_hidden_layers=34, model_type="gemma3_text")),
     dict(family="gemma", lm_dim=2560, num_layers=34, num_heads=8, num_kv_heads=4, head_dim=256,
          qk_norm=True, norm_eps=1e-6)),
])
def test_lm_config_from_hf(cfg, expected):
    config = lm_config_from_hf(cfg)
    assert {k: getattr(config, k) for k in expected} == expected


@pytest.mark.parametrize("cfg, match", [
    (dict(_BASE, model_type="bert"), r"'bert' is not supported; supported: llama, mistral, qwen2, qwen3, opt, gpt2"),
    (dict(model_type="llava", text_config=dict(_BASE, model_type="llama")), r"'llava' is not supported"),
    (dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, scale_attn_by_inverse_layer_idx=True),
     "scale_attn_by_inverse_layer_idx"),
    (dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, add_cross_attention=True), "cross-attention"),
    (dict(_BASE, model_type="opt", ffn_dim=96, layer_norm_elementwise_affine=False), "elementwise_affine"),
    (dict(_BASE, model_type="llama", hidden_act="quick_gelu"), r"activation 'quick_gelu'.*supported"),
    (dict(model_type="llama", num_hidden_layers=2), "has no hidden_size"),
    (dict(_BASE, model_type="llama", num_key_value_heads=3), "num_heads=4 must be a multiple of num_kv_heads=3"),
])
def test_lm_config_from_hf_refuses(cfg, match):
    with pytest.raises(CheckpointError, match=match):
        lm_config_from_hf(cfg)


@pytest.mark.parametrize("model_type, hf_names", [
    ("gpt2", {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "ln_1.bias"}),
    ("gpt_neox", {"attention.query_key_value.weight", "attention.dense.bias", "mlp.dense_4h_to_h.weight"}),
    ("gemma2", {"post_attention_layernorm.weight", "pre_feedforward_layernorm.weight"}),
])
def test_layer_rules_cover_every_canonical_tensor(model_type, hf_names):
    cfg = dict(_BASE, model_type=model_type, n_embd=64, n_layer=2, n_head=4)
    config = lm_config_from_hf(cfg)
    rules = layer_rules(config)
    assert hf_names <= {rule.source for rule in rules.values()}
    canonical = set(lm4vis.LMStack(config, [0]).layers[0].state_dict())
    assert set(rules) == canonical


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        open_checkpoint(tmp_path / "nowhere")


def test_unsupported_family_lists_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(dict(_BASE, model_type="t5")))
    with pytest.raises(CheckpointError, match="'t5' is not supported; supported: .*gpt_neox.*gemma3_text"):
        open_checkpoint(tmp_path)


def test_config_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        open_checkpoint(tmp_path)


@pytest.mark.parametrize("layers", [3, -4, "2:5"])
def test_layer_out_of_range_says_how_many(tiny_hf, layers):
    _, path = tiny_hf.get("llama")
    with pytest.raises(CheckpointError, match="out of range; the checkpoint has 3 layers"):
        lm4vis.load_lm_layers(path, layers=layers)


def test_layer_state_out_of_range(tiny_hf):
    _, path = tiny_hf.get("llama")
    with pytest.raises(CheckpointError, match="has 3 layers"):
        HFReader(path).layer_state(3)


def test_no_weights_file(tiny_hf, tmp_path):
    path = tmp_path / "ckpt"
    path.mkdir()
    shutil.copy(tiny_hf.get("llama")[1] / "config.json", path)
    (path / "tf_model.h5").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no weights in .*tf_model\.h5.*model\.safetensors"):
        open_checkpoint(path)


def _header_len(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


@pytest.mark.parametrize("damage, match", [
    ("cut_data", "holds only .* data bytes"),        # data offsets beyond the file
    ("cut_header", "header claims .* bytes"),        # header length beyond the file
    ("tiny", "too short for a safetensors header"),
    ("bad_json", "header is not valid JSON"),
    ("bad_size", r"bytes for shape .* expected"),    # offsets inconsistent with the shape
])
def test_damaged_safetensors(tiny_hf, tmp_path, damage, match):
    path = _copy(tiny_hf, to=tmp_path)
    file = path / "model.safetensors"
    data = bytearray(file.read_bytes())
    n = _header_len(file)
    if damage == "cut_data":
        data = data[:-100]
    elif damage == "cut_header":
        data = data[: 8 + n // 2]
    elif damage == "tiny":
        data = data[:5]
    elif damage == "bad_json":
        data[8:12] = b"\xff\xfe{["
    elif damage == "bad_size":
        header = json.loads(data[8:8 + n])
        name = next(k for k in header if k != "__metadata__")
        header[name]["shape"] = [header[name]["shape"][0] + 1, *header[name]["shape"][1:]]
        raw = json.dumps(header).encode()
        data = struct.pack("<Q", len(raw)) + raw + data[8 + n:]
    file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=match):
        lm4vis.load_lm_layers(path, layers=-1)


def test_missing_tensor_names_tensor_and_file(tiny_hf, tmp_path):
    model, _ = tiny_hf.get("llama")
    state = {k: v for k, v in model.state_dict().items() if k != "model.layers.2.mlp.up_proj.weight"}
    path = _save_state(tmp_path / "ckpt", state, model.config.to_dict())
    with pytest.raises(CheckpointError, match=r"'model\.layers\.2\.mlp\.up_proj\.weight' is missing from .*model\.safetensors"):
        lm4vis.load_lm_layers(path, layers=-1)
    assert lm4vis.load_lm_layers(path, layers=1).lm_dim == model.config.hidden_size  # other layers fine


def test_weights_that_config_does_not_use(tiny_hf, tmp_path):
    model, _ = tiny_hf.get("llama")  # built with attention_bias=True
    config = dict(model.config.to_dict(), attention_bias=False)
    path = _save_state(tmp_path / "ckpt", dict(model.state_dict()), config)
    with pytest.raises(CheckpointError, match=r"does not use: \['self_attn\.k_proj\.bias'"):
        lm4vis.load_lm_layers(path, layers=0)


def test_missing_shard(tiny_hf, tmp_path):
    path = _copy(tiny_hf, fmt="sharded", to=tmp_path)
    shard = sorted(path.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(CheckpointError, match=f"shard {shard.name} .* is missing"):
        open_checkpoint(path)


def test_pickle_that_runs_code_is_refused(tiny_hf, tmp_path):
    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "ckpt"
    path.mkdir()
    shutil.copy(tiny_hf.get("llama")[1] / "config.json", path)
    torch.save({"model.layers.0.input_layernorm.weight": Payload()}, path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"refused: its pickle tries to import/execute posix\.system.*safetensors"):
        lm4vis.load_lm_layers(path, layers=0)
    assert not marker.exists()


def test_legacy_non_zip_bin_is_read(tiny_hf, tmp_path):
    model, src = tiny_hf.get("gpt2")
    path = tmp_path / "ckpt"
    path.mkdir()
    shutil.copy(src / "config.json", path)
    torch.save(dict(model.state_dict()), path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    expected = lm4vis.load_lm_layers(src, layers=0).content_hash()
    assert lm4vis.load_lm_layers(path, layers=0).content_hash() == expected


# ---------------------------------------------------------------------------------------------
# Reading: nothing written, only the requested layer read, prefixes, dtypes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["safetensors", "sharded", "bin", "bin_sharded"])
def test_nothing_is_written_next_to_the_checkpoint(tiny_hf, fmt):
    _, path = tiny_hf.get("gpt_neox_parallel", fmt)
    before = _listing(path)
    reader = open_checkpoint(path)
    lm4vis.load_lm_layers(path, layers="-2:", dtype=torch.bfloat16)
    reader.layer_bytes(0), reader.stored_dtype(), reader.tensor_names()
    assert _listing(path) == before


def test_only_the_requested_layer_is_read(tiny_hf, monkeypatch):
    import safetensors

    _, path = tiny_hf.get("llama", "sharded")
    opened: list[str] = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, file, **kw):
            self._f = real(file, **kw)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def get_tensor(self, name):
            opened.append(name)
            return self._f.get_tensor(name)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    lm4vis.load_lm_layers(path, layers=1)
    assert opened and all(n.startswith("model.layers.1.") or n.startswith("model.norm.") for n in opened)
    assert len(opened) == len(set(opened))  # each tensor read once
    assert "model.norm.weight" in opened


def test_layer_bytes_and_stored_dtype(tiny_hf, tmp_path):
    model, path = tiny_hf.get("qwen3")
    reader = open_checkpoint(path)
    layer = tiny_hf.layers("qwen3")[0]
    assert reader.layer_bytes(0) == sum(p.numel() * 4 for p in layer.parameters())
    assert reader.stored_dtype() == "float32"
    bf16 = _save_state(tmp_path / "bf16", {k: v.bfloat16() for k, v in model.state_dict().items()},
                       model.config.to_dict())
    assert open_checkpoint(bf16).stored_dtype() == "bfloat16"
    assert lm4vis.load_lm_layers(bf16, layers=0).dtype == torch.bfloat16
    assert lm4vis.load_lm_layers(path, layers=0, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_mixed_stored_dtypes_become_one(tiny_hf, tmp_path):
    model, src = tiny_hf.get("llama")
    state = {k: v if "norm" in k else v.bfloat16() for k, v in model.state_dict().items()}
    path = _save_state(tmp_path / "mixed", state, model.config.to_dict())
    stack = lm4vis.load_lm_layers(path, layers=0)
    assert {p.dtype for p in stack.parameters()} == {torch.bfloat16}
    stack(torch.randn(1, 3, stack.lm_dim))  # runs: no fp32/bf16 mix in the matmuls


@pytest.mark.parametrize("stored", [torch.float32, torch.bfloat16])
def test_source_hash_is_of_the_tensors_as_stored(tiny_hf, tmp_path, stored):
    model, _ = tiny_hf.get("qwen3")
    path = _save_state(tmp_path / "ckpt", {k: v.to(stored) for k, v in model.state_dict().items()},
                       model.config.to_dict())
    as_stored = lm4vis.load_lm_layers(path, layers="-2:")
    assert as_stored.source_hash == as_stored.content_hash()  # nothing cast: the two agree
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        cast = lm4vis.load_lm_layers(path, layers="-2:", dtype=dtype)
        assert cast.source_hash == as_stored.source_hash, dtype
    cast.to(torch.float32)  # a later cast changes what the stack holds, not where it came from
    assert cast.source_hash == as_stored.source_hash
    assert lm4vis.load_lm_layers(path, layers="-3:-1").source_hash != as_stored.source_hash
    control = lm4vis.load_lm_layers(path, layers="-2:", weights=False)
    assert control.source_hash is None and control.source is None
    assert control.config_source == os.fspath(path)


@pytest.mark.parametrize("name, strip, add", [
    ("llama", "model.", ""),                             # bare LlamaModel save
    ("opt_pre", "model.", ""),                           # bare OPTModel save: decoder.layers.
    ("gpt2", "transformer.", ""),                        # bare GPT2Model save: h.
    ("gpt_neox_parallel", "gpt_neox.", ""),              # bare GPTNeoXModel save
    ("gemma3_text", "model.", "model.language_model."),  # Gemma 3 multimodal, transformers 5
    ("gemma3_text", "model.", "language_model.model."),  # Gemma 3 multimodal, as released
])
def test_prefixes_found_in_practice(tiny_hf, tmp_path, name, strip, add):
    model, src = tiny_hf.get(name)
    state = {add + k[len(strip):]: v for k, v in model.state_dict().items() if k.startswith(strip)}
    config = model.config.to_dict()
    if add:
        config = {"model_type": "gemma3", "text_config": config}
    path = _save_state(tmp_path / "ckpt", state, config)
    got = lm4vis.load_lm_layers(path, layers="-2:")
    want = lm4vis.load_lm_layers(src, layers="-2:")
    assert got.content_hash() == want.content_hash()
    assert (got.final_norm is None) == (want.final_norm is None)


def test_gemma3_multimodal_checkpoint(tmp_path):
    import transformers

    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, vocab_size=300)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  image_size=28, patch_size=14)
    config = transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                                       image_token_index=299, boi_token_index=297, eoi_token_index=298)
    model = transformers.Gemma3ForConditionalGeneration(config)
    model.save_pretrained(tmp_path)
    stack = lm4vis.load_lm_layers(tmp_path, layers=-1)
    assert (stack.lm_dim, stack.config.head_dim, stack.config.qk_norm) == (32, 16, True)
    reference = model.model.language_model.layers[1].self_attn.q_proj.weight
    torch.testing.assert_close(stack.layers[0].attn.q_proj.weight, reference, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["gpt2", "gpt_neox_parallel"])
def test_split_fused_tensors_share_no_storage(tiny_hf, name):
    stack = lm4vis.load_lm_layers(tiny_hf.get(name)[1], layers=0)
    params = list(stack.parameters())
    assert all(p.is_contiguous() for p in params)
    assert len({p.untyped_storage().data_ptr() for p in params}) == len(params)


def test_header_check_accepts_a_valid_file(tiny_hf):
    _, path = tiny_hf.get("gemma")
    entries = checked_safetensors_header(str(path / "model.safetensors"))
    assert entries["model.layers.0.input_layernorm.weight"].shape == (48,)
