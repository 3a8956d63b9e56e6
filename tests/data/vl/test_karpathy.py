"""Karpathy-split captions read from files in the layout of dataset_flickr30k.json / dataset_coco.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lm4vis.data.base import DatasetNotFoundError
from lm4vis.data.skips import BadInputError
from lm4vis.data.vl.karpathy import KarpathyCaptions, KarpathyConfig
from lm4vis.tasks.retrieval_metrics import retrieval_recalls

from vl_release import write_jpeg


def _entry(imgid: int, split: str, raws: list[str], filepath: str | None = None) -> dict:
    sentids = list(range(imgid * 10, imgid * 10 + len(raws)))
    entry = {"sentids": sentids, "imgid": imgid, "split": split,
             "filename": f"{1000000 + imgid}.jpg" if filepath is None else f"COCO_{filepath}_{imgid:012d}.jpg",
             "sentences": [{"tokens": raw.lower().strip(".").split(), "raw": raw, "imgid": imgid, "sentid": s}
                           for raw, s in zip(raws, sentids)]}
    if filepath is not None:
        entry["filepath"], entry["cocoid"] = filepath, imgid
    return entry


FLICKR = [
    _entry(0, "train", ["Two dogs run.", "A dog and a dog.", "Dogs on grass."]),
    _entry(1, "train", ["A man rides a bike.", "  ", "Cyclist on a road."]),  # one empty caption
    _entry(2, "val", ["A red kite flies.", "Kite in the sky."]),
    _entry(3, "test", ["A cat sleeps.", "Sleeping cat."]),
    _entry(4, "test", ["Zebras graze.", "Two zebras."]),
    _entry(5, "test", ["", " "]),  # no usable caption at all
]


def _write(root: Path, name: str, entries: list[dict], dataset: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(json.dumps({"images": entries, "dataset": dataset}))
    for e in entries:
        write_jpeg(root / "images" / e.get("filepath", "") / e["filename"], e["imgid"], (14, 10))
    return path


def _flickr(root: Path, split: str = "train", **kw) -> KarpathyConfig:
    path = _write(root, "dataset_flickr30k.json", FLICKR, "flickr30k")
    return KarpathyConfig(str(path), str(root / "images"), split, image_size=8, **kw)


def test_train_items(karpathy_root: Path) -> None:
    ds = KarpathyCaptions(_flickr(karpathy_root))
    assert ds.info.num_images == 2 and len(ds) == 5
    assert ds.skips.counts == {"empty-caption": 1}
    assert ds.caption_image.tolist() == [0, 0, 0, 1, 1]
    item = ds[4]
    assert set(item) == {"image", "image_index", "input_ids", "caption_index"}
    assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.uint8
    assert item["image_index"] == 1 and item["caption_index"] == 4
    assert item["input_ids"].tolist() == ds.tokenizer.encode("Cyclist on a road.", 40)
    assert torch.equal(ds[3]["image"], item["image"])  # same image, another caption


def test_vocabulary_comes_from_training_captions(karpathy_root: Path) -> None:
    train = KarpathyCaptions(_flickr(karpathy_root))
    test = KarpathyCaptions(_flickr(karpathy_root, "test"))
    assert test.tokenizer.backend.get_vocab() == train.tokenizer.backend.get_vocab()
    words = test.caption_item(0)["input_ids"].tolist()[1:-1]  # "a cat sleeps ."
    vocab = train.tokenizer.backend.get_vocab()
    assert words == [vocab["a"], 1, 1, vocab["."]]  # cat and sleeps appear only in test


def test_views_and_retrieval(karpathy_root: Path) -> None:
    ds = KarpathyCaptions(_flickr(karpathy_root, "test"))
    assert ds.skips.counts == {"empty-caption": 2, "image-without-caption": 1}
    images, captions = ds.image_view(), ds.caption_view()
    assert len(images) == 2 and len(captions) == 4
    image_batch = images.collate([images[i] for i in range(len(images))])
    caption_batch = captions.collate([captions[i] for i in range(len(captions))])
    assert set(image_batch) == {"image", "image_index", "skipped"}
    assert set(caption_batch) == {"input_ids", "text_padding_mask", "image_index", "caption_index", "skipped"}
    assert caption_batch["image_index"].tolist() == ds.caption_image.tolist() == [0, 0, 1, 1]
    # a similarity that knows the pairing retrieves perfectly; its transpose of pairs does not
    perfect = (image_batch["image_index"][:, None] == caption_batch["image_index"][None, :]).float()
    assert retrieval_recalls(perfect, ds.caption_image)["t2i_r1"] == 1.0
    assert retrieval_recalls(1 - perfect, ds.caption_image)["i2t_r1"] == 0.0


def test_coco_layout_with_restval(karpathy_root: Path) -> None:
    entries = [_entry(1, "train", ["A bus."], "train2014"), _entry(2, "restval", ["A train."], "val2014"),
               _entry(3, "val", ["A tram."], "val2014")]
    path = _write(karpathy_root, "dataset_coco.json", entries, "coco")
    ds = KarpathyCaptions(KarpathyConfig(str(path), str(karpathy_root / "images"), image_size=8))
    assert [p.parent.name for p in ds.image_paths] == ["train2014", "val2014"]
    assert ds.info.num_captions == 2
    alone = KarpathyCaptions(KarpathyConfig(str(path), str(karpathy_root / "images"), image_size=8,
                                            restval_in_train=False))
    assert alone.info.num_images == 1
    assert ds[1]["image"].shape == (3, 8, 8)


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_missing_image(karpathy_root: Path, policy: str) -> None:
    cfg = _flickr(karpathy_root, bad_image=policy)
    (karpathy_root / "images" / "1000000.jpg").unlink()
    if policy == "fail":
        with pytest.raises(BadInputError, match="1 of 2 train images are missing, first .*1000000.jpg"):
            KarpathyCaptions(cfg)
        return
    ds = KarpathyCaptions(cfg)
    assert ds.skips.counts["missing-image"] == 3 and ds.info.num_images == 1


def test_unreadable_image_is_dropped_by_collate(karpathy_root: Path) -> None:
    cfg = _flickr(karpathy_root, bad_image="skip")
    (karpathy_root / "images" / "1000001.jpg").write_bytes(b"\xff\xd8 broken")
    ds = KarpathyCaptions(cfg)
    batch = ds.collate([ds[i] for i in range(len(ds))])
    assert batch["skipped"] == {"unreadable-image": 2}
    assert batch["caption_index"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("entries, message", [
    ([{"filename": "x.jpg", "split": "trainval", "sentences": []}], "split 'trainval'"),
    ([{"filename": "x.jpg", "split": "train"}], "lacks sentences"),
])
def test_malformed_file_is_named(karpathy_root: Path, entries: list, message: str) -> None:
    karpathy_root.mkdir(parents=True)
    path = karpathy_root / "dataset_flickr30k.json"
    path.write_text(json.dumps({"images": entries}))
    with pytest.raises(BadInputError, match=message):
        KarpathyCaptions(KarpathyConfig(str(path), str(karpathy_root)))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="caption_datasets.zip"):
        KarpathyCaptions(KarpathyConfig(str(tmp_path / "dataset_flickr30k.json"), str(tmp_path)))
