"""Time matters on motion-mnist: a VideoMAE that learned from clips in order needs the order.

Two tests. On the ``laps`` motion set, where every class visits the same points of a circle and
only the order differs, a model trained on ordered clips falls to chance on shuffled frames, and
a single-frame model is at chance from the start (measured when written, 1 thread, idle:
ordered 49.6%, shuffled 22.5%, single-frame model 26.8%; chance 25%, three standard deviations
6.1 points). On the default 14 motions, shuffling takes away the direction within each pair of
opposite motions (below).

A tiny ``videomae`` host (the registered one, from the video-demo preset with smaller sizes) is
trained briefly on ordered clips, then scored on the validation clips three ways: in order,
with each clip's frames shuffled, and as a single-frame model (a second host trained and scored
on one random frame of each clip, repeated). Measured when written (1 thread, load ~11):
ordered 25.9% top-1, shuffled 12.9%, single frame 6.0% (chance 7.1%); among the clips of the
12 classes that have an opposite (left/right, ...) whose prediction is the class or its
opposite, the ordered model picked the right direction in 81.5%, on shuffled frames in 56%.

Why shuffling does not bring the whole accuracy down to 1/14: the unordered set of frames still
shows the axis of a motion (the object's positions lie on a horizontal line for left and right,
on a vertical one for up and down), so a model can still tell a pair of opposite motions from
another pair; what only the order carries is the direction within the pair, and that is what
falls to a coin flip. A single frame carries neither (motion-mnist is built so that a random
frame has the same distribution in every class), and its model stays at chance.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lm4vis.data.video import MOTION_CLASSES, build_video_dataset, reverse_class
from lm4vis.hosts import build_model
from lm4vis.train.config import load_config

FRAMES, SIZE = 4, 16
# One tubelet over the clip's 4 frames: the patch embedding itself sees the frames' order.
HOST = [f"host.num_frames={FRAMES}", f"host.image_size={SIZE}", "host.patch_size=4", "host.tubelet_size=4",
        "host.embed_dim=32", "host.depth=1", "host.num_heads=2", "block.variant=baseline"]
CHANCE = 1 / len(MOTION_CLASSES)
NUM_VAL = 448


def _clips(split: str, count: int, frames: int = FRAMES, **options) -> tuple[torch.Tensor, torch.Tensor]:
    ds = build_video_dataset("motion-mnist", split=split, num_items=count, num_frames=frames, image_size=SIZE,
                             distractors=0, **options)
    items = [ds[i] for i in range(count)]
    return torch.stack([x["video"] for x in items]), torch.stack([x["label"] for x in items])


def _one_frame(video: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random frame of each clip (B, C, T, H, W), repeated T times."""
    pick = torch.randint(0, video.shape[2], (video.shape[0],), generator=gen)
    return video[torch.arange(video.shape[0]), :, pick][:, :, None].expand_as(video).contiguous()


