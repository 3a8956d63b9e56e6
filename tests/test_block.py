"""FrozenLMBlock: the frozen path, the controls, dtype handling and by-reference checkpoints."""

import pytest
import torch

from lm4vis import FrozenLMBlock
from lm4vis.block import VARIANTS
from lm4vis.lm import random_lm, tiny_config

FAMILIES = ["llama", "opt", "gpt2", "gpt_neox", "gemma"]


def make_lm(family="llama", layers=(1,), seed=0, source=None):
    """A random stack; with a ``source``, it carries what load_lm_layers records of one."""
    lm = random_lm(tiny_config(family), list(layers), seed=seed)
    if source is not None:
        lm.source = lm.config_source = source
        lm.source_hash = lm.content_hash()
    return lm


@pytest.mark.parametrize("family", FAMILIES)
def test_frozen_weights_bit_identical_after_optimizer_steps(family):
    torch.manual_seed(0)
    block = FrozenLMBlock(make_lm(family), in_dim=24, out_dim=24, save_lm_weights=True)
    lm_before = {k: v.clone() for k, v in block.lm.state_dict().items()}
    proj_before = block.proj_in.weight.clone()
    trainable = [p for p in block.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    block.train()
    for _ in range(3):
        loss = block(torch.randn(2, 7, 24)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in block.lm.state_dict().items():
        assert torch.equal(v, lm_before[k]), k
    assert not torch.equal(block.proj_in.weight, proj_before)
    assert all(p.grad is None for p in block.lm.parameters())
    lm_ids = {id(p) for p in block.lm.parameters()}
    assert not any(id(p) in lm_ids for p in opt.state)  # no optimizer state for frozen weights
    assert block.lm.training is False and block.proj_in.training is True


def test_variants_trainable_and_frozen_counts():
    frozen = FrozenLMBlock(make_lm(), 32, variant="frozen-lm", save_lm_weights=True)
    lm_params = frozen.lm.num_params()
    adapters = 2 * 32 * frozen.lm_dim
    assert frozen.param_counts() == {"trainable": adapters, "frozen": lm_params}

    fine = FrozenLMBlock(make_lm(), 32, variant="finetune-lm")
    assert fine.param_counts() == {"trainable": adapters + lm_params, "frozen": 0}
    fine.train()
    assert fine.lm.training

    mlp = FrozenLMBlock(make_lm(), 32, variant="mlp")
    mlp_params = mlp.param_counts()["trainable"] - adapters
    assert mlp.param_counts()["frozen"] == 0
    assert abs(mlp_params - lm_params) / lm_params < 0.01

    pretrained = make_lm(seed=3)
    ref = {k: v.clone() for k, v in pretrained.state_dict().items()}
    rand = FrozenLMBlock(pretrained, 32, variant="random-lm", seed=1)
    assert rand.param_counts()["frozen"] == lm_params
    changed = [k for k, v in rand.lm.state_dict().items() if k.endswith("proj.weight") and not torch.equal(v, ref[k])]
    assert changed, "random variant must re-initialise the weights"


def test_random_variant_is_seeded():
    a = FrozenLMBlock(make_lm(seed=0), 16, variant="random-lm", seed=5)
    b = FrozenLMBlock(make_lm(seed=9), 16, variant="random-lm", seed=5)
    for (k, v), (_, w) in zip(a.lm.state_dict().items(), b.lm.state_dict().items()):
        assert torch.equal(v, w), k


def test_bf16_lm_with_fp32_adapters():
    lm = make_lm().to(torch.bfloat16)
    block = FrozenLMBlock(lm, 16, save_lm_weights=True)
    assert block.proj_in.weight.dtype == torch.float32
    assert all(p.dtype == torch.bfloat16 for p in block.lm.parameters())
    x = torch.randn(2, 5, 16, requires_grad=True)
    y = block(x)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    fp32 = FrozenLMBlock(make_lm(), 16, save_lm_weights=True)
    fp32.load_state_dict({k: v.float() if torch.is_tensor(v) else v for k, v in block.state_dict().items()})
    torch.testing.assert_close(fp32(x), y, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("final_norm", ["unit", "pretrained", "none"])
def test_final_norm_options(final_norm):
    block = FrozenLMBlock(make_lm(), 16, final_norm=final_norm, save_lm_weights=True)
    out = block(torch.randn(1, 4, 16))
    assert out.shape == (1, 4, 16)
    assert all(not p.requires_grad for p in block.norm.parameters())


def test_by_reference_state_dict_round_trip_and_hash_check():
    block = FrozenLMBlock(make_lm(source="ckpt-a"), 16)
    sd = block.state_dict()
    assert not any(k.startswith("lm.") for k in sd), "frozen layers must not be written inline"
    extra = sd["_extra_state"]
    assert extra["lm_source"] == "ckpt-a" and extra["layer_indices"] == [1]
    assert len(extra["lm_hash"]) == 64

    same = FrozenLMBlock(make_lm(source="ckpt-a"), 16)
    same.load_state_dict(sd)  # strict: the layers come from the re-read checkpoint
    torch.testing.assert_close(same.proj_in.weight, block.proj_in.weight)

    other = FrozenLMBlock(make_lm(seed=1, source="ckpt-a"), 16)
    with pytest.raises(ValueError, match="hash mismatch"):
        other.load_state_dict(sd)

    wrong_layer = FrozenLMBlock(make_lm(layers=(0,), source="ckpt-a"), 16)
    with pytest.raises(ValueError, match="layers"):
        wrong_layer.load_state_dict(sd)


def test_inline_option_saves_weights():
    block = FrozenLMBlock(make_lm(source="ckpt-a"), 16, save_lm_weights=True)
    sd = block.state_dict()
    assert any(k.startswith("lm.layers.0.attn.q_proj") for k in sd)
    assert sd["_extra_state"]["lm_inline"] is True


def test_variant_without_source_cannot_be_saved_by_reference():
    with pytest.raises(ValueError, match="save_lm_weights=True"):
        FrozenLMBlock(make_lm(source=None), 16, save_lm_weights=False)


def test_variant_mismatch_on_load():
    sd = FrozenLMBlock(make_lm(), 16, variant="mlp").state_dict()
    with pytest.raises(ValueError, match="'mlp' block"):
        FrozenLMBlock(make_lm(), 16, variant="finetune-lm").load_state_dict(sd, strict=False)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.randn(2, 5, 17), "in_dim=17"),
        (torch.randn(2, 16), "rank-2"),
        (torch.randn(2, 3, 4, 16), "rank-4"),
    ],
)
def test_bad_input_shapes(x, match):
    block = FrozenLMBlock(make_lm(), 16, save_lm_weights=True)
    with pytest.raises(ValueError, match=match):
        block(x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="frozenn"), "unknown variant"),
    (dict(final_norm="rms"), "unknown final_norm"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FrozenLMBlock(make_lm(), 16, **kwargs)


# ---------------------------------------------------------------------------------------------
# Padding: one convention, zeros at padded positions, every variant
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kernel", ["sdpa", "matmul"])
def test_block_zeroes_padding_and_ignores_it(variant, kernel):
    lm = make_lm().set_attention(kernel)
    block = FrozenLMBlock(lm, 16, variant=variant, save_lm_weights=True)
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 4:] = True
    mask[2] = True  # a sample of padding only
    x = torch.randn(3, 6, 16, requires_grad=True)
    out = block(x, mask)
    assert not out[mask].any()
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and not x.grad[mask].any()
    with torch.no_grad():
        torch.testing.assert_close(out[0, :4], block(x[:1, :4])[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1], block(x[1:2])[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mask, error", [
    (torch.ones(2, 5, dtype=torch.long), TypeError),  # a Hugging Face attention_mask
    (torch.zeros(2, 5), TypeError),
    (torch.zeros(2, 4, dtype=torch.bool), ValueError),
])
@pytest.mark.parametrize("variant", ["frozen-lm", "mlp"])
def test_block_refuses_masks_outside_the_convention(variant, mask, error):
    block = FrozenLMBlock(make_lm(), 16, variant=variant, save_lm_weights=True)
    with pytest.raises(error, match=r"key_padding_mask.*\(B, N\)"):
        block(torch.randn(2, 5, 16), mask)


