"""Image-text retrieval: symmetric InfoNCE in training, Recall@K over the whole split in
validation.

Batches come in two shapes, both from `lm4vis.data.vl.captions`:

- **training**: one caption per row with its image (``image`` [B, 3, S, S], ``input_ids``
  [B, L], ``text_padding_mask`` [B, L], ``image_index`` [B]). The loss is the symmetric InfoNCE
  of the B pairs with the host's learned temperature and in-batch negatives; two captions of
  the same image in one batch are left out of each other's softmax (``image_index``), unless
  ``task.same_image_negatives``.
- **validation**: one image per row with all its captions (``caption_valid`` [B, C];
  ``input_ids`` [B * C, L]). Each image is embedded once. The task returns per-image tensors
  (image embedding, its C caption embeddings, which of them are real, the image's index) from
  `batch_outputs`; the engine concatenates them over the epoch and gathers them from every
  rank, and `gathered_metrics` builds the full [images x captions] similarity matrix,
  de-duplicates images by index (a padded distributed sampler may repeat one) and scores it
  with `lm4vis.tasks.retrieval_metrics.retrieval_recalls`: an image-to-text hit at K is any of
  the image's own captions among the first K.

The host is anything with ``encode_image(image)``, ``encode_text(input_ids,
text_padding_mask)`` (unit-norm embeddings) and ``logit_scale``, as
`lm4vis.hosts.fusion.DualEncoder` has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..data.vl.captions import collate_image_captions
from ..data.vl.items import collate_vl
from ..hosts.fusion import info_nce
from .base import LOSS, Metric, Task
from .retrieval_config import DIRECTIONS, RetrievalConfig
from .retrieval_metrics import retrieval_recalls

_LABELS = {"i2t": "image→text", "t2i": "text→image"}


def retrieval_metric(name: str) -> Metric:
    """The declaration of ``rmean``, ``rsum`` or ``<i2t|t2i>_r<K>``: higher is better."""
    if name == "rmean":
        return Metric("rmean", "R-mean", unit="%", scale=100.0, digits=2)
    if name == "rsum":
        return Metric("rsum", "rsum", digits=1)
    direction, _, k = name.partition("_r")
    return Metric(name, f"{_LABELS[direction]} R@{k}", unit="%", scale=100.0, digits=2)


class RetrievalTask(Task):
    """Image-caption batches -> InfoNCE and Recall@K; see the module docstring.

    Args:
        pad_id: the tokeniser's padding id (the dataset's ``info.pad_id``).
        ks: Recall@K cut-offs.
        monitor: the metric that decides (``rmean``).
        same_image_negatives: treat captions of one image in a batch as negatives of each other.
    """

    def __init__(self, pad_id: int = 0, ks: Sequence[int] = (1, 5, 10), monitor: str = "rmean",
                 same_image_negatives: bool = False) -> None:
        cfg = RetrievalConfig(ks=list(ks), monitor=monitor, same_image_negatives=same_image_negatives)
        self.pad_id, self.ks, self.same_image_negatives = pad_id, tuple(cfg.ks), cfg.same_image_negatives
        self.metrics = tuple(LOSS if n == "loss" else retrieval_metric(n) for n in cfg.metric_names)
        self.monitor = cfg.monitor

    @classmethod
    def from_config(cls, cfg: RetrievalConfig, info: Any = None) -> RetrievalTask:
        """Args: cfg: the task config; info: the dataset's `CaptionInfo` (its ``pad_id``)."""
        return cls(getattr(info, "pad_id", 0), cfg.ks, cfg.monitor, cfg.same_image_negatives)

    # -- batches ---------------------------------------------------------------------------------
    def collate(self, items: Sequence[Any]) -> dict[str, Any]:
        """Caption items (training) or image-with-captions items (validation), padded."""
        items = list(items)
        grouped = any(isinstance(it, dict) and "caption_ids" in it for it in items)
        return (collate_image_captions if grouped else collate_vl)(items, self.pad_id)

    def batch_size(self, batch: dict[str, Any]) -> int:
        return int(batch["image"].shape[0]) if "image" in batch else 0

    def forward(self, model: nn.Module, batch: dict[str, Any], train: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        if "image" not in batch:
            # Every image of this batch was unreadable (the collate kept only the counts): a
            # zero loss that reaches the trainable weights keeps the step going.
            anchor = sum(p.flatten()[0] * 0.0 for p in model.parameters() if p.requires_grad)
            return {"empty": torch.as_tensor(anchor)}, {}
        if not all(hasattr(model, a) for a in ("encode_image", "encode_text", "logit_scale")):
            raise TypeError(f"task.name=retrieval needs a host with encode_image, encode_text and logit_scale "
                            f"(host.kind=dual-encoder); {type(model).__name__} has not")
        image = model.encode_image(batch["image"])
        text = model.encode_text(batch["input_ids"], batch["text_padding_mask"])
        out = {"image_embeds": image, "text_embeds": text, "logit_scale": model.logit_scale}
        if "caption_valid" in batch:  # validation: rows of C captions per image
            valid = batch["caption_valid"]
            out["text_embeds"] = text.view(*valid.shape, -1)
            return out, {"caption_valid": valid, "image_index": batch["image_index"]}
        return out, {"image_index": batch["image_index"]}

    # -- objective and metrics -------------------------------------------------------------------
    def _pairs(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(image, text, image id) rows of every real pair in the batch."""
        image, text, ids = outputs["image_embeds"], outputs["text_embeds"], targets["image_index"]
        if "caption_valid" in targets:
            valid = targets["caption_valid"]
            rows = torch.arange(len(image), device=image.device)[:, None].expand_as(valid)[valid]
            return image[rows], text[valid], ids[rows]
        return image, text, ids

    def loss(self, outputs: dict[str, Tensor], targets: dict[str, Tensor], train: bool) -> Tensor:
        if "empty" in outputs:
            return outputs["empty"]
        image, text, ids = self._pairs(outputs, targets)
        return info_nce(image.float(), text.float(), outputs["logit_scale"],
                        None if self.same_image_negatives else ids)

    def batch_sums(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        if "empty" in outputs:
            zero = torch.zeros((), device=outputs["empty"].device)
            return {"count": zero, "loss": zero.clone()}
        image, text, ids = self._pairs(outputs, targets)
        with torch.no_grad():
            loss = info_nce(image.detach().float(), text.detach().float(), outputs["logit_scale"].detach(),
                            None if self.same_image_negatives else ids)
        n = torch.tensor(float(len(image)), device=image.device)
        return {"count": n, "loss": loss * n}

    def epoch_metrics(self, sums: dict[str, Tensor]) -> dict[str, float]:
        count = float(sums["count"])
        return {"loss": float(sums["loss"]) / count} if count else {}

    def batch_outputs(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor] | None:
        if "empty" in outputs or "caption_valid" not in targets:
            return None  # training batches are scored by their loss only
        return {"image_embeds": outputs["image_embeds"].detach().float(),
                "text_embeds": outputs["text_embeds"].detach().float(),
                "caption_valid": targets["caption_valid"], "image_index": targets["image_index"]}

    def gathered_metrics(self, gathered: dict[str, Tensor]) -> dict[str, float]:
        """Recall@K in both directions over every gathered image and caption."""
        image, text, valid = similarity_inputs(gathered)
        if not len(image):
            return {}
        caption_image = torch.arange(len(image))[:, None].expand_as(valid)[valid]
        recalls = retrieval_recalls(image @ text[valid].T, caption_image, self.ks)
        six = [recalls[f"{d}_r{k}"] for d in DIRECTIONS for k in self.ks]
        return {**recalls, "rmean": sum(six) / len(six)}


def similarity_inputs(gathered: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Image embeddings [I, D], caption embeddings [I, C, D] and their validity [I, C], one row
    per distinct image, ordered by image index (the first copy of a repeated image is kept)."""
    index = gathered["image_index"].cpu()
    order = torch.argsort(index, stable=True)
    first = torch.ones(len(order), dtype=torch.bool)
    first[1:] = index[order][1:] != index[order][:-1]
    keep = order[first]
    return (gathered["image_embeds"].cpu()[keep], gathered["text_embeds"].cpu()[keep],
            gathered["caption_valid"].cpu()[keep])


def chance_reference(cfg: Any) -> dict[str, Any]:
    """Recall@K of a model that ranks at random, on a run's validation split (the demo prints
    it beside the trained rows): image->text R@K = 1 - C(N - c, K) / C(N, K) for an image with
    c of the N captions, text->image R@K = K / images.

    Args:
        cfg: the run config.
    """
    from math import comb

    from ..registry import DATASETS

    val = DATASETS.get(cfg.data.name).build(cfg, run_dir=None).split(cfg.data.val_split)
    counts = torch.bincount(val.caption_image, minlength=val.info.num_images).tolist()
    images, captions = len(counts), sum(counts)
    task = RetrievalTask(val.info.pad_id, cfg.task.ks, cfg.task.monitor, cfg.task.same_image_negatives)
    metrics: dict[str, float] = {}
    for k in task.ks:
        miss = [comb(captions - c, k) / comb(captions, k) if captions >= k else 0.0 for c in counts]
        metrics[f"i2t_r{k}"] = 1.0 - sum(miss) / images
        metrics[f"t2i_r{k}"] = min(1.0, k / images)
    six = [metrics[f"{d}_r{k}"] for d in DIRECTIONS for k in task.ks]
    metrics["rmean"] = sum(six) / len(six)
    return {"label": "random ranking (chance)", "scenes": images,
            "note": f"{images} images and {captions} captions",
            "metrics": {f"val/{name}": value for name, value in metrics.items()}}


__all__ = ["RetrievalTask", "retrieval_metric", "similarity_inputs", "chance_reference"]
