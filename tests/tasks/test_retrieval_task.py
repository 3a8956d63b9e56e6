"""The ``retrieval`` task: the loss, the two batch shapes, and Recall@K through the engine's
gather path, exact against `retrieval_recalls` on a hand-built similarity matrix."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lm4vis.hosts.fusion import info_nce
from lm4vis.registry import TASKS
from lm4vis.tasks.retrieval import RetrievalTask, chance_reference
from lm4vis.tasks.retrieval_config import RetrievalConfig
from lm4vis.tasks.retrieval_metrics import retrieval_recalls

# Three images with 2, 3 and 1 captions (6 captions): caption -> image.
CAPTION_IMAGE = torch.tensor([0, 0, 1, 1, 1, 2])
# A hand-built [images x captions] similarity: image 0 ranks its captions 2nd and 4th, image 1
# its own first, image 2 its only caption last; caption 3 prefers image 0.
SIMILARITY = torch.tensor([
    [0.5, 0.1, 0.9, 0.8, 0.2, 0.0],
    [0.3, 0.2, 0.7, 0.4, 0.6, 0.1],
    [0.4, 0.6, 0.5, 0.3, 0.2, 0.05],
])


def _embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    """Unit vectors whose dot products are SIMILARITY / 2: images are the first three axes,
    captions hold their similarities on those axes plus a completing component."""
    images = torch.eye(3, 4, dtype=torch.float64)
    texts = torch.zeros(6, 4, dtype=torch.float64)
    texts[:, :3] = SIMILARITY.T.double() / 2  # half the similarity: the same ranking, and room for a unit norm
    texts[:, 3] = (1 - texts[:, :3].pow(2).sum(1)).sqrt()
    return images.float(), texts.float()


def _outputs(rows: list[int], width: int = 3) -> tuple[dict, dict]:
    """What `forward` returns for a validation batch of images ``rows`` (captions padded to ``width``)."""
    images, texts = _embeddings()
    text = torch.zeros(len(rows), width, 4)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, i in enumerate(rows):
        own = torch.nonzero(CAPTION_IMAGE == i).flatten()
        text[b, : len(own)] = texts[own]
        text[b, len(own):] = texts[own[0]]  # fillers copy a real caption
        valid[b, : len(own)] = True
    return ({"image_embeds": images[rows], "text_embeds": text, "logit_scale": torch.tensor(10.0)},
            {"caption_valid": valid, "image_index": torch.tensor(rows)})


def _gather(task: RetrievalTask, batches: list[list[int]]) -> dict[str, torch.Tensor]:
    """What the engine does: per-batch outputs concatenated over the epoch."""
    collected: dict[str, list[torch.Tensor]] = {}
    for rows in batches:
        for k, v in task.batch_outputs(*_outputs(rows)).items():
            collected.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in collected.items()}


@pytest.mark.parametrize("batches", [
    [[0, 1, 2]],
    [[2], [0, 1]],            # another order, batches of unequal size
    [[1, 2], [0, 1]],         # image 1 twice, as a padded distributed sampler would repeat it
], ids=["one-batch", "reordered", "repeated-image"])
def test_gathered_recalls_equal_the_metric_on_the_whole_matrix(batches) -> None:
    task = RetrievalTask()
    got = task.gathered_metrics(_gather(task, batches))
    expected = retrieval_recalls(SIMILARITY, CAPTION_IMAGE, (1, 5, 10))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    # by hand: image->text ranks 1, 0, 5 -> R@1 1/3, R@5 2/3; text->image ranks 1,2,0,1,0,2 -> R@1 2/6
    assert got["i2t_r1"] == pytest.approx(1 / 3) and got["i2t_r5"] == pytest.approx(2 / 3)
    assert got["t2i_r1"] == pytest.approx(2 / 6) and got["t2i_r5"] == pytest.approx(1.0)
    six = [got[f"{d}_r{k}"] for d in ("i2t", "t2i") for k in (1, 5, 10)]
    assert got["rmean"] == pytest.approx(sum(six) / 6) and got["rsum"] == pytest.approx(100 * sum(six))


def test_training_loss_leaves_same_image_captions_out() -> None:
    gen = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    text = F.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    outputs = {"image_embeds": image, "text_embeds": text, "logit_scale": torch.tensor(5.0)}
    targets = {"image_index": torch.tensor([3, 7, 3, 1])}  # rows 0 and 2: two captions of image 3
    masked = RetrievalTask().loss(outputs, targets, train=True)
    assert masked == pytest.approx(info_nce(image, text, 5.0, targets["image_index"]).item())
    plain = RetrievalTask(same_image_negatives=True).loss(outputs, targets, train=True)
    assert plain == pytest.approx(info_nce(image, text, 5.0).item()) and plain != pytest.approx(masked.item())
    sums = RetrievalTask().batch_sums(outputs, targets)
    assert float(sums["count"]) == 4 and float(sums["loss"]) == pytest.approx(4 * masked.item())


def test_validation_loss_counts_real_pairs_only() -> None:
    task = RetrievalTask()
    outputs, targets = _outputs([0, 1, 2])
    sums = task.batch_sums(outputs, targets)
    assert float(sums["count"]) == 6  # 2 + 3 + 1 real captions; fillers are not pairs
    images, texts = _embeddings()
    expected = info_nce(images[CAPTION_IMAGE], texts, 10.0, CAPTION_IMAGE)
    assert float(sums["loss"]) / 6 == pytest.approx(expected.item(), rel=1e-5)


def test_collate_takes_both_batch_shapes() -> None:
    task = RetrievalTask(pad_id=0)
    img = torch.zeros(3, 4, 4, dtype=torch.uint8)
    train = task.collate([{"image": img, "image_index": torch.tensor(0), "input_ids": torch.tensor([2, 5, 3]),
                           "caption_index": torch.tensor(0)},
                          {"image": img, "image_index": torch.tensor(1), "input_ids": torch.tensor([2, 3]),
                           "caption_index": torch.tensor(1)}])
    assert train["input_ids"].tolist() == [[2, 5, 3], [2, 3, 0]] and train["text_padding_mask"][1].tolist() == [False, False, True]
    from lm4vis.data.skips import Skipped

    val = task.collate([{"image": img, "image_index": torch.tensor(4), "caption_ids": [torch.tensor([2, 6, 3]), torch.tensor([2, 3])],
                         "caption_valid": torch.tensor([True, False]), "caption_index": torch.tensor([9, -1])},
                        Skipped("unreadable-image", "x.jpg")])
    assert val["input_ids"].shape == (2, 3) and val["caption_valid"].tolist() == [[True, False]]
    assert val["skipped"] == {"unreadable-image": 1} and task.batch_size(val) == 1


def test_config_and_registration() -> None:
    assert TASKS.get("retrieval").config is RetrievalConfig
    names = [m.name for m in RetrievalTask().metrics]
    assert names == ["rmean", "i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum", "loss"]
    assert RetrievalTask().monitor_metric.higher_is_better
    with pytest.raises(ValueError, match="task.monitor"):
        RetrievalConfig(monitor="i2t_r20")
    with pytest.raises(ValueError, match="task.ks"):
        RetrievalConfig(ks=[1, 1])


def test_chance_reference_is_exact_for_random_ranking() -> None:
    from lm4vis.train.config import load_config

    cfg = load_config(None, {"host.kind": "dual-encoder", "data.name": "shapes-captions", "task.name": "retrieval",
                             "data.num_train": 2, "data.num_val": 20, "host.image.img_size": 16,
                             "host.image.patch_size": 8})
    ref = chance_reference(cfg)["metrics"]
    assert ref["val/t2i_r1"] == pytest.approx(1 / 20) and ref["val/t2i_r10"] == pytest.approx(10 / 20)
    # 20 images x 5 captions: an image's 5 captions miss the first K of 100 with C(95, K) / C(100, K)
    assert ref["val/i2t_r1"] == pytest.approx(5 / 100)
    assert ref["val/i2t_r5"] == pytest.approx(1 - math.comb(95, 5) / math.comb(100, 5))
