"""Maps and layouts: right shapes and right placement for any patch and image size."""

import pytest
import torch
from analysis_helpers import SIZES, tiny_vit

from lm4vis.analysis import (
    GridLayout, PointGroupLayout, attention_map, capture, freq_map, l2_map, layout_of, token_maps,
)


@pytest.mark.parametrize("img,patch", SIZES)
@pytest.mark.parametrize("lm", [False, True])
def test_every_map_has_one_score_per_patch(img, patch, lm):
    model = tiny_vit(img, patch, lm=lm)
    layout = layout_of(model)
    grid = img // patch
    assert layout == GridLayout(1, (grid, grid))
    with torch.no_grad(), capture(model) as cap:
        model(torch.randn(2, 1, img, img))
    maps = token_maps(cap, layout)
    heads = 2 + (model.lm_block.lm.config.num_heads if lm else 0)
    # l2 and freq per stage; per attention source the head mean plus each head
    assert len(maps) == 2 * len(cap.features) + len(cap.attention) + heads
    for name, m in maps.items():
        assert m.shape == (2, grid * grid), name
        assert layout.render(m, (img, img)).shape == (2, img, img)


@pytest.mark.parametrize("img,patch", SIZES)
def test_a_token_renders_onto_its_own_patch(img, patch):
    layout = layout_of(tiny_vit(img, patch, lm=False))
    grid = img // patch
    for r, c in [(0, 0), (grid - 1, 0), (1, grid - 1), (grid - 1, grid - 1)]:
        scores = torch.zeros(1, grid * grid)
        scores[0, r * grid + c] = 1.0  # row-major, as timm flattens the patch grid
        dense = layout.render(scores, (img, img))[0]
        expected = torch.zeros(img, img)
        expected[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = 1.0
        assert torch.equal(dense, expected)
        assert torch.equal(layout.coverage(dense[None] > 0), scores)


@pytest.mark.parametrize("img,patch", SIZES)
def test_map_follows_the_input_patch(img, patch):
    # A baseline host whose blocks are zeroed passes the patch embedding through: a bright
    # patch must give the largest l2 norm exactly at its grid position.
    model = tiny_vit(img, patch, lm=False)
    with torch.no_grad():
        model.pos_embed.zero_()
        model.patch_embed.proj.bias.zero_()
        for blk in model.blocks:
            for lin in (blk.attn.proj, blk.mlp.fc2):
                lin.weight.zero_()
                lin.bias.zero_()
    grid = img // patch
    x = torch.zeros(1, 1, img, img)
    r, c = grid - 1, grid // 2
    x[..., r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = 1.0
    with torch.no_grad(), capture(model, attention=False) as cap:
        model(x)
    m = l2_map(cap.features["last_block"], layout_of(model))
    assert int(m.argmax()) == r * grid + c


def test_l2_map_drops_prefix_tokens():
    tokens = torch.tensor([[[100.0, 0.0], [3.0, 4.0], [0.0, 1.0]]])
    assert torch.equal(l2_map(tokens, GridLayout(1, (1, 2))), torch.tensor([[5.0, 1.0]]))


FREQ_CASES = [
    # (patch tokens (P, C), top, expected fraction of channels marking each token)
    ([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]], 0.25, [0.5, 0.5, 0.0, 0.0]),
    ([[5.0, 5.0], [-9.0, 1.0], [0.0, 0.0], [1.0, 2.0]], 0.25, [0.5, 0.5, 0.0, 0.0]),  # |x|
    ([[3.0, 3.0], [2.0, 2.0], [1.0, 1.0], [0.0, 0.0]], 0.5, [1.0, 1.0, 0.0, 0.0]),
    ([[3.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 3.0]], 0.5, [0.5, 0.5, 0.5, 0.5]),
]


@pytest.mark.parametrize("tokens,top,expected", FREQ_CASES)
def test_freq_map_definition(tokens, top, expected):
    t = torch.tensor(tokens)[None]
    assert torch.equal(freq_map(t, None, top), torch.tensor([expected]))


def test_attention_map_reads_the_cls_row_and_drops_prefix_keys():
    probs = torch.zeros(1, 2, 4, 4)
    probs[0, 0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    probs[0, 1, 0] = torch.tensor([0.4, 0.3, 0.2, 0.1])
    probs[0, :, 1:] = 9.0  # other queries must not matter
    out = attention_map(probs, GridLayout(1, (3,)))
    torch.testing.assert_close(out, torch.tensor([[[0.2, 0.3, 0.4], [0.3, 0.2, 0.1]]]))


def test_attention_map_without_prefix_is_attention_received():
    probs = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    out = attention_map(probs, GridLayout(0, (2, 2)))
    torch.testing.assert_close(out, probs.mean(dim=2))


def test_video_grid_renders_frames_by_nearest():
    layout = GridLayout(1, (2, 2, 2))  # 2 tubelets in time, 2x2 patches
    scores = torch.arange(8.0)[None]
    dense = layout.render(scores, (4, 8, 8))
    assert dense.shape == (1, 4, 8, 8)
    assert dense[0, 0, 0, 0] == 0 and dense[0, 1, 7, 7] == 3 and dense[0, 3, 0, 7] == 5
    torch.testing.assert_close(layout.coverage(dense), scores)


def test_point_groups_render_and_cover_by_assignment():
    assignment = torch.tensor([[0, 0, 1, 2, 2, 2]])
    layout = PointGroupLayout(1, assignment, num_groups=3)
    dense = layout.render(torch.tensor([[0.5, 1.0, 2.0]]), (6,))
    assert torch.equal(dense, torch.tensor([[0.5, 0.5, 1.0, 2.0, 2.0, 2.0]]))
    mask = torch.tensor([[True, False, True, True, True, False]])
    torch.testing.assert_close(layout.coverage(mask), torch.tensor([[0.5, 1.0, 2 / 3]]))


def test_token_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="prefix"):
        l2_map(torch.randn(1, 10, 4), GridLayout(1, (2, 2)))
