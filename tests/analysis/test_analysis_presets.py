"""Every preset of configs/analysis/ loads and describes an analysable run."""

from pathlib import Path

import pytest

from lm4vis.data import DATASETS
from lm4vis.hosts import VARIANTS
from lm4vis.train import load_config

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "analysis").glob("*.yaml"))


def test_there_is_a_preset():
    assert PRESETS, "configs/analysis/ holds no preset"


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
@pytest.mark.parametrize("variant", ["baseline", "frozen-lm", "mlp"])
def test_preset_loads_with_every_compared_variant(path, variant):
    assert variant in VARIANTS
    cfg = load_config(path, [f"block.variant={variant}"])
    assert DATASETS[cfg.data.name].has_masks  # the analysis needs foreground masks
    assert cfg.host.img_size % cfg.host.patch_size == 0
    assert cfg.block.where == "last"  # the paper's placement, which the stage names assume
