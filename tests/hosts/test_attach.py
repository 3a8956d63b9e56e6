"""attach(): every placement on several timm families; the host's API and paths survive."""

import copy

import pytest
import timm
import torch

from lm4vis.hosts import AttachError, BlockConfig, TimmViTConfig, attach, build_model, detach, find_attachment
from lm4vis.hosts.vit import vit_layout
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
    host = TimmViTConfig(name="vit_tiny_patch16_224", img_size=32, patch_size=8, in_chans=1,
                      kwargs={"depth": 2})
    models = {}
    for variant in ["baseline", "mlp"]:
        models[variant] = build_model(host, BlockConfig(variant=variant, source=_tiny_ckpt(tmp_path)), seed=7)
    base_sd = models["baseline"].state_dict()
    for k, v in models["mlp"].state_dict().items():
        if not k.startswith("lm_block"):
            assert torch.equal(v, base_sd[k]), k
    assert vit_layout(models["mlp"]).grid == (4, 4)


def test_unknown_variant_and_model():
    with pytest.raises(ValueError, match="frozen-lm"):
        BlockConfig(variant="frozen")
    from lm4vis.hosts import build_host
    with pytest.raises(ValueError, match="unknown timm model"):
        build_host(TimmViTConfig(name="vit_nonexistent_xyz"))


def _tiny_ckpt(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=50)
    path = tmp_path / "tiny-llama"
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


# -- hosts written for lm4vis (slots), third-party hosts (transformers), masks, named blocks ------
class SlotHost(torch.nn.Module):
    """A host of our own: tokens -> two slots -> mean over real tokens."""

    def __init__(self, width=16, slots=1):
        super().__init__()
        from lm4vis.hosts import LMSlot

        self.embed = torch.nn.Linear(4, width)
        self.lm_slot = LMSlot(width)
        if slots > 1:
            self.fusion_slot = LMSlot(width)

    def forward(self, x, mask):
        h = self.lm_slot(self.embed(x), mask)
        if hasattr(self, "fusion_slot"):
            h = self.fusion_slot(h, mask)
        return h


def test_slot_is_filled_and_receives_the_mask():
    host = SlotHost()
    x, mask = torch.randn(2, 6, 4), torch.zeros(2, 6, dtype=torch.bool)
    mask[1, 4:] = True
    base = host(x, mask)
    block = attach(host, random_lm(tiny_config("llama"), [1]))
    assert host.lm_slot.block is block and find_attachment(host).position == "slot"
    assert "lm_slot.block.proj_in.weight" in host.state_dict() and not hasattr(host, "lm_block")
    seen = []
    block.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    out = host(x, mask)
    assert seen and seen[0] is mask and not torch.allclose(out, base)
    detach(host)
    torch.testing.assert_close(host(x, mask), base)


def test_several_slots_need_a_name_and_take_named_blocks():
    host = SlotHost(slots=2)
    with pytest.raises(AttachError, match="2 LM slots"):
        attach(host, random_lm(tiny_config("llama"), [1]))
    a = attach(host, random_lm(tiny_config("llama"), [1]), where="lm_slot", name="image_lm_block")
    b = attach(host, random_lm(tiny_config("llama"), [0]), where="fusion_slot", name="fusion_lm_block")
    from lm4vis.hosts import find_attachments

    assert {n: att.block for n, att in find_attachments(host).items()} == {
        "image_lm_block": a, "fusion_lm_block": b}
    with pytest.raises(AttachError, match="name one"):
        find_attachment(host)
    assert detach(host, "fusion_lm_block") is b and not host.fusion_slot.filled


def _tiny_hf_vit():
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    return ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, image_size=16, patch_size=4, num_channels=3)).eval()


@pytest.mark.parametrize("where", ["layers.1", "before:layers.0", "after:layers.0"])
def test_a_transformers_model_takes_a_block_by_module_path(where):
    model = _tiny_hf_vit()
    x = torch.randn(2, 3, 16, 16)
    keys = set(model.state_dict())
    with torch.no_grad():
        base = model(pixel_values=x).last_hidden_state
    block = attach(model, random_lm(tiny_config("llama"), [1]), where=where)  # width from config.hidden_size
    assert block.in_dim == model.config.hidden_size == 32
    with torch.no_grad():
        out = model(pixel_values=x).last_hidden_state
    assert out.shape == base.shape and not torch.allclose(out, base)
    assert keys <= set(model.state_dict())
    detach(model)
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=x).last_hidden_state, base)


def test_mask_from_hands_a_kwarg_to_the_block_through_the_hook():
    class Host(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x, key_padding_mask):
            return self.inner(x, key_padding_mask=key_padding_mask)

    class Inner(torch.nn.Module):
        embed_dim = 16

        def forward(self, x, key_padding_mask=None):
            return x

    host = Host()
    block = attach(host, random_lm(tiny_config("llama"), [1]), where="inner", in_dim=16,
                   mask_from="key_padding_mask")
    seen = []
    block.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    mask = torch.zeros(2, 5, dtype=torch.bool)
    host(torch.randn(2, 5, 16), mask)
    assert seen[0] is mask
