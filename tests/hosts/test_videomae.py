"""The registered ``videomae`` host: transformers' VideoMAE with the block attached, on tiny sizes."""

from __future__ import annotations

import pytest
import torch

from lm4vis.hosts.configs import BlockConfig
from lm4vis.hosts.videomae_config import VideoMAEHostConfig
from lm4vis.registry import HOSTS

TINY = dict(num_classes=5, in_chans=1, num_frames=4, image_size=16, patch_size=8, tubelet_size=2,
            embed_dim=16, depth=3, num_heads=2)


def _clips(n: int = 6, cfg: VideoMAEHostConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = cfg or VideoMAEHostConfig(**TINY)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, cfg.in_chans, cfg.num_frames, cfg.image_size, cfg.image_size, generator=g)
    return x, torch.arange(n) % cfg.num_classes


def test_registered_with_its_typed_config_and_declarations():
    part = HOSTS.get("videomae")
    assert part.config is VideoMAEHostConfig
    for extra in ("layout", "stages", "check_data", "describe"):
        assert callable(part.get(extra)), extra
    assert "VideoMAE (depth 3, width 16, 2x8x8 tubelets, 2x2x2 tokens" in part.get("describe")(VideoMAEHostConfig(**TINY))


@pytest.mark.parametrize("bad, words", [
    (dict(embed_dim=17), "not a multiple of host.num_heads"),
    (dict(image_size=20), "not a multiple of host.patch_size"),
    (dict(num_frames=5), "not a multiple of host.tubelet_size"),
    (dict(pos_embed="rope"), "choose one of sincos, learned"),
    (dict(layer_decay=1.5), "must be in (0, 1]"),
])
def test_bad_sizes_are_refused(bad, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace("]", r"\]")):
        VideoMAEHostConfig(**{**TINY, **bad})


def test_the_block_goes_after_the_last_encoder_layer(tiny_llama):
    from lm4vis.hosts import build_model, find_attachment
    from lm4vis.hosts.videomae import videomae_layout, videomae_stages

    cfg = VideoMAEHostConfig(**TINY)
    model = build_model(cfg, BlockConfig(source=tiny_llama))
    att = find_attachment(model)
    assert att.target_path == "blocks.2" and att.position == "after"
    assert model.get_submodule(att.target_path) is model.hf.videomae.encoder.layer[2]
    seen = {}
    model.hf.fc_norm.register_forward_hook(lambda m, a, o: seen.setdefault("fc_norm_in", a[0]))
    model.lm_block.register_forward_hook(lambda m, a, o: seen.setdefault("block_out", o))
    x, _ = _clips(2)
    logits = model(x)
    assert logits.shape == (2, 5)
    # fc_norm sees the mean of the block's output tokens: the block sits before the pooling
    torch.testing.assert_close(seen["fc_norm_in"], seen["block_out"].mean(1))
    layout = videomae_layout(model)
    assert (layout.num_prefix_tokens, layout.grid) == (0, (2, 2, 2))
    assert seen["block_out"].shape[1] == layout.num_patches
    assert videomae_stages(model) == {"last_block": ("blocks.2", "output")}


@pytest.mark.parametrize("where, path", [(0, "blocks.0"), ("hf.videomae.encoder.layer.1", "hf.videomae.encoder.layer.1")])
def test_any_layer_index_or_module_path(tiny_llama, where, path):
    from lm4vis.hosts import build_model, find_attachment

    model = build_model(VideoMAEHostConfig(**TINY), BlockConfig(source=tiny_llama, where=where))
    assert find_attachment(model).target_path == path
    assert model(_clips(2)[0]).shape == (2, 5)


@pytest.mark.parametrize("variant", ["baseline", "frozen-lm", "frozen-ffn", "mlp", "random-lm", "finetune-lm"])
def test_training_steps_lower_the_loss(tiny_llama, variant):
    from lm4vis.hosts import build_model
    from lm4vis.train.optim import param_groups

    model = build_model(VideoMAEHostConfig(**TINY), BlockConfig(variant=variant, source=tiny_llama), seed=0)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    if variant in ("frozen-lm", "frozen-ffn"):
        assert frozen, "the LM layer must be frozen"
    opt = torch.optim.AdamW(param_groups(model, 0.0), lr=3e-3)
    x, y = _clips(8)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


