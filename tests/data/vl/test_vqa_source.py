"""The registered VQA datasets (``shapes-vqa``, ``vqav2``) through the engine's data source: typed
configs, model-ready items, the blind controls, the vocabularies saved with the run and read back,
and the bad-input rules wired to the run (missing images, empty questions, mismatched files,
questions without an answer in the vocabulary)."""

from __future__ import annotations

import json

import pytest
import torch

from lm4vis.data.skips import BadInputError
from lm4vis.data.vl.text import TextTokenizer
from lm4vis.train.config import ConfigError, load_config
from lm4vis.train.datamodule import build_source, prepare_config

BASE = {"host.kind": "fusion-vqa", "host.image.img_size": 32, "host.image.patch_size": 16,
        "task.name": "vqa", "block.variant": "baseline"}
SHAPES = {**BASE, "data.name": "shapes-vqa", "data.num_train": 21, "data.num_val": 14}


def _shapes(**over):
    if over.get("data.name") == "vqav2":
        return load_config(None, {**BASE, **over})
    return load_config(None, {**SHAPES, **over})


def test_shapes_items_are_model_ready_and_the_controls_take_an_input_away() -> None:
    source = build_source(_shapes())
    info = source.info
    assert info.name == "shapes-vqa" and info.image_size == 32 and info.question_types[0] == "shape"
    assert info.num_answers == len(source.answers) == 22
    item = source.dataset("train", train=True)[3]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 32, 32)
    assert -1.0 <= item["image"].min() < item["image"].max() <= 1.0  # (x / 255 - 0.5) / 0.5
    assert len(item["input_ids"]) > 3

    blind_image = build_source(_shapes(**{"data.blind": "image"})).dataset("train", train=True)[3]
    assert torch.equal(blind_image["image"], torch.zeros(3, 32, 32))
    assert torch.equal(blind_image["input_ids"], item["input_ids"])
    blind_text = build_source(_shapes(**{"data.blind": "text"})).dataset("train", train=True)[3]
    assert blind_text["input_ids"].tolist() == [2, 3]  # [CLS] [SEP]
    assert torch.equal(blind_text["image"], item["image"])
    assert torch.equal(blind_text["target"], item["target"])


def test_items_kept_in_memory_equal_fresh_ones() -> None:
    kept = build_source(_shapes()).dataset("val", train=False)
    fresh = build_source(_shapes(**{"data.keep_in_memory": False})).dataset("val", train=False)
    for i in (5, 0, 13):
        a, b = kept[i], fresh[i]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_run_files_are_read_back(tmp_path) -> None:
    cfg = _shapes()
    source = build_source(cfg)
    written = source.save_run_files(tmp_path)
    assert [p.name for p in written] == ["tokenizer", "answers.json"]
    # A run reads its own vocabulary, even where a fresh build would derive another one.
    TextTokenizer.train_word_level(["is the red object on the left ?", "zebra"]).save(tmp_path / "tokenizer")
    again = build_source(cfg, tmp_path)
    assert again.tokenizer.vocab_size != source.tokenizer.vocab_size
    assert again.info.vocab_size == again.tokenizer.vocab_size
    (tmp_path / "answers.json").write_text(json.dumps(["yes", "no"]))
    with pytest.raises(ConfigError, match="answers.json does not match"):
        build_source(cfg, tmp_path)


@pytest.mark.parametrize("over, message", [
    ({"data.blind": "audio"}, "data.blind"),
    ({"data.num_objects": 7}, "num_objects"),
    ({"data.image_size": 48}, "image_size"),
    ({"data.name": "vqav2"}, "data.root"),
    ({"host.text.pretrained": "/no/such/bert"}, "data.tokenizer"),
    ({"block.variant": "frozen-lm", "block.where": "middle"}, "visual, fusion, both"),
])
def test_config_checks(over, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _shapes(**over)


# -- vqav2 through the registered config -----------------------------------------------------------
def _vqav2_files(release, question):
    train = [question(1, 9, "What color is the cat?", ["black"] * 10, "other"),
             question(2, 9, "How many cats?", ["2"] * 6 + ["3"] * 4, "number"),
             question(3, 25, "Is it day?", ["no"] * 10, "yes/no"),
             question(4, 25, "  ", ["yes"] * 10, "yes/no")]  # an empty question
    val = [question(101, 42, "What color is the zebra?", ["black"] * 4 + ["white"] * 6, "other"),
           question(102, 43, "What is the zebra eating?", ["grass"] * 10, "other"),  # no answer in vocab
           question(103, 44, "Is it night?", ["no"] * 10, "yes/no")]
    release.write("train", train)
    release.write("val", val)
    return train, val


def _vqav2(release, **over):
    return load_config(None, {**BASE, "data.name": "vqav2", "data.root": str(release.root),
                              "data.top_k_answers": 4, **over})


def test_vqav2_through_the_source(vqav2, vqa_question, tmp_path) -> None:
    _vqav2_files(vqav2, vqa_question)
    cfg = _vqav2(vqav2)
    source = build_source(cfg)
    assert source.answers == ("2", "black", "no", "yes")  # each training multiple_choice_answer once, by text
    assert source.info.answer_types == ("yes/no", "number", "other") and source.info.question_types == ()
    train = source.dataset("train", train=True)
    assert len(train) == 3 and train.skips.counts == {"empty-question": 1}
    val = source.dataset("val", train=False)
    assert len(val) == 3 and val.skips.counts == {"kept-no-answer-in-vocabulary": 1}
    kept = val[1]
    assert kept["accuracy"].sum() == 0 and kept["target"].sum() == 0  # it can only score 0
    assert val[0]["accuracy"].tolist() == pytest.approx([0, 1.0, 0, 0])  # 4 of 10 said black
    source.save_run_files(tmp_path)
    assert json.loads((tmp_path / "answers.json").read_text()) == list(source.answers)
    assert build_source(cfg, tmp_path).answers == source.answers


def test_vqav2_missing_image_fails_or_is_counted(vqav2, vqa_question) -> None:
    _vqav2_files(vqav2, vqa_question)
    (vqav2.root / "val2014" / "COCO_val2014_000000000043.jpg").unlink()
    with pytest.raises(BadInputError, match="COCO_val2014_000000000043.jpg.*bad_image='skip'"):
        build_source(_vqav2(vqav2)).dataset("val", train=False)
    val = build_source(_vqav2(vqav2, **{"data.bad_image": "skip"})).dataset("val", train=False)
    assert len(val) == 2 and val.skips.counts["missing-image"] == 1


def test_vqav2_mismatched_annotations_fail_before_the_run_exists(vqav2, vqa_question, tmp_path) -> None:
    from lm4vis.train.run import train

    _vqav2_files(vqav2, vqa_question)

    def renumber(doc):
        doc["annotations"][0]["question_id"] = 777
    vqav2.edit_annotations("train", renumber)
    cfg = _vqav2(vqav2, out_dir=str(tmp_path / "runs"))
    with pytest.raises(BadInputError, match=r"have no annotation \(first: \[1\]\).*no question \(first: \[777\]\)"):
        train(cfg)
    assert not (tmp_path / "runs").exists()


def test_vqav2_host_check_reads_the_answers(vqav2, vqa_question) -> None:
    _vqav2_files(vqav2, vqa_question)
    with pytest.raises(ConfigError, match="host.num_answers=10 but dataset 'vqav2' has 4 answers"):
        prepare_config(_vqav2(vqav2, **{"host.num_answers": 10}))
