"""The shape-scene generators: reproducible by seed, balanced, exact masks, and the blind prior."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from lm4vis.data.vl.shapes import BACKGROUND, COLOURS, SceneConfig, render, sample_scene, item_rng
from lm4vis.data.vl.shapes_captions import ShapesCaptions, ShapesCaptionsConfig
from lm4vis.data.vl.shapes_vqa import (QUESTION_TYPES, ShapesVQA, ShapesVQAConfig, answers_by_type,
                                       blind_prior)


def _vqa(**kw) -> ShapesVQA:
    return ShapesVQA(ShapesVQAConfig(**{"num_items": 2100, "with_masks": True, **kw}))


def _captions(**kw) -> ShapesCaptions:
    return ShapesCaptions(ShapesCaptionsConfig(**{"num_images": 50, "with_masks": True, **kw}))


@pytest.fixture(scope="module")
def val_questions():
    ds = _vqa(split="val")
    return [ds.question(i) for i in range(len(ds))]


@pytest.mark.parametrize("make", [_vqa, _captions], ids=["vqa", "captions"])
def test_same_seed_same_items_in_any_order(make) -> None:
    a, b = make(seed=3), make(seed=3)
    forward = [a[i] for i in (0, 1, 2, 9)]
    backward = [b[i] for i in (9, 2, 1, 0)][::-1]
    for x, y in zip(forward, backward):
        assert x.keys() == y.keys()
        assert all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("make", [_vqa, _captions], ids=["vqa", "captions"])
@pytest.mark.parametrize("change", [dict(seed=4), dict(split="val")], ids=["seed", "split"])
def test_other_seed_or_split_other_scenes(make, change: dict) -> None:
    a, b = make(seed=3), make(**{"seed": 3, **change})
    assert all(not torch.equal(a[i]["image"], b[i]["image"]) for i in range(5))


def test_item_depends_on_its_index_only() -> None:
    # an item is the same whatever the split size, so `num_items` never reshuffles a split
    small, large = _vqa(num_items=10), _vqa(num_items=5000)
    assert torch.equal(small[7]["image"], large[7]["image"])
    assert small.question(7) == large.question(7)


def test_vqa_item_keys() -> None:
    ds = _vqa()
    item, n, s = ds[5], ds.info.max_objects, ds.info.image_size
    expected = {"image": ((3, s, s), torch.uint8), "target": ((ds.info.num_answers,), torch.float32),
                "accuracy": ((ds.info.num_answers,), torch.float32), "answer_type": ((), torch.int64),
                "question_type": ((), torch.int64), "question_id": ((), torch.int64),
                "boxes": ((n, 4), torch.float32), "named_objects": ((n,), torch.bool),
                "evidence_objects": ((n,), torch.bool), "object_masks": ((n, s, s), torch.bool)}
    assert set(item) == set(expected) | {"input_ids"}
    for key, (shape, dtype) in expected.items():
        assert (tuple(item[key].shape), item[key].dtype) == (shape, dtype), key
    assert item["input_ids"].dtype == torch.int64 and item["input_ids"].dim() == 1
    assert item["target"].sum() == 1 and ds.info.answers[int(item["target"].argmax())] == ds.question(5).answer
    assert QUESTION_TYPES[int(item["question_type"])] == QUESTION_TYPES[5 % 7]
    batch = ds.collate([ds[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 4 and batch["text_padding_mask"].dtype == torch.bool
    assert batch["object_masks"].shape == (4, n, s, s)


def test_caption_item_keys() -> None:
    ds = _captions()
    assert len(ds) == 50 * 5 and ds.caption_image[:6].tolist() == [0, 0, 0, 0, 0, 1]
    item, n, s = ds[7], ds.info.max_objects, ds.info.image_size
    assert set(item) == {"image", "boxes", "object_masks", "image_index", "input_ids", "caption_index",
                         "named_objects"}
    assert item["image_index"] == 1 and item["caption_index"] == 7
    assert item["boxes"].shape == (n, 4) and item["named_objects"].shape == (n,)
    assert item["object_masks"].shape == (n, s, s)
    assert torch.equal(ds.image_view()[1]["image"], item["image"])


@pytest.mark.parametrize("image_size", [32, 64, 97])
def test_masks_are_exact(image_size: int) -> None:
    cfg = SceneConfig()
    for index in range(20):
        scene = sample_scene(item_rng(0, "train", index), cfg)
        image, masks = render(scene, image_size)
        assert image.shape == (image_size, image_size, 3) and masks.shape == (6, image_size, image_size)
        assert masks.sum(0).max() == 1  # objects never overlap
        for obj, mask in zip(scene.objects, masks):
            assert mask.any()
            assert (image[mask] == COLOURS[obj.colour]).all()
        assert (image[~masks.any(0)] == BACKGROUND).all()


def test_question_types_balanced_exactly(val_questions) -> None:
    counts = Counter(q.question_type for q in val_questions)
    assert counts == {t: 300 for t in QUESTION_TYPES}


def test_answers_balanced_within_each_type(val_questions) -> None:
    possible = answers_by_type(SceneConfig())
    for qtype in QUESTION_TYPES:
        counts = Counter(q.answer for q in val_questions if q.question_type == qtype)
        assert set(counts) == set(possible[qtype]), qtype
        expected = 300 / len(possible[qtype])
        # a uniform draw: every answer within 4.5 binomial sigmas of its share (flaky never)
        sigma = np.sqrt(300 * (1 / len(possible[qtype])) * (1 - 1 / len(possible[qtype])))
        assert max(abs(n - expected) for n in counts.values()) < 4.5 * sigma, (qtype, counts)


# What a model that never sees the image can reach: within each type the answers are uniform,
# and the question rules out at most its own colour (closest/farthest: 5 of 6 colours left).
THEORETICAL_PRIOR = {"shape": 1 / 3, "colour": 1 / 6, "position": 1 / 2, "closest": 1 / 5,
                     "farthest": 1 / 5, "count": 1 / 7, "left_of": 1 / 2}


def test_blind_prior_stays_near_uniform(val_questions) -> None:
    train = _vqa(split="train", num_items=2100)
    test = _vqa(split="test", num_items=700)
    prior = blind_prior(train, test)
    for qtype, chance in THEORETICAL_PRIOR.items():
        # 100 test questions per type: 4 sigmas of a proportion is about 0.2 at p = 0.5
        assert prior[f"accuracy/{qtype}"] < chance + 4 * np.sqrt(chance * (1 - chance) / 100), (qtype, prior)
    assert prior["accuracy"] < 0.40  # the uniform prior is 0.292


@pytest.mark.parametrize("cfg, message", [
    (dict(colours=("red", "teal")), "unknown colours"),
    (dict(num_objects=7), "num_objects"),
    (dict(num_objects=6, object_size=0.3), "crowd"),
])
def test_scene_config_checks(cfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SceneConfig(**cfg)


def test_fewer_objects_and_colours() -> None:
    ds = _vqa(num_items=70, scene=dict(num_objects=3, colours=("red", "green", "blue", "yellow")))
    assert ds.info.max_objects == 3 and "3" in ds.info.answers and "4" not in ds.info.answers
    assert {ds.question(i).question_type for i in range(70)} == set(QUESTION_TYPES)
    assert ds[0]["boxes"].shape == (3, 4)


def test_a_subset_of_question_types_is_asked_in_turn_and_balanced() -> None:
    asked = ("shape", "closest", "count")
    ds = _vqa(split="val", num_items=900, with_masks=False, question_types=asked)
    questions = [ds.question(i) for i in range(len(ds))]
    assert [q.question_type for q in questions[:6]] == list(asked) * 2
    assert Counter(q.question_type for q in questions) == {t: 300 for t in asked}
    possible = answers_by_type(SceneConfig())
    for qtype in asked:
        counts = Counter(q.answer for q in questions if q.question_type == qtype)
        assert set(counts) == set(possible[qtype]), qtype
    assert ds.info.question_types == QUESTION_TYPES  # metric groups keep their indices


@pytest.mark.parametrize("types", [(), ("shape", "shape"), ("shape", "size")])
def test_question_types_are_checked(types) -> None:
    with pytest.raises(ValueError, match="question_types"):
        ShapesVQAConfig(question_types=types)


def test_light_config_names_the_generator_question_types() -> None:
    from lm4vis.data.vqa_config import SHAPE_QUESTION_TYPES

    assert SHAPE_QUESTION_TYPES == QUESTION_TYPES
