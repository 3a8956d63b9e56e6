"""Meta LLaMA reader: tiny Meta-format checkpoints written here by inverting Hugging Face's
conversion (q/k back to the interleaved layout, Meta key names, tensor-parallel shards)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers as tf

from lm4vis.checkpoint import CheckpointError, load_lm_layers
from lm4vis.checkpoint.meta import MetaReader, meta_ffn_dim, meta_layer_names

DIM, HEADS, KV_HEADS, LAYERS, VOCAB, MULTIPLE_OF = 64, 4, 2, 3, 96, 32

_HF_TO_META = {
    "self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
    "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
    "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2", "mlp.up_proj": "feed_forward.w3",
    "input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
}
# Meta's model-parallel layout: column-parallel split rows, row-parallel split columns.
_SPLIT = {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0, "wo": 1, "w2": 1}


def tiny_hf(ffn_dim_multiplier: float | None = None, seed: int = 0) -> tf.LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = tf.LlamaConfig(
        vocab_size=VOCAB, hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS, intermediate_size=meta_ffn_dim(DIM, MULTIPLE_OF, ffn_dim_multiplier),
        rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation="eager",
    )
    model = tf.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # norms start at 1: perturb them so they are tested
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


def _interleave(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Inverse of HF's conversion permute: rotate-half rows -> Meta's interleaved rows."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def hf_to_meta(model) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in model.state_dict().items():
        if name == "model.embed_tokens.weight":
            out["tok_embeddings.weight"] = t
        elif name == "model.norm.weight":
            out["norm.weight"] = t
        elif name == "lm_head.weight":
            out["output.weight"] = t
        else:
            _, _, i, rest = name.split(".", 3)
            module, _, kind = rest.rpartition(".")
            meta = f"layers.{i}.{_HF_TO_META[module]}.{kind}"
            if module == "self_attn.q_proj":
                t = _interleave(t, HEADS)
            elif module == "self_attn.k_proj":
                t = _interleave(t, KV_HEADS)
            out[meta] = t
    return out


def write_meta(folder, model, shards: int = 1, ffn_dim_multiplier: float | None = None,
               embed_split: int = 1, dtype: torch.dtype = torch.float32) -> None:
    """Write ``model`` as Meta's ``consolidated.NN.pth`` shards plus ``params.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = hf_to_meta(model)
    parts: list[dict[str, torch.Tensor]] = [{} for _ in range(shards)]
    for name, t in state.items():
        role = name.split(".")[-2]
        dim = embed_split if role == "tok_embeddings" else _SPLIT.get(role)
        for s in range(shards):
            # clone: torch.save of a view would write the whole underlying storage
            piece = t if dim is None else t.chunk(shards, dim)[s]
            parts[s][name] = piece.to(dtype).clone()
    for s, part in enumerate(parts):
        torch.save(part, folder / f"consolidated.{s:02d}.pth")
    params = {"dim": DIM, "n_layers": LAYERS, "n_heads": HEADS, "n_kv_heads": KV_HEADS,
              "multiple_of": MULTIPLE_OF, "norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": VOCAB}
    if ffn_dim_multiplier is not None:
        params["ffn_dim_multiplier"] = ffn_dim_multiplier
    (folder / "params.json").write_text(json.dumps(params))


