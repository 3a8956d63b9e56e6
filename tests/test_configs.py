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
            "vit-base-llama7b", "motion-demo", "motion-demo-quick", "vectornet-llama7b",
            "mmtransformer-llama7b", "vqa-demo", "vqa-demo-quick", "meter-llama7b"} <= names


def _motion_forward(cfg, model) -> None:
    """A motion host on a few simulated scenes (Argoverse's 20 + 30 steps at 10 Hz, so the
    simulator stands in for a release that is not here)."""
    from lm4vis.data.motion import SimTraffic, SimTrafficDataConfig

    sim = SimTraffic(SimTrafficDataConfig(num_val=2, max_agents=cfg.data.max_agents, cache=False), "val")
    batch = sim.collate([sim[0], sim[1]])
    with torch.no_grad():
        out = model(batch["vectors"], batch["vector_mask"], batch["polyline_mask"])
    assert out["trajectories"].shape == (2, cfg.host.num_modes, sim.info.pred_len, 2)


#: host kind -> (overrides that drop what the preset reads from disk, one input of the preset's shape)
EXAMPLE_INPUTS = {
    "timm-vit": ({}, lambda cfg: torch.zeros(1, cfg.host.in_chans, cfg.host.img_size, cfg.host.img_size)),
    # The Point-BERT.pth path is the user's. Two points per group are enough to build every
    # shape of the model (and keep the 8k preset's FPS out of the test's time).
    "point-bert": ({"host.pretrained": None},
                   lambda cfg: torch.randn(1, min(cfg.data.num_points, 2 * max(cfg.host.num_groups, cfg.host.group_size)),
                                           cfg.host.in_chans)),
    "videomae": ({}, lambda cfg: torch.zeros(1, *_input_shape(cfg.host))),
}


def _input_shape(host) -> tuple[int, ...]:
    """One sample's shape: a clip (C, T, H, W) for video hosts, an image (C, H, W) otherwise."""
    if hasattr(host, "num_frames"):
        return host.in_chans, host.num_frames, host.image_size, host.image_size
    return host.in_chans, host.img_size, host.img_size


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: str(p.relative_to(configs_dir())))
def test_preset_builds(path: Path, tiny_llama: str, tmp_path_factory):
    cfg = load_config(path)
    assert cfg.data.name in DATASETS
    # The real LM may be 7B (or a user path); a 2-layer random LLaMA stands in for it.
    if cfg.host.kind == "vectornet":
        from lm4vis.data.motion import SimTraffic, SimTrafficDataConfig

        cfg = cfg.replace({"block.source": tiny_llama, "block.layers": -1})
        info = SimTraffic(SimTrafficDataConfig(num_val=2, cache=False), "val").info
        model = build_model(cfg.host, cfg.block, seed=0, info=info).eval()
        _motion_forward(cfg, model)
        assert model.lm_slot.filled == (cfg.block.variant != "baseline")
        return
    if cfg.host.kind == "scene-vqa":
        _scene_vqa_forward(cfg.replace({"block.source": tiny_llama, "block.layers": -1}))
        return
    if cfg.host.kind == "dual-encoder":
        _dual_encoder_forward(cfg, tiny_llama, tmp_path_factory)
        return
    if cfg.host.kind == "fusion-vqa":
        _vqa_builds(cfg, tiny_llama)
        return
    offline, example = EXAMPLE_INPUTS[cfg.host.kind]
    cfg = cfg.replace({"block.source": tiny_llama, "block.layers": -1, **offline})
    model = build_model(cfg.host, cfg.block, seed=0).eval()
    with torch.no_grad():
        out = model(example(cfg))
    assert out.shape == (1, cfg.host.num_classes)
    slot = getattr(model, "lm_slot", None)
    attached = getattr(model, "lm_block", None) is not None or (slot is not None and slot.filled)
    assert attached == (cfg.block.variant != "baseline")


