"""Every registered vision-language dataset builds from a plain config and batches the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lm4vis.data.vl import VL_DATASETS, build_vl_dataset

from vl_release import Question, VQAv2Release, write_jpeg


def _config(name: str, tmp_path: Path) -> dict:
    if name == "vqav2":
        release = VQAv2Release(tmp_path / "vqav2")
        release.write("train", [Question(1, 3, "What is it?", ["a cat"] * 10),
                                Question(2, 4, "Is it red?", ["yes"] * 10, "yes/no")])
        return {"root": str(release.root), "image_size": 16}
    if name == "karpathy-captions":
        images = [{"filename": f"{k}.jpg", "imgid": k, "split": "train", "sentids": [k],
                   "sentences": [{"raw": f"photo number {k}.", "tokens": [], "imgid": k, "sentid": k}]}
                  for k in range(3)]
        for k in range(3):
            write_jpeg(tmp_path / "flickr30k-images" / f"{k}.jpg", k)
        (tmp_path / "dataset_flickr30k.json").write_text(json.dumps({"images": images}))
        return {"annotation_file": str(tmp_path / "dataset_flickr30k.json"),
                "image_root": str(tmp_path / "flickr30k-images"), "image_size": 16}
    if name == "shapes-vqa":
        return {"num_items": 4, "image_size": 16}
    return {"num_images": 2, "image_size": 16}


@pytest.mark.parametrize("name", list(VL_DATASETS))
def test_builds_and_batches(name: str, tmp_path: Path) -> None:
    ds = build_vl_dataset(name, _config(name, tmp_path))
    assert ds.info.name == name and ds.info.image_size == 16
    batch = ds.collate([ds[i] for i in range(2)])
    assert batch["image"].shape == (2, 3, 16, 16) and batch["image"].dtype == torch.uint8
    assert batch["text_padding_mask"].shape == batch["input_ids"].shape
    assert batch["skipped"] == {}
    if VL_DATASETS[name].task == "vqa":
        assert batch["target"].shape == (2, ds.info.num_answers)
    else:
        assert batch["image_index"].shape == (2,)


def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="shapes-vqa"):
        build_vl_dataset("clevr")
