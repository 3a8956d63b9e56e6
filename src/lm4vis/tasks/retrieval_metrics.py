"""Recall@K of image-text retrieval from a full similarity matrix (Flickr30k / COCO protocol).

Every image has several captions (five in Flickr30k and COCO). Image -> text (text retrieval,
"TR") ranks all captions for each image and counts a hit at K when *any* of the image's own
captions is among the first K; text -> image (image retrieval, "IR", the paper's Table 5
column) ranks all images for each caption, which has exactly one right image.

A rank is the number of wrong candidates scored at least as high as the best right one: ties
count against the model, so a constant matrix scores chance or worse, never a perfect recall
(a sort would break ties by position and could hand it every hit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

#: The K of the standard protocol.
RECALL_AT: tuple[int, ...] = (1, 5, 10)


def retrieval_ranks(
    similarity: Tensor, caption_image: Tensor, chunk_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """0-based rank of the first right answer for every image query and every caption query.

    Args:
        similarity: float [num_images, num_captions], higher = more alike.
        caption_image: int64 [num_captions], the index of each caption's image.
        chunk_size: image rows compared at once (bounds memory on a 5k x 25k matrix).

    Returns:
        ``(image_to_text [num_images], text_to_image [num_captions])``, int64.
    """
    num_images, num_captions = similarity.shape
    caption_image = caption_image.to(similarity.device, torch.long)
    if caption_image.shape != (num_captions,):
        raise ValueError(f"caption_image has shape {tuple(caption_image.shape)}; expected "
                         f"({num_captions},), one image index per column of the similarity")
    if num_captions and not 0 <= int(caption_image.min()) <= int(caption_image.max()) < num_images:
        raise ValueError(f"caption_image holds indices outside 0..{num_images - 1}")
    has_caption = torch.bincount(caption_image, minlength=num_images) > 0
    if not bool(has_caption.all()):
        missing = torch.nonzero(~has_caption).flatten()[:5].tolist()
        raise ValueError(f"images {missing} have no caption, so image->text recall is undefined "
                         "for them; drop them from the similarity matrix")
    if torch.isnan(similarity).any():
        raise ValueError("the similarity matrix holds NaN; a NaN never ranks, so recall would be wrong")

    columns = torch.arange(num_captions, device=similarity.device)
    true_score = similarity[caption_image, columns]  # each caption's score with its own image
    image_to_text = torch.empty(num_images, dtype=torch.long, device=similarity.device)
    text_to_image = torch.zeros(num_captions, dtype=torch.long, device=similarity.device)
    for start in range(0, num_images, chunk_size):
        block = similarity[start:start + chunk_size]
        rows = torch.arange(start, start + len(block), device=similarity.device)
        right = caption_image[None, :] == rows[:, None]
        best_right = block.masked_fill(~right, float("-inf")).amax(dim=1)
        image_to_text[start:start + len(block)] = ((block >= best_right[:, None]) & ~right).sum(1)
        text_to_image += ((block >= true_score[None, :]) & ~right).sum(0)
    return image_to_text, text_to_image


def recall_at_k(ranks: Tensor, ks: Sequence[int] = RECALL_AT) -> dict[int, float]:
    """Share of queries whose first right answer ranks within the top K, for each K.

    Args:
        ranks: 0-based ranks, from `retrieval_ranks`.
        ks: the cut-offs.
    """
    return {k: float((ranks < k).float().mean()) for k in ks}


def retrieval_recalls(
    similarity: Tensor, caption_image: Tensor, ks: Sequence[int] = RECALL_AT
) -> dict[str, float]:
    """``i2t_r1``, ``i2t_r5``, ``i2t_r10`` (text retrieval), ``t2i_r1`` ... (image retrieval),
    in 0..1, and ``rsum``, the sum of all six in percent (the number ViLT and METER report).

    Args:
        similarity: float [num_images, num_captions].
        caption_image: int64 [num_captions], each caption's image index.
        ks: the cut-offs.
    """
    image_to_text, text_to_image = retrieval_ranks(similarity, caption_image)
    out = {f"i2t_r{k}": v for k, v in recall_at_k(image_to_text, ks).items()}
    out |= {f"t2i_r{k}": v for k, v in recall_at_k(text_to_image, ks).items()}
    out["rsum"] = 100.0 * sum(out.values())
    return out


__all__ = ["RECALL_AT", "retrieval_ranks", "recall_at_k", "retrieval_recalls"]