def _scene_vqa_forward(cfg) -> None:
    """A scene-VQA host, sized by a stand-in vocabulary, on one scene of the preset's channels
    (two points per group, as for point-bert) and a short question and situation."""
    from lm4vis.data.vqa3d import SceneQAInfo

    info = SceneQAInfo(cfg.data.name, ("yes", "no", "2"), ("what",), 20, 0, cfg.data.num_points, cfg.data.max_length)
    model = build_model(cfg.host, cfg.block, seed=0, info=info).eval()
    n = min(cfg.data.num_points, 2 * max(cfg.host.num_groups, cfg.host.group_size))
    ids, pad = torch.tensor([[2, 5, 6, 3]]), torch.zeros(1, 4, dtype=torch.bool)
    with torch.no_grad():
        out = model(torch.rand(1, n, cfg.host.in_chans), ids, pad, ids, pad)
    assert out["logits"].shape == (1, 3)
    assert model.get_submodule(cfg.block.where).filled == (cfg.block.variant != "baseline")


def test_vqa3d_presets():
    demo = load_config("vqa3d-demo")
    assert (demo.host.kind, demo.data.name, demo.task.name, demo.block.source, demo.block.where) == (
        "scene-vqa", "rooms3d-qa", "scene-qa", "smollm2-135m", "scene_lm_slot")
    paper = load_config("scene-vqa-llama7b")
    assert (paper.data.name, paper.data.num_points, paper.block.layers, paper.block.where) == (
        "sqa3d", 40000, 31, "scene_lm_slot")
    assert paper.host.aux_heads and paper.task.aux_weight > 0 and paper.host.num_groups >= 256


def _dual_encoder_forward(cfg, tiny_llama: str, tmp_path_factory) -> None:
    """A dual-encoder preset with tiny stand-ins for its pretrained towers (CLIP vision, a
    BERT-family text encoder, saved by transformers) and the 8 px images they take."""
    from dataclasses import dataclass

    overrides = {"block.source": tiny_llama, "block.layers": -1}
    if cfg.host.image.pretrained or cfg.host.text.pretrained:
        from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel

        folder = tmp_path_factory.mktemp("towers")
        CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, image_size=16, patch_size=8)).save_pretrained(folder / "clip")
        BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32)).save_pretrained(folder / "text")
        overrides |= {"host.image.pretrained": str(folder / "clip"), "host.text.pretrained": str(folder / "text"),
                      "host.image.img_size": 16, "data.image_size": 16, "data.tokenizer": str(folder / "text")}
    cfg = cfg.replace(overrides)

    @dataclass(frozen=True)
    class Info:
        name: str = "captions"
        vocab_size: int = 64
        pad_id: int = 0

    model = build_model(cfg.host, cfg.block, seed=0, info=Info()).eval()
    size = cfg.host.image.img_size
    with torch.no_grad():
        image, text = model(torch.zeros(1, 3, size, size, dtype=torch.uint8), torch.tensor([[2, 5, 3]]),
                            torch.zeros(1, 3, dtype=torch.bool))
    assert image.shape == text.shape == (1, cfg.host.embed_dim)
    assert model.image_lm_slot.filled == (cfg.block.variant != "baseline")


def test_retrieval_paper_preset():
    cfg = load_config("meter-llama7b-retrieval")
    h, d, o = cfg.host, cfg.data, cfg.optim
    assert (h.kind, d.name, cfg.task.name, cfg.block.where, cfg.block.layers) == (
        "dual-encoder", "karpathy-captions", "retrieval", "image_lm_slot", -1)
    assert (cfg.trainer.max_epochs, o.lr, d.max_length, d.image_size, d.val_split) == (10, 5e-6, 40, 384, "test")
    assert d.batch_size * cfg.trainer.devices == 512  # METER's batch
    assert h.text.pretrained == d.tokenizer  # the text tower reads its own tokeniser's ids