def test_save_pretrained_round_trip_with_the_block_attached(tmp_path, tiny_llama):
    """A state dict written by transformers' save_pretrained loads into the host with the block
    attached: every transformers key is found, and only the block's are extra."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    from lm4vis.hosts import build_model

    cfg = VideoMAEHostConfig(**TINY)
    torch.manual_seed(1)
    saved = VideoMAEForVideoClassification(VideoMAEConfig(
        num_channels=1, patch_size=8, tubelet_size=2, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=64, num_labels=5, num_frames=4, image_size=16, use_mean_pooling=True))
    saved.save_pretrained(tmp_path / "videomae")  # transformers' on-disk names (q_bias, v_bias)
    weights = saved.state_dict()

    loaded = build_model(VideoMAEHostConfig(**TINY, pretrained=str(tmp_path / "videomae")), BlockConfig(source=tiny_llama))
    assert loaded.loading_report == {"missing": [], "unexpected": [], "mismatched": []}
    state = loaded.state_dict()
    block_keys = {k for k in state if k.startswith("lm_block.")}
    assert block_keys and {k.removeprefix("lm_block.") for k in block_keys} == set(loaded.lm_block.state_dict())
    assert set(state) - block_keys == {f"hf.{k}" for k in weights}  # nothing missing, nothing extra
    for k, v in weights.items():  # every weight is the saved one, none left at its initialisation
        assert torch.equal(state[f"hf.{k}"], v), k
    # the state dict of the host with its block round-trips strictly
    fresh = build_model(cfg, BlockConfig(source=tiny_llama), seed=5)
    fresh.load_state_dict(state, strict=True)
    x, _ = _clips(2)
    loaded.eval(), saved.eval()
    with torch.no_grad():  # without the block's effect the host computes what transformers does
        baseline = build_model(VideoMAEHostConfig(**TINY, pretrained=str(tmp_path / "videomae")),
                               BlockConfig(variant="baseline")).eval()
        torch.testing.assert_close(baseline(x), saved(pixel_values=x.transpose(1, 2)).logits)


def test_pretrained_sizes_are_checked(tmp_path):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    from lm4vis.hosts.videomae import build_videomae

    VideoMAEForVideoClassification(VideoMAEConfig(
        num_channels=1, patch_size=8, tubelet_size=2, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=5, num_frames=4, image_size=16)).save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="host.depth=3 but the checkpoint has 2; set host.depth=2"):
        build_videomae(VideoMAEHostConfig(**TINY, pretrained=str(tmp_path / "m")))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_videomae(VideoMAEHostConfig(**TINY, pretrained=str(tmp_path)))
    # other classes: the head is re-initialised, the encoder loaded
    model = build_videomae(VideoMAEHostConfig(**{**TINY, "depth": 2, "num_classes": 7}, pretrained=str(tmp_path / "m")))
    assert model.hf.classifier.out_features == 7


def test_layer_decay_reaches_the_optimizer_groups(tiny_llama):
    from lm4vis.hosts import build_model
    from lm4vis.train.optim import lr_factors, param_groups

    model = build_model(VideoMAEHostConfig(**TINY, layer_decay=0.5), BlockConfig(source=tiny_llama))
    factors = lr_factors(model)
    assert factors["hf.videomae.embeddings.patch_embeddings.projection.weight"] == 0.5 ** 4
    assert factors["hf.videomae.encoder.layer.0.intermediate.dense.weight"] == 0.5 ** 3
    assert factors["hf.videomae.encoder.layer.2.output.dense.bias"] == 0.5
    assert factors["hf.classifier.weight"] == 1.0
    assert not any(k.startswith("lm_block.proj") for k in factors)  # the adapters train at the full rate
    rates = {round(g["lr"] / 1e-3, 6) for g in param_groups(model, 0.05, peak_lr=1e-3) if "lr" in g}
    assert rates == {0.5, 0.25, 0.125, 0.0625}
    off = build_model(VideoMAEHostConfig(**TINY), BlockConfig(variant="baseline"))
    assert lr_factors(off) == {}


def test_learned_positions_train_and_do_not_decay():
    from lm4vis.hosts.videomae import build_videomae
    from lm4vis.train.optim import group_names

    model = build_videomae(VideoMAEHostConfig(**TINY, pos_embed="learned"))
    assert model.pos_embed.shape == (1, 8, 16)
    model(_clips(2)[0]).sum().backward()
    assert model.pos_embed.grad.abs().sum() > 0
    assert "pos_embed" in group_names(model)["no_decay"]
    # the learned table is the only position signal: moving it changes the output
    x = _clips(2)[0]
    before = model(x).detach()
    with torch.no_grad():
        model.pos_embed.add_(torch.randn_like(model.pos_embed))
    assert not torch.allclose(before, model(x))


def test_test_views_are_averaged():
    from lm4vis.hosts.videomae import build_videomae

    model = build_videomae(VideoMAEHostConfig(**TINY)).eval()
    x, _ = _clips(4)
    views = torch.stack([x, x.flip(-1)], dim=1)  # (B, V=2, C, T, H, W)
    with torch.no_grad():
        torch.testing.assert_close(model(views), (model(x) + model(x.flip(-1))) / 2)


def test_check_data_names_the_fix():
    from lm4vis.data.video.base import VideoDatasetInfo
    from lm4vis.hosts.videomae import check_data
    from lm4vis.train.config import ConfigError

    info = VideoDatasetInfo("motion-mnist", 14, tuple(map(str, range(14))), num_frames=4, image_size=16, in_chans=1)
    with pytest.raises(ConfigError, match="host.num_classes=5 but dataset 'motion-mnist' has num_classes=14; "
                                          "set host.num_classes=14"):
        check_data(VideoMAEHostConfig(**TINY), info)
    check_data(VideoMAEHostConfig(**{**TINY, "num_classes": 14}), info)
