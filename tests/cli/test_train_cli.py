"""`lm4vis train / compare / demo` from the command line: help, bad input, DDP, the demo."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lm4vis.cli import main

# A ViT small enough for seconds on Fashion-MNIST (the data the demo uses).
TINY = [
    "--config", "fashion-mnist-vit-tiny", "host.img_size=28", "host.patch_size=7",
    "host.kwargs={embed_dim: 32, depth: 2, num_heads: 2}", "data.limit_train=128", "data.limit_val=64",
    "data.batch_size=32", "trainer.max_epochs=1", "trainer.progress_bar=false",
]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, tiny_llama):
    """One finished run that no bad command may touch."""
    out = tmp_path_factory.mktemp("cli_runs")
    assert main(["train", *TINY, f"block.source={tiny_llama}", "--out", str(out), "--run-name", "keep"]) == 0
    return out, out / "keep"


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["train", "compare", "demo"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and f"lm4vis {command}" in text


def _bad_cases(tmp: Path, run: Path, llama: str) -> dict[str, tuple[list[str], list[str]]]:
    empty = tmp / "empty"
    empty.mkdir(exist_ok=True)
    src = f"block.source={llama}"
    return {
        "unknown timm model": (["train", *TINY, src, "host.name=vit_nonexistent_model"],
                               ["vit_nonexistent_model", "timm"]),
        "where matches nothing": (["train", *TINY, src, "block.where=blocks.99.nowhere"],
                                  ["blocks.99.nowhere", "matches no module"]),
        "missing dataset path": (["train", *TINY, src, "data.name=imagefolder", f"data.root={tmp / 'nope'}"],
                                 ["nope", "check the path"]),
        "empty dataset folder": (["train", *TINY, src, "data.name=imagefolder", f"data.root={empty}"],
                                 ["no class folders", str(empty)]),
        "unknown config key": (["train", *TINY, src, "optim.lrr=1e-3"],
                               ["optim.lrr", "did you mean optim.lr", "valid keys of optim"]),
        "resume with another config": (["train", "--resume", str(run), "optim.lr=0.5", "trainer.max_epochs=3"],
                                       ["cannot resume", "optim.lr", "trainer.max_epochs"]),
        "run folder exists": (["train", *TINY, src, "--out", str(run.parent), "--run-name", run.name],
                              ["already exists", "--resume"]),
        "fsdp on the cpu": (["train", *TINY, src, "--strategy", "fsdp", "--accelerator", "cpu"],
                            ["strategy=fsdp", "CUDA", "--strategy ddp"]),
    }


CASES = ["unknown timm model", "where matches nothing", "missing dataset path", "empty dataset folder",
         "unknown config key", "resume with another config", "run folder exists", "fsdp on the cpu"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_clearly(case, earlier_run, tiny_llama, tmp_path, capsys, monkeypatch):
    out, run = earlier_run
    monkeypatch.chdir(tmp_path)  # a run created by mistake would land here
    before = _fingerprint(run)
    argv, words = _bad_cases(tmp_path, run, tiny_llama)[case]
    if "--out" not in argv and "--resume" not in argv:
        argv = [*argv, "--out", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("lm4vis train: error:") and err.count("\n") == 1  # one clear line
    for w in words:
        assert w in err
    assert _fingerprint(run) == before
    assert sorted(p.name for p in out.iterdir()) == ["keep"]


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, tiny_llama):
    """`strategy=ddp, devices=2` on the CPU: Lightning launches a second `lm4vis train`."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "RANK", "WORLD_SIZE")}
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "lm4vis", "train", *TINY, f"block.source={tiny_llama}", "data.batch_size=16",
           "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--out", str(tmp_path),
           "--run-name", "ddp", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["global_batch_size"] == 32
    assert summary["steps"] == 128 // 32  # each rank saw half of the 128 images per step
    assert "val/acc" in summary["final"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # the worker made no folder of its own


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    code = main(["demo", "--quick", "--seeds", "0", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for words in ("| baseline |", "| frozen-lm |", "| mlp |", "report.md", "wall time", "1.3B"):
        assert words in out
    report = next(tmp_path.glob("demo-quick-*/report.md"))
    assert "## Reading" in report.read_text()
    assert (report.parent / "curves.png").is_file() and (report.parent / "results.json").is_file()


@pytest.mark.slow
def test_sweep_and_compare_print_table_differences_and_report(tmp_path, tiny_llama, capsys):
    base = [*TINY, f"block.source={tiny_llama}", "--seeds", "0,1", "--out", str(tmp_path)]
    assert main(["sweep", *base, "--kind", "llm", "--llms", "random-lm,mlp"]) == 0
    out = capsys.readouterr().out
    for words in ("| random-lm |", "| mlp |", "| variant − baseline |", "sweep-llm/report.md", "sweep.png"):
        assert words in out
    assert main(["compare", *base, "--variants", "baseline,random-lm", "--name", "cmp"]) == 0
    out = capsys.readouterr().out
    for words in ("| random-lm |", "| variant − baseline |", "cmp/report.md", "curves.png"):
        assert words in out


def test_overrides_may_follow_options(tmp_path, capsys):
    """`... block.variant=mlp --seed 1 optim.lrr=1` : the override after an option is read as an
    override (here a misspelt one, so the run stops at config time with its name)."""
    code = main(["train", "--config", "fashion-mnist-vit-tiny", "block.variant=mlp", "--seed", "1",
                 "optim.lrr=1", "--out", str(tmp_path)])
    assert code == 1 and "optim.lrr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", "fashion-mnist-vit-tiny", "--bogus"])
    assert e.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["inspect", "smollm2-135m", "a=1"])  # inspect takes no overrides
    assert list(tmp_path.iterdir()) == []
