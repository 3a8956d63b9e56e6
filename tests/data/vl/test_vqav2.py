"""VQAv2 read from files written in the release's layout (question/annotation JSON, COCO JPEGs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lm4vis.data.skips import BadInputError
from lm4vis.data.vl.vqav2 import VQAv2Config, VQAv2Dataset
from lm4vis.tasks.vqa_metrics import ANSWER_TYPES

from vl_release import Question, VQAv2Release

TRAIN = [
    Question(1, 9, "What color is the cat?", ["black"] * 7 + ["Black.", "grey", "dark"], "other"),
    Question(2, 9, "How many cats are there?", ["2", "two", "2", "Two", "3", "2", "2", "2", "two", "3"], "number"),
    Question(3, 25, "Is the cat asleep?", ["yes"] * 10, "yes/no"),  # "yes" misses the top 5
    Question(4, 25, "Is it day?", ["no"] * 10, "yes/no"),
    Question(5, 30, "What is it?", ["a dog"] * 3 + ["dog"] * 3 + ["puppy"] * 4, "other",
             multiple_choice_answer="dog"),
    Question(6, 30, "What breed?", ["pug"] * 10, "other"),  # "pug" is asked once: out of a top-5
]
VAL = [
    Question(101, 42, "What color is the zebra?", ["black"] * 3 + ["white"] * 7, "other"),
    Question(102, 42, "How many zebras?", ["two"] * 10, "number"),  # unanimous, as typed
    Question(103, 43, "What is the zebra eating?", ["grass"] * 10, "other"),  # no answer in vocab
]


def _config(release: VQAv2Release, split: str = "train", **kw) -> VQAv2Config:
    return VQAv2Config(str(release.root), split=split, image_size=16, top_k_answers=5, **kw)


@pytest.fixture
def release(vqav2: VQAv2Release) -> VQAv2Release:
    vqav2.write("train", TRAIN)
    vqav2.write("val", VAL)
    return vqav2


def test_train_items(release: VQAv2Release) -> None:
    ds = VQAv2Dataset(_config(release))
    # multiple_choice_answer per question: black, 2, yes, no, dog, pug -> 6 answers tie at 1,
    # ranked by text: 2, black, dog, no, pug, yes -> top 5 drops yes
    assert ds.answers == ("2", "black", "dog", "no", "pug")
    assert len(ds) == 5 and ds.skips.counts == {"answers-outside-vocabulary": 1}  # question 3
    item = ds[0]
    assert set(item) == {"image", "input_ids", "question_id", "image_id", "target", "accuracy", "answer_type"}
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.uint8
    assert item["input_ids"].dtype == torch.int64 and item["input_ids"][0] == 2 and item["input_ids"][-1] == 3
    assert len(item["input_ids"]) == 2 + 6  # what color is the cat ?
    assert item["question_id"] == 1 and item["image_id"] == 9
    assert item["target"].dtype == torch.float32 and item["target"].shape == (5,)
    assert item["target"].tolist() == pytest.approx([0, 1.0, 0, 0, 0])  # black x8 after normalising
    assert item["answer_type"] == ANSWER_TYPES.index("other")


def test_targets_and_accuracy_follow_the_official_rules(release: VQAv2Release) -> None:
    ds = VQAv2Dataset(_config(release))
    by_id = {int(ds[i]["question_id"]): ds[i] for i in range(len(ds))}
    # "2" x6 + "two" x2 (normalised to 2): full credit; "3" x2: 0.6 but not in the vocabulary
    assert by_id[2]["target"].tolist() == pytest.approx([1.0, 0, 0, 0, 0])
    assert by_id[2]["answer_type"] == ANSWER_TYPES.index("number")
    # "a dog" and "dog" are one answer after normalising: 6 humans, full credit
    assert by_id[5]["target"].tolist() == pytest.approx([0, 0, 1.0, 0, 0])
    assert by_id[5]["accuracy"].tolist() == pytest.approx([0, 0, 1.0, 0, 0])


def test_val_uses_the_training_vocabularies(release: VQAv2Release) -> None:
    train = VQAv2Dataset(_config(release))
    val = VQAv2Dataset(_config(release, "val"))
    assert val.answers == train.answers
    assert val[0]["input_ids"].tolist() == train.tokenizer.encode("What color is the zebra?", 40)
    assert 1 in val[0]["input_ids"].tolist()  # "zebra" was never asked in training: [UNK]
    assert val[0]["target"].tolist() == pytest.approx([0, 0.9, 0, 0, 0])  # black x3 of 10
    assert val[0]["accuracy"].tolist() == pytest.approx([0, 0.9, 0, 0, 0])


def test_unanimous_answers_are_scored_as_typed(release: VQAv2Release) -> None:
    val = VQAv2Dataset(_config(release, "val"))
    zebras = val[1]
    assert zebras["target"][0] == 1.0    # "two" normalises to the vocabulary's "2"...
    assert zebras["accuracy"][0] == 0.0  # ...but the evaluator compares ten identical "two" as typed


def test_unanswerable_questions_are_kept_for_evaluation(release: VQAv2Release) -> None:
    val = VQAv2Dataset(_config(release, "val"))
    assert len(val) == 3 and val.unanswerable == 1 and val.skips.total == 0
    assert val[2]["target"].sum() == 0 and val[2]["accuracy"].sum() == 0  # any prediction scores 0
    dropped = VQAv2Dataset(_config(release, "val", drop_unanswerable=True))
    assert len(dropped) == 2 and dropped.skips.counts == {"answers-outside-vocabulary": 1}
    kept = VQAv2Dataset(_config(release, drop_unanswerable=False))
    assert len(kept) == 6 and kept.unanswerable == 1


def test_annotations_of_other_questions_fail_before_training(release: VQAv2Release) -> None:
    def renumber(doc: dict) -> None:
        doc["annotations"][0]["question_id"] = 77
        doc["annotations"][2]["image_id"] = 1234

    release.edit_annotations("train", renumber)
    with pytest.raises(BadInputError) as err:
        VQAv2Dataset(_config(release), answers=("black",))
    message = str(err.value)
    assert "1 questions have no annotation (first: [1])" in message
    assert "1 annotations have no question (first: [77])" in message
    assert "1 questions name another image in the annotations (first: [3])" in message


def test_empty_question_is_counted_and_skipped(vqav2: VQAv2Release) -> None:
    vqav2.write("train", [*TRAIN[:2], Question(7, 9, "   ", ["black"] * 10)])
    ds = VQAv2Dataset(_config(vqav2))
    assert len(ds) == 2 and ds.skips.counts == {"empty-question": 1}


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_missing_image(release: VQAv2Release, policy: str) -> None:
    missing = release.root / "train2014" / "COCO_train2014_000000000025.jpg"
    missing.unlink()
    if policy == "fail":
        with pytest.raises(BadInputError, match="1 of 3 images are missing, first .*000000000025.jpg.*bad_image='skip'"):
            VQAv2Dataset(_config(release, bad_image=policy))
        return
    ds = VQAv2Dataset(_config(release, bad_image=policy))
    assert ds.skips.counts["missing-image"] == 2  # both questions about image 25
    assert 25 not in ds.image_ids.tolist()


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_unreadable_image(release: VQAv2Release, policy: str) -> None:
    (release.root / "train2014" / "COCO_train2014_000000000009.jpg").write_bytes(b"not a jpeg")
    ds = VQAv2Dataset(_config(release, bad_image=policy))
    if policy == "fail":
        with pytest.raises(BadInputError, match="COCO_train2014_000000000009.jpg"):
            ds[0]
        return
    batch = ds.collate([ds[i] for i in range(len(ds))])
    assert batch["skipped"] == {"unreadable-image": 2}
    assert batch["question_id"].tolist() == [4, 5, 6]


def test_collate_pads_questions(release: VQAv2Release) -> None:
    ds = VQAv2Dataset(_config(release))
    items = [ds[i] for i in range(3)]
    batch = ds.collate(items)
    lengths = [len(it["input_ids"]) for it in items]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["text_padding_mask"].dtype == torch.bool
    assert batch["text_padding_mask"].sum(1).tolist() == [max(lengths) - n for n in lengths]
    assert (batch["input_ids"][batch["text_padding_mask"]] == ds.info.pad_id).all()
    assert batch["image"].shape == (3, 3, 16, 16) and batch["target"].shape == (3, 5)
    assert batch["skipped"] == {}


def test_test_dev_has_no_answers(release: VQAv2Release) -> None:
    release.write("test-dev", [Question(900, 5, "What is this?")])
    ds = VQAv2Dataset(_config(release, "test-dev"))
    assert set(ds[0]) == {"image", "input_ids", "question_id", "image_id"}
    assert (release.root / "test2015" / "COCO_test2015_000000000005.jpg").is_file()


def test_limit_and_nothing_written_beside_the_data(release: VQAv2Release, _private_cache: Path) -> None:
    before = sorted(release.root.rglob("*"))
    ds = VQAv2Dataset(_config(release, limit=2))
    assert ds.question_ids.tolist() == [1, 2]
    assert sorted(release.root.rglob("*")) == before
    assert list(_private_cache.rglob("answers.json"))  # the vocabulary was cached there instead


def test_cached_vocabulary_follows_the_file(release: VQAv2Release) -> None:
    assert VQAv2Dataset(_config(release)).answers[0] == "2"
    release.write("train", [*TRAIN, *[Question(10 + k, 9, "Which?", ["zzz"] * 10) for k in range(3)]])
    assert VQAv2Dataset(_config(release)).answers[0] == "zzz"  # the edited file is read again


def test_missing_files_say_where_to_get_them(tmp_path: Path) -> None:
    from lm4vis.data.base import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="visualqa.org"):
        VQAv2Dataset(VQAv2Config(str(tmp_path)))


@pytest.mark.parametrize("kw, message", [
    (dict(split="minival"), "split"), (dict(bad_image="ignore"), "bad_image"),
    (dict(max_length=2), "max_length"), (dict(top_k_answers=0), "top_k_answers"),
    (dict(limit=0), "limit"),
])
def test_config_checks(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VQAv2Config("/nowhere", **kw)
