"""The registered caption datasets (``shapes-captions``, ``karpathy-captions``) through their
data source: run-config keys, the tokeniser saved with the run and read back, validation items
that hold every caption of an image, and bad input counted or refused before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lm4vis.data.vl.captions import CaptionSource
from lm4vis.registry import DATASETS
from lm4vis.tasks.retrieval import RetrievalTask
from lm4vis.train.config import ConfigError, load_config

SMALL = {"host.kind": "dual-encoder", "task.name": "retrieval", "host.image.img_size": 16, "host.image.patch_size": 8}


def _shapes(**kw):
    return load_config(None, {**SMALL, "data.name": "shapes-captions", "data.num_train": 6, "data.num_val": 4, **kw})


def _flickr(root: Path, **kw):
    """dataset_flickr30k.json and flickr30k-images/ as Karpathy's zip and the Flickr30k release have them."""
    entries = [
        {"filename": "1000092795.jpg", "imgid": 0, "split": "train", "sentids": [0, 1],
         "sentences": [{"raw": "Two young guys with shaggy hair.", "tokens": [], "imgid": 0, "sentid": 0},
                       {"raw": "Two friends enjoy time outside.", "tokens": [], "imgid": 0, "sentid": 1}]},
        {"filename": "10002456.jpg", "imgid": 1, "split": "train", "sentids": [2, 3],
         "sentences": [{"raw": "Several men in hard hats.", "tokens": [], "imgid": 1, "sentid": 2},
                       {"raw": "   ", "tokens": [], "imgid": 1, "sentid": 3}]},  # an empty caption
        {"filename": "1000268201.jpg", "imgid": 2, "split": "test", "sentids": [4, 5, 6],
         "sentences": [{"raw": "A child in a pink dress.", "tokens": [], "imgid": 2, "sentid": 4},
                       {"raw": "A little girl climbing.", "tokens": [], "imgid": 2, "sentid": 5},
                       {"raw": "A girl going into a wooden building.", "tokens": [], "imgid": 2, "sentid": 6}]},
        {"filename": "1001773457.jpg", "imgid": 3, "split": "test", "sentids": [7],
         "sentences": [{"raw": "A black dog and a spotted dog.", "tokens": [], "imgid": 3, "sentid": 7}]},
    ]
    (root / "flickr30k-images").mkdir(parents=True)
    for e in entries:
        pixels = np.random.default_rng(e["imgid"]).integers(0, 256, (11, 13, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "flickr30k-images" / e["filename"], format="JPEG")
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": entries, "dataset": "flickr30k"}))
    return load_config(None, {**SMALL, "data.name": "karpathy-captions", "data.root": str(root / "flickr30k-images"),
                              "data.annotation_file": str(root / "dataset_flickr30k.json"), **kw})


def test_registered_with_run_files() -> None:
    for name in ("shapes-captions", "karpathy-captions"):
        assert DATASETS.get(name).get("run_files") is True


def test_image_size_follows_the_host_and_keys_are_typed() -> None:
    assert _shapes().data.image_size == 16
    with pytest.raises(ConfigError, match="num_val"):
        _shapes(**{"data.num_val": 0})
    with pytest.raises(ConfigError, match="data.nonsense"):
        _shapes(**{"data.nonsense": 1})


def test_tokeniser_is_saved_with_the_run_and_read_back(tmp_path: Path) -> None:
    cfg = _flickr(tmp_path / "f")
    source = CaptionSource(cfg)
    saved = source.save_run_files(tmp_path / "run")
    assert [p.name for p in saved] == ["tokenizer.json"]
    vocab = source.tokenizer.backend.get_vocab()
    # The file's training text changes: a fresh source derives another vocabulary, the run's own stays.
    doc = json.loads(Path(cfg.data.annotation_file).read_text())
    doc["images"][0]["sentences"][0]["raw"] = "Completely different words here."
    Path(cfg.data.annotation_file).write_text(json.dumps(doc))
    assert CaptionSource(cfg).tokenizer.backend.get_vocab() != vocab
    again = CaptionSource(cfg, run_dir=tmp_path / "run")
    assert again.tokenizer.backend.get_vocab() == vocab and again.info.vocab_size == len(vocab)


def test_validation_items_hold_every_caption_of_an_image(tmp_path: Path) -> None:
    source = CaptionSource(_flickr(tmp_path / "f"))
    train, val = source.dataset("train", train=True), source.dataset("test", train=False)
    assert len(train) == 3 and train.skips.counts == {"empty-caption": 1}  # 2 + 1 captions; one empty skipped
    assert len(val) == 2 and val.info.num_captions == 4
    task = RetrievalTask(pad_id=source.info.pad_id)
    batch = task.collate([val[0], val[1]])
    assert batch["caption_valid"].tolist() == [[True, True, True], [True, False, False]]
    assert batch["caption_index"].tolist() == [[0, 1, 2], [3, -1, -1]]
    assert batch["input_ids"].shape[0] == 6 and batch["image"].shape == (2, 3, 16, 16)
    tokenizer = source.tokenizer
    assert batch["input_ids"][3, : batch["text_padding_mask"][3].logical_not().sum()].tolist() == \
        tokenizer.encode("A black dog and a spotted dog.", 40)


def test_missing_image_fails_before_training_or_is_counted(tmp_path: Path) -> None:
    cfg = _flickr(tmp_path / "f")
    (Path(cfg.data.root) / "1001773457.jpg").unlink()
    source = CaptionSource(cfg)  # the training images are all there
    with pytest.raises(ConfigError, match=r"1 of 2 test images are missing, first .*1001773457.jpg.*bad_image"):
        source.resolve()
    skipping = _flickr(tmp_path / "g", **{"data.bad_image": "skip"})
    (Path(skipping.data.root) / "1001773457.jpg").unlink()
    val = CaptionSource(skipping).dataset("test", train=False)
    assert len(val) == 1 and val.skips.counts == {"missing-image": 1}


def test_missing_annotation_file_is_named(tmp_path: Path) -> None:
    cfg = load_config(None, {**SMALL, "data.name": "karpathy-captions", "data.root": str(tmp_path),
                             "data.annotation_file": str(tmp_path / "dataset_flickr30k.json")})
    with pytest.raises(ConfigError, match="caption_datasets.zip"):
        CaptionSource(cfg)
    with pytest.raises(ConfigError, match="data.annotation_file"):
        load_config(None, {**SMALL, "data.name": "karpathy-captions"})


def test_shapes_split_sizes_and_limits() -> None:
    source = CaptionSource(_shapes(**{"data.limit_val": 3, "data.captions_per_image": 2}))
    assert len(source.dataset("train", train=True)) == 12  # 6 scenes x 2 captions
    val = source.dataset("val", train=False)
    assert len(val) == 3 and val[0]["caption_valid"].tolist() == [True, True]
    # the same scene and captions however the item is reached
    grouped, flat = val[1], source.split("val")[2]
    assert torch.equal(grouped["image"], flat["image"]) and torch.equal(grouped["caption_ids"][0], flat["input_ids"])