def _shuffled(video: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each clip's frames in their own random order."""
    return torch.stack([clip[:, torch.randperm(clip.shape[1], generator=gen)] for clip in video])


def _train(videos: torch.Tensor, labels: torch.Tensor, transform, steps: int = 150,
           host: list[str] = HOST) -> torch.nn.Module:
    cfg = load_config("video-demo", host)
    model = build_model(cfg.host, cfg.block, seed=0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = torch.randint(0, len(videos), (32,), generator=gen)
        loss = F.cross_entropy(model(transform(videos[batch], gen)), labels[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def _predict(model: torch.nn.Module, videos: torch.Tensor) -> torch.Tensor:
    return model(videos).argmax(-1)


def _direction_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    """Among clips of classes with an opposite whose prediction is the class or its opposite:
    the share with the right one (0.5 is a coin flip), and how many such clips there are."""
    opposite = torch.tensor([reverse_class(c) for c in range(len(MOTION_CLASSES))])[labels]
    in_pair = (opposite != labels) & ((pred == labels) | (pred == opposite))
    return ((pred == labels) & in_pair).sum().item() / max(1, in_pair.sum().item()), int(in_pair.sum())


@pytest.mark.slow
def test_order_is_what_the_model_reads_and_a_single_frame_stays_at_chance() -> None:
    torch.set_num_threads(1)
    train_videos, train_labels = _clips("train", 1024)
    val_videos, val_labels = _clips("val", NUM_VAL)
    gen = torch.Generator().manual_seed(1)
    # Three binomial standard deviations of an accuracy at chance on the validation clips.
    at_chance = CHANCE + 3 * math.sqrt(CHANCE * (1 - CHANCE) / NUM_VAL)

    ordered_model = _train(train_videos, train_labels, lambda v, g: v)
    ordered = _predict(ordered_model, val_videos)
    shuffled = _predict(ordered_model, _shuffled(val_videos, gen))
    acc_ordered = (ordered == val_labels).float().mean().item()
    acc_shuffled = (shuffled == val_labels).float().mean().item()
    assert acc_ordered > 2 * at_chance, f"the ordered model did not learn: {acc_ordered:.3f}"
    assert acc_shuffled < 0.6 * acc_ordered, (acc_ordered, acc_shuffled)
    direction_ordered, n_ordered = _direction_accuracy(ordered, val_labels)
    direction_shuffled, n_shuffled = _direction_accuracy(shuffled, val_labels)
    assert n_ordered >= 40 and n_shuffled >= 40, (n_ordered, n_shuffled)
    assert direction_ordered > 0.7, direction_ordered  # it reads the direction from the order...
    assert direction_shuffled < 0.7, direction_shuffled  # ... which shuffling takes away (0.5: a coin flip)

    single_model = _train(train_videos, train_labels, _one_frame)
    acc_single = (_predict(single_model, _one_frame(val_videos, gen)) == val_labels).float().mean().item()
    assert acc_single < at_chance, f"a single frame told the class: {acc_single:.3f} (chance {CHANCE:.3f})"


LAP_FRAMES = 8
LAP_HOST = [*HOST, f"host.num_frames={LAP_FRAMES}", f"host.tubelet_size={LAP_FRAMES}", "host.num_classes=4"]


@pytest.mark.slow
def test_on_laps_shuffled_frames_fall_to_chance_and_a_single_frame_is_at_chance() -> None:
    """Every lap class shows the same unordered frames: only the order tells them apart."""
    torch.set_num_threads(1)
    options = dict(frames=LAP_FRAMES, motion_set="laps", orbit_radius=(0.2, 0.3))
    train_videos, train_labels = _clips("train", 2048, **options)
    val_videos, val_labels = _clips("val", NUM_VAL, **options)
    chance = 1 / 4
    assert torch.bincount(val_labels).tolist() == [NUM_VAL // 4] * 4  # balanced: chance is exactly 1/4
    sd = math.sqrt(chance * (1 - chance) / NUM_VAL)
    gen = torch.Generator().manual_seed(1)

    ordered_model = _train(train_videos, train_labels, lambda v, g: v, steps=600, host=LAP_HOST)
    acc_ordered = (_predict(ordered_model, val_videos) == val_labels).float().mean().item()
    acc_shuffled = (_predict(ordered_model, _shuffled(val_videos, gen)) == val_labels).float().mean().item()
    assert acc_ordered > chance + 5 * sd, f"the ordered model did not learn: {acc_ordered:.3f}"
    assert abs(acc_shuffled - chance) < 3 * sd, f"shuffled frames are not at chance: {acc_shuffled:.3f}"

    single_model = _train(train_videos, train_labels, _one_frame, steps=600, host=LAP_HOST)
    acc_single = (_predict(single_model, _one_frame(val_videos, gen)) == val_labels).float().mean().item()
    assert abs(acc_single - chance) < 3 * sd, f"a single frame told the class: {acc_single:.3f}"
