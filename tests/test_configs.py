"""Every shipped preset loads, validates and builds its model (with a tiny stand-in LM)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lm4vis.hosts import build_model
from lm4vis.registry import DATASETS
from lm4vis.train.config import configs_dir, load_config

PRESETS = sorted(configs_dir().glob("**/*.yaml"))


def test_presets_exist():
    names = {p.stem for p in PRESETS}
    assert {"demo", "demo-quick", "fashion-mnist-vit-tiny", "vit-tiny-llama7b", "vit-small-llama7b",
            "vit-base-llama7b"} <= names


def _input_shape(host) -> tuple[int, ...]:
    """One sample's shape: a clip (C, T, H, W) for video hosts, an image (C, H, W) otherwise."""
    if hasattr(host, "num_frames"):
        return host.in_chans, host.num_frames, host.image_size, host.image_size
    return host.in_chans, host.img_size, host.img_size


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: str(p.relative_to(configs_dir())))
def test_preset_builds(path: Path, tiny_llama: str):
    cfg = load_config(path)
    assert cfg.data.name in DATASETS
    # The real LM may be 7B (or a user path); a 2-layer random LLaMA stands in for it.
    cfg = cfg.replace({"block.source": tiny_llama, "block.layers": -1})
    model = build_model(cfg.host, cfg.block, seed=0).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, *_input_shape(cfg.host)))
    assert out.shape == (1, cfg.host.num_classes)
    assert (getattr(model, "lm_block", None) is None) == (cfg.block.variant == "baseline")


@pytest.mark.parametrize("name, host, drop_path, layers", [
    ("vit-tiny-llama7b", "vit_tiny_patch16_224", 0.1, 31),
    ("vit-small-llama7b", "vit_small_patch16_224", 0.1, 31),
    ("vit-base-llama7b", "vit_base_patch16_224", 0.1, 31),
])
def test_deit_recipes(name, host, drop_path, layers):
    cfg = load_config(name)
    o = cfg.optim
    assert (cfg.host.name, cfg.host.drop_path_rate, cfg.block.layers) == (host, drop_path, layers)
    assert (cfg.trainer.max_epochs, o.lr, o.lr_batch_size, o.weight_decay, o.warmup_epochs) == (300, 5e-4, 512, 0.05, 5)
    assert (cfg.task.label_smoothing, cfg.task.mixup, cfg.task.cutmix, cfg.data.randaugment) == (0.1, 0.8, 1.0, "rand-m9-mstd0.5-inc1")
    assert cfg.data.batch_size * cfg.trainer.devices == 1024  # the authors' total batch
