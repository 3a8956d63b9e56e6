"""Shared fixtures of the training tests: a tiny synthetic image dataset, a tiny LLaMA
checkpoint written by transformers, and a tiny run config that trains in seconds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from lm4vis.train.config import RunConfig, load_config


@dataclass(frozen=True)
class Info:
    name: str
    num_classes: int
    in_chans: int
    image_size: int
    class_names: tuple[str, ...]
    has_masks: bool = False


class SyntheticImages(torch.utils.data.Dataset):
    """Class k is noise at brightness level k with a bright square in quadrant k: learnable
    in a few steps, deterministic per (split, index)."""

    def __init__(self, n: int, num_classes: int = 4, in_chans: int = 1, size: int = 16, split: str = "train"):
        self.n, self.num_classes, self.size = n, num_classes, size
        self.info = Info("synthetic", num_classes, in_chans, size, tuple(f"c{i}" for i in range(num_classes)))
        self.offset = {"train": 0, "val": 10_000, "test": 20_000}[split]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(i)
        g = torch.Generator().manual_seed(self.offset + i)
        label = i % self.num_classes
        level = 200 * label // max(1, self.num_classes - 1)
        img = torch.randint(0, 50, (self.info.in_chans, self.size, self.size), generator=g) + level // 2
        h = self.size // 2
        r, c = divmod(label % 4, 2)
        img[:, r * h : r * h + h // 2, c * h : c * h + h // 2] = 255
        return img.to(torch.uint8), label


def synthetic_factory(n_train: int = 64, n_val: int = 32, **kw):
    def build(name, split="train", root=None, image_size=None, seed=0, limit=None, **_):
        n = n_train if split == "train" else n_val
        if limit is not None:
            n = min(n, limit)
        return SyntheticImages(n, split=split, **kw)
    return build


def _register_synthetic() -> None:
    """The tests' image dataset, registered as any user's would be."""
    from lm4vis import register_dataset
    from lm4vis.data.configs import ImageDataConfig
    from lm4vis.data.image_source import ImageSource

    register_dataset("synthetic", config=ImageDataConfig, builder=_synthetic_source)


def _synthetic_source(cfg):
    from lm4vis.data.image_source import ImageSource

    return ImageSource(cfg, base=_SYNTHETIC)


_SYNTHETIC = synthetic_factory()
_register_synthetic()


@pytest.fixture
def factory():
    """The synthetic dataset's raw factory (registered as data.name=synthetic)."""
    return _SYNTHETIC


TINY_OVERRIDES = {
    "host.name": "vit_tiny_patch16_224",
    "host.img_size": 16,
    "host.patch_size": 4,
    "host.in_chans": 1,
    "host.num_classes": 4,
    "host.kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2},
    "data.name": "synthetic",
    "data.batch_size": 16,
    "data.mean": [0.2],
    "data.std": [0.3],
    "optim.lr": 3e-3,
    "optim.weight_decay": 0.01,
    "trainer.max_epochs": 2,
    "trainer.accelerator": "cpu",
    "trainer.devices": 1,
    "trainer.progress_bar": False,
    "trainer.log_every_n_steps": 1,
}


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> str:
    """A 2-layer random LLaMA (width 48) saved by transformers, as a Hugging Face directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture
def tiny_cfg(tmp_path, tiny_llama_dir) -> RunConfig:
    over = dict(TINY_OVERRIDES)
    over.update({"block.source": tiny_llama_dir, "block.layers": -1, "out_dir": str(tmp_path / "runs")})
    return load_config(None, over)


@pytest.fixture(scope="session")
def tiny_overrides() -> dict:
    """`TINY_OVERRIDES`, for tests that write them into a preset file (a fixture, so that no test
    module has to import this conftest by name, which depends on sys.path order)."""
    return dict(TINY_OVERRIDES)
