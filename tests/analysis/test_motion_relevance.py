"""The motion relevance analysis: per-scene AUROC by hand, and maps of a model with an LM block."""

from __future__ import annotations

import math

import pytest
import torch

from lm4vis.analysis.motion import draw_scene, polyline_maps, relevance, scene_auroc


def test_scene_auroc_by_hand():
    # scene 0: polyline 0 is the focal one (ignored, however high); relevant 1 and 3 score 5 and 2,
    # irrelevant 2 and 4 score 3 and 1: pairs (5>3, 5>1, 2<3, 2>1) -> 3/4.
    # scene 1: no irrelevant polyline besides padding -> NaN. scene 2: a tie counts one half.
    scores = torch.tensor([[9.0, 5.0, 3.0, 2.0, 1.0], [9.0, 1.0, 2.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0, 0.0]])
    relevant = torch.tensor([[True, True, False, True, False], [False, True, True, False, False],
                             [False, True, False, False, False]])
    real = torch.tensor([[True] * 5, [True, True, True, False, False], [True, True, True, False, False]])
    out = scene_auroc(scores, relevant, real)
    assert out[0].item() == pytest.approx(0.75) and math.isnan(out[1].item()) and out[2].item() == 0.5


def test_relevance_of_a_model_with_an_lm_block(tmp_path):
    from lm4vis.block import FrozenLMBlock
    from lm4vis.data.motion import SimTraffic, SimTrafficDataConfig
    from lm4vis.hosts.vectornet import VectorNet, VectorNetConfig
    from lm4vis.lm import random_lm, tiny_config

    sim = SimTraffic(SimTrafficDataConfig(num_val=6, cache=False), "val")
    batch = sim.collate([sim[i] for i in range(6)])
    from lm4vis.hosts import attach
    from lm4vis.hosts.build import HOST_KIND_ATTR

    model = VectorNet(VectorNetConfig.from_info(sim.info, embed_dim=32, subgraph_depth=2))
    setattr(model, HOST_KIND_ATTR, "vectornet")  # as build_model records it: the stages are the host's
    attach(model, FrozenLMBlock(random_lm(tiny_config("llama"), [1]), in_dim=32), where="last")
    maps = polyline_maps(model, batch)
    assert {"l2@post_lm", "l2@last_block", "focal-attn@lm_attn.0"} <= set(maps)
    # attention paid to padding polylines is exactly zero: the mask reached the LM layer
    assert maps["focal-attn@lm_attn.0"][batch["polyline_mask"]].abs().max() == 0
    out = relevance(model, [batch])
    for name, stats in out.items():
        assert 0.0 <= stats["mean"] <= 1.0 and stats["scenes"] >= 1, name
    draw_scene(batch, 0, maps["l2@post_lm"], tmp_path / "scene.png")
    assert (tmp_path / "scene.png").stat().st_size > 1000