def hf_layer_output(model, i: int, x: torch.Tensor) -> torch.Tensor:
    """HF decoder layer ``i`` with rotary off (cos 1, sin 0) and no mask (bidirectional)."""
    layer = model.model.layers[i]
    cos = torch.ones(x.shape[0], x.shape[1], DIM // HEADS)
    return layer(hidden_states=x, attention_mask=None, position_embeddings=(cos, torch.zeros_like(cos)))


CASES = [  # (shards, ffn_dim_multiplier, token-embedding split dim: 1 LLaMA 1/2, 0 LLaMA 3)
    pytest.param((1, None, 1), id="1-shard"),
    pytest.param((2, None, 1), id="2-shards"),
    pytest.param((2, 1.3, 0), id="2-shards-ffn-multiplier-vocab-split"),
]


@pytest.fixture(scope="module", params=CASES)
def meta_dir(request, tmp_path_factory):
    shards, mult, embed_split = request.param
    model = tiny_hf(mult)
    folder = tmp_path_factory.mktemp("meta") / "ckpt"
    write_meta(folder, model, shards, mult, embed_split)
    return model, folder


def test_config_from_params_and_shapes(meta_dir):
    model, folder = meta_dir
    c = MetaReader(folder).config
    assert (c.family, c.lm_dim, c.num_layers, c.num_heads, c.num_kv_heads, c.ffn_dim) == (
        "llama", DIM, LAYERS, HEADS, KV_HEADS, model.config.intermediate_size)


@pytest.mark.parametrize("open_per", ["tensor", "shard"])
def test_weights_equal_hf(meta_dir, open_per, monkeypatch):
    model, folder = meta_dir
    monkeypatch.setattr(MetaReader, "open_per", open_per)
    reader = MetaReader(folder)
    hf = model.state_dict()
    for i in range(LAYERS):
        state = reader.layer_state(i)
        assert set(state) == set(meta_layer_names(i))
        for canonical, t in state.items():
            module, _, kind = canonical.rpartition(".")
            hf_module = {"attn_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"}.get(
                module, module.replace("attn.", "self_attn."))
            assert torch.equal(t, hf[f"model.layers.{i}.{hf_module}.{kind}"]), canonical
    assert torch.equal(reader.final_norm_state()["weight"], hf["model.norm.weight"])
    assert torch.equal(reader.tensor("tok_embeddings.weight"), hf["model.embed_tokens.weight"])
    assert torch.equal(reader.tensor("output.weight"), hf["lm_head.weight"])


def test_layer_output_matches_hf(meta_dir):
    model, folder = meta_dir
    stack = load_lm_layers(folder, layers="-2:")
    assert stack.layer_indices == (LAYERS - 2, LAYERS - 1)
    x = torch.randn(2, 9, DIM)
    with torch.no_grad():
        ref = hf_layer_output(model, LAYERS - 1, hf_layer_output(model, LAYERS - 2, x))
        ours = stack(x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_rotary_switch_matches_hf_causal_layer(meta_dir):
    """With rotary and the causal mask switched on, the un-permuted q/k give HF's exact layer."""
    from lm4vis.lm.layers import rope_tables

    model, folder = meta_dir
    stack = load_lm_layers(folder, layers=0)
    n = 6
    x = torch.randn(1, n, DIM)
    cos, sin = model.model.rotary_emb(x, torch.arange(n)[None])
    causal = torch.full((n, n), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        ref = model.model.layers[0](hidden_states=x, attention_mask=causal, position_embeddings=(cos, sin))
        ours = stack(x, rope=rope_tables(stack.config, n), causal=True)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_stored_dtype_kept_and_layer_bytes(tmp_path):
    model = tiny_hf()
    write_meta(tmp_path / "bf16", model, shards=2, dtype=torch.bfloat16)
    reader = MetaReader(tmp_path / "bf16")
    assert reader.stored_dtype() == "bfloat16"
    assert reader.layer_state(0)["attn.q_proj.weight"].dtype == torch.bfloat16
    assert reader.layer_state(0, torch.float32)["mlp.down_proj.weight"].dtype == torch.float32
    expected = sum(p.numel() for p in model.model.layers[0].parameters()) * 2
    assert reader.layer_bytes(0) == expected


# ----------------------------------------------------------------------------- bad inputs


class _Payload:
    """Unpickling this creates ``marker``: the proof whether a loader ran pickled code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _params(folder):
    (folder / "params.json").write_text(json.dumps(
        {"dim": DIM, "n_layers": LAYERS, "n_heads": HEADS, "multiple_of": MULTIPLE_OF, "norm_eps": 1e-5}))


def _resnet(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "bn1.weight": torch.ones(8),
                "layer1.0.conv1.weight": torch.zeros(8, 8, 3, 3), "fc.weight": torch.zeros(10, 8)},
               folder / "consolidated.00.pth")
    _params(folder)
    return folder


def _missing_middle_shard(tmp_path):
    folder = tmp_path / "ckpt"
    write_meta(folder, tiny_hf(), shards=3 if HEADS % 3 == 0 else 2)
    shutil.copy(folder / "consolidated.01.pth", folder / "consolidated.02.pth")
    (folder / "consolidated.01.pth").unlink()
    return folder


def _missing_last_shard(tmp_path):
    folder = tmp_path / "ckpt"
    write_meta(folder, tiny_hf(), shards=2)
    (folder / "consolidated.01.pth").unlink()
    return folder


def _disagreeing_shards(tmp_path):
    folder = tmp_path / "ckpt"
    write_meta(folder, tiny_hf(), shards=2)
    other = tmp_path / "other"
    write_meta(other, tiny_hf(), shards=4)  # a different tensor-parallel split of the same model
    sd = torch.load(other / "consolidated.01.pth", weights_only=True)
    first = torch.load(folder / "consolidated.00.pth", weights_only=True)
    first["layers.1.attention.wo.weight"] = sd["layers.1.attention.wo.weight"]
    torch.save(first, folder / "consolidated.00.pth")
    return folder


def _wrong_params(tmp_path):
    folder = tmp_path / "ckpt"
    write_meta(folder, tiny_hf(), shards=1)
    params = json.loads((folder / "params.json").read_text())
    params["ffn_dim_multiplier"] = 1.5
    (folder / "params.json").write_text(json.dumps(params))
    return folder


@pytest.mark.parametrize("make,words", [
    (_resnet, ["not a Meta LLaMA checkpoint", "conv1.weight", "layers.0.attention.wq.weight"]),
    (_missing_middle_shard, ["missing shard", "consolidated.01.pth"]),
    (_missing_last_shard, ["shard is missing"]),
    (_disagreeing_shards, ["disagree", "layers.1.attention.wo.weight"]),
    (_wrong_params, ["params.json", "MLP width"]),
])
def test_bad_checkpoints_give_one_clear_error(tmp_path, make, words):
    folder = make(tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_lm_layers(folder)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    _params(folder)
    marker = tmp_path / "payload-ran"
    torch.save({"layers.0.attention.wq.weight": _Payload(str(marker))}, folder / "consolidated.00.pth")

    with pytest.raises(CheckpointError) as err:
        load_lm_layers(folder)
    assert "refused" in str(err.value) and "weights_only" in str(err.value)
    assert not marker.exists()

    # The payload is real: an unsafe load does run it.
    torch.load(folder / "consolidated.00.pth", weights_only=False)
    assert marker.exists()
