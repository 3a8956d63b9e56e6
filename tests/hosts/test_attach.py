"""attach(): every placement on several timm families; the host's API and paths survive."""

import copy

import pytest
import timm
import torch

from lm4vis.hosts import AttachError, BlockConfig, HostConfig, attach, build_model, detach, find_attachment, token_layout
from lm4vis.lm import random_lm, tiny_config

HOSTS = {
    "vit": dict(model_name="vit_tiny_patch16_224", img_size=32, patch_size=8),
    "deit_distilled": dict(model_name="deit_tiny_distilled_patch16_224", img_size=32, patch_size=8),
    "eva02": dict(model_name="eva02_tiny_patch14_224", img_size=28, patch_size=7),
}
PLACEMENTS = ["last", "first", "middle", 2, -3, "blocks.4.mlp"]


def make_host(name):
    kw = dict(HOSTS[name])
    torch.manual_seed(0)
    return timm.create_model(kw.pop("model_name"), in_chans=3, num_classes=5, depth=6, **kw)


@pytest.mark.parametrize("host", list(HOSTS))
@pytest.mark.parametrize("where", PLACEMENTS)
def test_attach_every_placement(host, where):
    model = make_host(host).eval()
    size = HOSTS[host]["img_size"]
    x = torch.randn(2, 3, size, size)
    keys_before = set(model.state_dict())
    nwd_before = model.no_weight_decay()
    with torch.no_grad():
        base = model(x)
    block = attach(model, random_lm(tiny_config("llama"), [1]), where=where)
    assert model.lm_block is block and block.in_dim == model.embed_dim
    with torch.no_grad():
        out = model(x)
        feats = model.forward_features(x)
        head = model.forward_head(feats)
    assert out.shape == base.shape and not torch.allclose(out, base)
    torch.testing.assert_close(head, out)
    assert model.no_weight_decay() == nwd_before
    # host keys untouched; the block's trainable adapters are added under lm_block.
    new_keys = set(model.state_dict()) - keys_before
    assert keys_before <= set(model.state_dict())
    assert {"lm_block.proj_in.weight", "lm_block.proj_out.weight"} <= new_keys
    model(x).sum().backward()
    assert block.proj_in.weight.grad is not None
    assert all(p.grad is None for p in block.lm.parameters())


def test_placement_targets():
    model = make_host("vit")
    expected = {"last": ("blocks.5", "after"), "first": ("blocks.0", "before"),
                "middle": ("blocks.2", "after"), 2: ("blocks.2", "after"), -3: ("blocks.3", "after")}
    for where, (path, position) in expected.items():
        attach(model, random_lm(tiny_config("llama"), [1]), where=where)
        att = find_attachment(model)
        assert (att.target_path, att.position) == (path, position)
        detach(model)


def test_detach_restores_outputs_and_deepcopy_keeps_own_block():
    model = make_host("vit").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        base = model(x)
    attach(model, random_lm(tiny_config("llama"), [1]))
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.lm_block.proj_out.weight.zero_()  # the copy's block now outputs zeros
        assert not torch.allclose(model(x), clone(x))
    detach(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), base)
    assert not hasattr(model, "lm_block")


@pytest.mark.parametrize("where, match", [
    ("blocks.99", "matches no module"),
    ("blokcs.1", "did you mean"),
    (17, "out of range: the host has 6 blocks"),
])
def test_bad_where(where, match):
    with pytest.raises(AttachError, match=match):
        attach(make_host("vit"), random_lm(tiny_config("llama"), [1]), where=where)


def test_output_not_tokens_is_a_clear_error():
    model = make_host("vit")
    attach(model, random_lm(tiny_config("llama"), [1]), where="patch_embed.proj")
    with pytest.raises(AttachError, match="not a token tensor"):
        model(torch.randn(1, 3, 32, 32))


def test_generic_module_needs_width_and_checks_it():
    net = torch.nn.Sequential(torch.nn.Linear(8, 12), torch.nn.GELU())
    with pytest.raises(AttachError, match="pass in_dim"):
        attach(net, random_lm(tiny_config("llama"), [1]), where="0")
    block = attach(net, random_lm(tiny_config("llama"), [1]), where="0", in_dim=12)
    assert net(torch.randn(2, 4, 8)).shape == (2, 4, 12) and block.in_dim == 12


def test_block_width_mismatch():
    from lm4vis import FrozenLMBlock

    block = FrozenLMBlock(random_lm(tiny_config("llama"), [1]), 100, save_lm_weights=True)
    with pytest.raises(AttachError, match="in_dim=192"):
        attach(make_host("vit"), block)


def test_attach_twice_refused():
    model = make_host("vit")
    attach(model, random_lm(tiny_config("llama"), [1]))
    with pytest.raises(AttachError, match="already"):
        attach(model, random_lm(tiny_config("llama"), [1]))


def test_build_model_same_host_init_across_variants(tmp_path):
    host = HostConfig(name="vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=1,
                      kwargs={"depth": 2})
    models = {}
    for variant in ["baseline", "mlp"]:
        models[variant] = build_model(host, BlockConfig(variant=variant, source=_tiny_ckpt(tmp_path)), seed=7)
    base_sd = models["baseline"].state_dict()
    for k, v in models["mlp"].state_dict().items():
        if not k.startswith("lm_block"):
            assert torch.equal(v, base_sd[k]), k
    assert token_layout(models["mlp"]).grid == (4, 4)


def test_unknown_variant_and_model():
    with pytest.raises(ValueError, match="frozen-lm"):
        BlockConfig(variant="frozen")
    from lm4vis.hosts import build_host
    with pytest.raises(ValueError, match="unknown timm model"):
        build_host(HostConfig(name="vit_nonexistent_xyz"))


def _tiny_ckpt(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=50)
    path = tmp_path / "tiny-llama"
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)