def _vqa_builds(cfg, tiny_llama: str) -> None:
    """A fusion-vqa preset without what it reads from disk (CLIP and RoBERTa folders, VQAv2), its
    answers and vocabulary from the dataset's info (shapes-vqa) or a stand-in of VQAv2's sizes."""
    from lm4vis.data.vl.items import VQAInfo
    from lm4vis.train.datamodule import build_source

    offline = {"block.source": tiny_llama, "block.layers": -1}
    if cfg.data.name == "vqav2":
        offline |= {"host.image.encoder": "timm", "host.image.clip_dir": None, "host.image.img_size": 32,
                    "host.image.patch_size": 16, "host.text.pretrained": None, "data.tokenizer": None, "host.depth": 2,
                    "data.image_size": None}
    cfg = cfg.replace(offline)
    info = (build_source(cfg).info if cfg.data.name != "vqav2" else
            VQAInfo("vqav2", cfg.data.image_size, tuple(map(str, range(cfg.data.top_k_answers))),
                    ("yes/no", "number", "other"), (), 100, 0, max_length=cfg.data.max_length))
    model = build_model(cfg.host, cfg.block, seed=0, info=info).eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        out = model(torch.zeros(1, 3, cfg.data.image_size, cfg.data.image_size), ids, torch.zeros_like(ids, dtype=torch.bool))
    assert out.shape == (1, info.num_answers)
    assert model.image_lm_slot.filled == (cfg.block.variant != "baseline")


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


POINT_RECIPES = [  # preset, dataset, variant, points, groups, classes
    ("pointbert-scanobjectnn-pb_t50_rs", "scanobjectnn", "pb_t50_rs", 2048, 64, 15),
    ("pointbert-scanobjectnn-obj_bg", "scanobjectnn", "obj_bg", 2048, 64, 15),
    ("pointbert-scanobjectnn-obj_only", "scanobjectnn", "obj_only", 2048, 64, 15),
    ("pointbert-modelnet40-1k", "modelnet40-resampled", None, 1024, 64, 40),
    ("pointbert-modelnet40-4k", "modelnet40-resampled", None, 4096, 256, 40),
    ("pointbert-modelnet40-8k", "modelnet40-resampled", None, 8192, 512, 40),
]


@pytest.mark.parametrize("name, dataset, variant, points, groups, classes", POINT_RECIPES)
def test_pointbert_recipes(name, dataset, variant, points, groups, classes):
    cfg = load_config(name)
    h, d, o = cfg.host, cfg.data, cfg.optim
    assert (h.kind, h.embed_dim, h.depth, h.num_heads, h.group_size, h.drop_path_rate) == ("point-bert", 384, 12, 6, 32, 0.1)
    assert (h.num_groups, h.num_classes, d.name, d.num_points, d.batch_size, d.val_split) == (
        groups, classes, dataset, points, 32, "test")
    assert getattr(d, "variant", None) == variant
    assert (cfg.trainer.max_epochs, o.lr, o.weight_decay, o.schedule, o.warmup_epochs, o.grad_clip) == (
        300, 5e-4, 0.05, "cosine", 10, 10.0)
    assert cfg.block.layers == -1 and cfg.block.source == "/path/to/llama-7b"
    assert h.pretrained == "/path/to/Point-BERT.pth" and h.pretrained_partial  # Point-BERT.pth has no head


def test_points_demo_is_small():
    cfg = load_config("points-demo")
    assert (cfg.host.kind, cfg.data.name, cfg.block.source, cfg.trainer.accelerator) == (
        "point-bert", "shapes3d", "smollm2-135m", "cpu")
    assert cfg.host.num_classes == 14 and cfg.data.num_points >= cfg.host.num_groups


def test_motion_paper_presets():
    cfg = load_config("vectornet-llama7b")
    assert (cfg.host.kind, cfg.data.name, cfg.task.name) == ("vectornet", "argoverse1", "forecasting")
    assert (cfg.trainer.max_epochs, cfg.block.layers, cfg.task.ks, cfg.task.monitor) == (60, 31, [1, 6], "minFDE@6")
    assert cfg.data.batch_size * cfg.trainer.devices == 256 and cfg.host.trajectory == "positions"
    mm = load_config("mmtransformer-llama7b")
    assert (mm.host.decoder, mm.host.num_modes, mm.trainer.max_epochs) == ("queries", 36, 60)
