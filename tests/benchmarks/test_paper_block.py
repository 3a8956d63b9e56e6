"""The benchmarks' reference block and helpers: the paper's block must compute what lm4vis's
block computes (else the speed comparison means nothing), and every script must answer --help."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lm4vis import FrozenLMBlock
from lm4vis.lm import random_lm, tiny_config

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_common as common  # noqa: E402
from paper_block import paper_block_like  # noqa: E402


@pytest.mark.parametrize("overrides, layers, in_dim", [
    ({}, [1], 24),                                  # grouped-query attention (4 heads, 2 kv)
    ({"num_kv_heads": 4}, [1], 24),                 # plain multi-head attention
    ({"num_kv_heads": 1, "ffn_dim": 96}, [0, 1], 40),  # two layers, multi-query
])
def test_paper_block_matches_lm4vis_block(overrides, layers, in_dim):
    torch.manual_seed(0)
    block = FrozenLMBlock(random_lm(tiny_config("llama", **overrides), layers, seed=3), in_dim=in_dim,
                          save_lm_weights=True)
    with torch.no_grad():  # non-unit norm weights, so a swapped norm mapping would show
        for layer in block.lm.layers:
            layer.attn_norm.weight.uniform_(0.5, 1.5)
            layer.mlp_norm.weight.uniform_(0.5, 1.5)
    ref = paper_block_like(block)
    x = torch.randn(3, 11, in_dim)
    with torch.no_grad():
        torch.testing.assert_close(ref(x), block(x), rtol=1e-5, atol=1e-5)


def test_paper_block_is_frozen_except_mappers():
    block = FrozenLMBlock(random_lm(tiny_config("llama"), [1]), in_dim=16, save_lm_weights=True)
    ref = paper_block_like(block)
    trainable = {n for n, p in ref.named_parameters() if p.requires_grad}
    assert trainable == {"llama_dim_mapper1.weight", "llama_dim_mapper2.weight"}


@pytest.mark.parametrize("family", ["opt", "gemma"])
def test_paper_block_refuses_other_families(family):
    block = FrozenLMBlock(random_lm(tiny_config(family), [1]), in_dim=16, save_lm_weights=True)
    with pytest.raises(ValueError, match="llama"):
        paper_block_like(block)


def test_interleaved_times_rotates_and_counts():
    calls = []
    cands = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    times = common.interleaved_times(cands, rounds=3, warmup=1)
    assert {k: (len(v["wall"]), len(v["cpu"])) for k, v in times.items()} == {
        "a": (3, 3), "b": (3, 3), "c": (3, 3)}
    assert calls == list("abc" "abc" "bca" "cab")  # warmup, then a rotating order


@pytest.mark.parametrize("clock", ["wall", "cpu"])
@pytest.mark.parametrize("num, den, expected", [([2.0, 4.0, 9.0], [1.0, 4.0, 3.0], 2.0),
                                                ([1.0], [4.0], 0.25)])
def test_paired_ratio_is_median_of_same_round_ratios(num, den, expected, clock):
    other = [1.0] * len(num)  # the other clock must not be read
    times = {"a": {clock: num, "other": other}, "b": {clock: den, "other": [7.0] * len(den)}}
    assert common.paired_ratio(times, "a", "b", clock) == pytest.approx(expected)


def test_markdown_table_shape():
    text = common.markdown_table(["x", "y"], [["a", 1.23456], ["b", 12345.6]])
    assert text.splitlines() == ["| x | y |", "|---|---|", "| a | 1.23 |", "| b | 12346 |"]


@pytest.mark.parametrize("script", ["block_speed.py", "attention.py", "throughput.py", "run_all.py",
                                    "variants_learn.py"])
def test_scripts_answer_help(script):
    out = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_attention_script_smoke(tmp_path):
    """Runs at toy sizes and records both kernels and auto's choice for each (length, dtype)."""
    import json

    out = subprocess.run(
        [sys.executable, str(BENCH / "attention.py"), "--batch", "2", "--tokens", "5", "--heads", "4",
         "--kv-heads", "2", "--head-dim", "8", "--rounds", "2", "--warmup", "1",
         "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "attention.json").read_text())["results"]
    assert set(results) == {"fp32/N=5", "bf16/N=5"}
    assert results["bf16/N=5"]["auto_picks"] == "matmul" and results["fp32/N=5"]["auto_picks"] == "sdpa"
    for r in results.values():
        assert all(len(r["times_s"][k]["wall"]) == 2 for k in ("sdpa", "matmul"))


def test_roofline_part_smoke(tmp_path):
    """The roofline part counts the step's FLOPs, measures the GEMM rate in the same run, and
    reports a fraction that a real step cannot exceed by much (the GEMM rate is its ceiling)."""
    import json

    out = subprocess.run(
        [sys.executable, str(BENCH / "block_speed.py"), "--parts", "roofline", "--batch", "2", "--tokens", "5",
         "--rounds", "2", "--warmup", "1", "--compile", "no", "--threads", "1", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    payload = json.loads((tmp_path / "block_speed_roofline.json").read_text())
    assert set(payload["results"]) == {"bf16", "fp32"}
    for precision in ("bf16", "fp32"):
        entry = payload["results"][precision]
        assert entry["flops"]["total"] > 0 and entry["gemm_gflops"]["forward"] > 0
        assert 0 < entry["eager"]["fraction"] < 1.5, entry["eager"]
        assert entry["gemms"] and all(g["count"] >= 1 and g["gflops"] > 0 for g in entry["gemms"])
        assert entry["best_gemm_gflops"] == max(g["gflops"] for g in entry["gemms"])
        assert 0 < entry["eager"]["gemm_share"] < 1.5
        assert abs(sum(entry["time_by_kind"]["eager"].values()) - 1) < 1e-6
        assert "matmul" in entry["time_by_kind"]["eager"]
    assert "GEMM share" in (tmp_path / "block_speed_roofline.md").read_text()