# ---------------------------------------------------------------------------------------------
# frozen-ffn: the frozen layers without their attention sub-layers
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_frozen_ffn_block(family):
    lm = make_lm(family, source="ckpt-a")
    attention_params = sum(p.numel() for layer in lm.layers
                           for part in (layer.attn, layer.attn_norm, layer.post_attn_norm)
                           if part is not None for p in part.parameters())
    full = lm.num_params()
    block = FrozenLMBlock(lm, 16, variant="frozen-ffn", final_norm="none")
    assert block.frozen_params == full - attention_params
    assert block.param_counts() == {"trainable": 2 * 16 * lm.lm_dim, "frozen": full - attention_params}
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        h = block.proj_in(x)
        expected = block.proj_out(lm.without_attention()(h))
    out = block(x)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    assert all(p.grad is None for p in block.lm.parameters())
    assert block.proj_in.weight.grad is not None and block.proj_out.weight.grad is not None
    assert lm.num_params() == full  # the caller's stack keeps its attention
    # saved by reference, like the frozen block, and reloaded into a block built alike
    sd = block.state_dict()
    assert not any(k.startswith("lm.") for k in sd) and sd["_extra_state"]["variant"] == "frozen-ffn"
    again = FrozenLMBlock(make_lm(family, source="ckpt-a"), 16, variant="frozen-ffn", final_norm="none")
    again.load_state_dict(sd)
    torch.testing.assert_close(again(x), block(x))


