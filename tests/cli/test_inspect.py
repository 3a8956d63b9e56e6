"""lm4vis inspect: metadata only, the cost of a layer choice, and clear errors."""

import json

import pytest

from lm4vis.cli import main


def test_inspect_tiny_llama(tiny_hf, capsys):
    model, path = tiny_hf.get("llama")
    cfg = model.config
    assert main(["inspect", str(path), "--layers", "-2:", "--tokens", "10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "llama"
    assert info["num_layers"] == cfg.num_hidden_layers
    assert (info["lm_dim"], info["num_heads"], info["num_kv_heads"]) == (
        cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads)
    assert info["layers"] == [cfg.num_hidden_layers - 2, cfg.num_hidden_layers - 1]
    per_layer = sum(p.numel() for p in model.model.layers[0].parameters())
    assert info["params"] == 2 * per_layer
    assert info["bytes_per_layer"] == per_layer * 4  # saved in fp32
    assert info["flops_per_token"] > 2 * 2 * per_layer  # matmuls plus attention


def test_inspect_table_output(tiny_hf, capsys):
    _, path = tiny_hf.get("gpt2")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gpt2" in out and "FLOPs per token" in out


@pytest.mark.parametrize("args, match", [
    (["inspect", "/no/such/checkpoint"], "does not exist"),
    (["inspect", "smollm2-135m", "--layers", "30"], "30 layers"),
])
def test_inspect_errors(args, match, capsys):
    assert main(args) == 1
    assert match in capsys.readouterr().err