# ---------------------------------------------------------------------------------------------
# By-reference checkpoints: the source's hash, whatever dtype the layers are held in
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_llama(tiny_llama, tmp_path_factory) -> str:
    """The same architecture as `tiny_llama`, other weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("other_llama")
    LlamaForCausalLM(LlamaConfig.from_pretrained(tiny_llama)).save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("load_dtype", [torch.float32, torch.bfloat16])
def test_by_reference_checkpoint_of_a_bf16_cast_block_reloads(tiny_llama, other_llama, load_dtype):
    block = FrozenLMBlock.from_pretrained(tiny_llama, 16)
    block.to(torch.bfloat16)  # what Lightning's bf16-true does before training and saving
    sd = block.state_dict()
    assert not any(k.startswith("lm.") for k in sd)

    fresh = FrozenLMBlock.from_pretrained(tiny_llama, 16).to(load_dtype)
    fresh.load_state_dict(sd)
    assert torch.equal(fresh.proj_in.weight, block.proj_in.weight.to(load_dtype))

    other = FrozenLMBlock.from_pretrained(other_llama, 16).to(load_dtype)
    with pytest.raises(ValueError, match="hash mismatch"):
        other.load_state_dict(sd)
    assert sd["_extra_state"]["lm_dtype"] == "bfloat16"  # recorded apart from the hash


# ---------------------------------------------------------------------------------------------
# The random control builds its own stack
# ---------------------------------------------------------------------------------------------

def test_random_variant_leaves_the_callers_stack_alone(tiny_llama):
    from lm4vis import load_lm_layers

    lm = load_lm_layers(tiny_llama, -1)
    rand = FrozenLMBlock(lm, 16, variant="random-lm", seed=1)
    # the same stack, reused for the method, still holds the checkpoint's weights
    frozen = FrozenLMBlock(lm, 16, variant="frozen-lm", final_norm="pretrained")
    checkpoint = load_lm_layers(tiny_llama, -1).state_dict()
    assert frozen.lm.state_dict().keys() == checkpoint.keys()
    for k, v in frozen.lm.state_dict().items():
        assert torch.equal(v, checkpoint[k]), k
    assert frozen.lm_source == tiny_llama and not frozen.save_lm_weights  # still by reference

    assert rand.lm is not lm
    assert rand.lm_source is None and rand.lm_config_source == tiny_llama
    extra = rand.state_dict()["_extra_state"]
    assert extra["lm_source"] is None and extra["lm_config_source"] == tiny_llama


def test_controls_record_the_config_source_apart_from_weights(tiny_llama):
    for variant in ("random-lm", "mlp"):
        block = FrozenLMBlock.from_pretrained(tiny_llama, 16, variant=variant)
        assert (block.lm_source, block.lm_config_source) == (None, tiny_llama)
    block = FrozenLMBlock.from_pretrained(tiny_llama, 16, variant="finetune-lm")
    assert (block.lm_source, block.lm_config_source) == (tiny_llama, tiny_llama)


# ---------------------------------------------------------------------------------------------
# A checkpoint loads only into a block built alike
# ---------------------------------------------------------------------------------------------

BUILT = dict(family="llama", layers=(1,), config={}, in_dim=16, out_dim=16, final_norm="unit")


def _built(**changes) -> FrozenLMBlock:
    b = BUILT | changes
    lm = random_lm(tiny_config(b["family"], **b["config"]), list(b["layers"]))
    lm.source = lm.config_source = "ckpt-a"
    lm.source_hash = lm.content_hash()
    return FrozenLMBlock(lm, b["in_dim"], b["out_dim"], final_norm=b["final_norm"],
                         save_lm_weights=b.get("inline"))


@pytest.mark.parametrize("inline", [None, True], ids=["by-reference", "inline"])
@pytest.mark.parametrize("changes, named", [
    pytest.param(dict(final_norm="none"), ["final_norm: checkpoint 'unit', this model 'none'"],
                 id="final_norm"),
    pytest.param(dict(in_dim=24), ["in_dim: checkpoint 16, this model 24"], id="in_dim"),
    pytest.param(dict(out_dim=24), ["out_dim: checkpoint 16, this model 24"], id="out_dim"),
    pytest.param(dict(layers=(0,)), ["layer_indices: checkpoint [1], this model [0]"], id="layers"),
    pytest.param(dict(config=dict(norm_eps=1e-6)),
                 ["lm_config.norm_eps: checkpoint 1e-05, this model 1e-06"], id="lm_config"),
    pytest.param(dict(config=dict(lm_dim=96)),
                 ["lm_dim: checkpoint 64, this model 96", "lm_config.lm_dim: checkpoint 64, this model 96",
                  "lm_config.head_dim: checkpoint 16, this model 24",
                  "lm_config.rotary_dim: checkpoint 16, this model 24",
                  "lm_config.attn_scale: checkpoint 0.25, this model 0.204"], id="lm_dim"),
    pytest.param(dict(final_norm="pretrained", config=dict(act="gelu")),
                 ["final_norm: checkpoint 'unit', this model 'pretrained'",
                  "lm_config.act: checkpoint 'silu', this model 'gelu'"], id="several"),
])
def test_checkpoint_of_a_block_built_differently_is_refused(changes, named, inline):
    sd = _built(inline=inline).state_dict()
    with pytest.raises(ValueError, match="built differently") as refused:
        _built(inline=inline, **changes).load_state_dict(sd)
    for difference in named:
        assert difference in str(refused.value)
    assert str(refused.value).count(": checkpoint ") == len(named)  # and nothing else
    _built(inline=inline).load_state_dict(sd)  # built alike, it loads


def test_checkpoint_from_before_the_block_config_was_recorded_is_refused():
    sd = _built().state_dict()
    sd["_extra_state"] = {k: v for k, v in sd["_extra_state"].items() if k != "final_norm"}
    with pytest.raises(ValueError, match="final_norm: checkpoint <not recorded>, this model 'unit'"):
        _built().load_state_dict(sd)


def test_one_vocabulary_of_variants():
    """Python, configs and the CLI use the same variant names; the old Python names are
    refused with the name to use, and checkpoints saved under them still load."""
    from lm4vis.hosts.configs import VARIANTS as CONFIG_VARIANTS

    assert set(CONFIG_VARIANTS) - {"baseline"} == set(VARIANTS)
    assert all(CONFIG_VARIANTS[v] == v for v in VARIANTS)
    for old, new in (("frozen", "frozen-lm"), ("random", "random-lm"), ("finetune", "finetune-lm")):
        with pytest.raises(ValueError, match=f"'{old}' is called '{new}'"):
            FrozenLMBlock(make_lm(), 16, variant=old)
    block = FrozenLMBlock(make_lm(), 16, variant="finetune-lm")
    sd = block.state_dict()
    extra = next(k for k in sd if k.endswith("_extra_state"))
    sd[extra] = {**sd[extra], "variant": "finetune"}  # as an earlier release saved it
    FrozenLMBlock(make_lm(), 16, variant="finetune-lm").load_state_dict(sd)
