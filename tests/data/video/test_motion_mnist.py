"""motion-mnist: reproducible, each motion does what its name says, its reverse is its opposite,
and a single frame says nothing of the class."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lm4vis.data.video import MOTION_CLASSES, MotionMNIST, MotionMNISTConfig, build_video_dataset, reverse_class

SMALL = dict(num_frames=8, image_size=24, num_items=28)
CHANCE = 1 / len(MOTION_CLASSES)


@pytest.fixture(scope="module")
def small() -> MotionMNIST:
    return MotionMNIST("train", MotionMNISTConfig(**SMALL), with_masks=True)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_items(small: MotionMNIST) -> None:
    item = small[3]
    assert item["video"].shape == (1, 8, 24, 24) and item["video"].dtype == torch.float32
    assert item["masks"].shape == (8, 24, 24) and item["masks"].dtype == torch.bool
    assert item["visibility"].shape == (8,) and item["label"].item() == 3 and item["index"].item() == 3
    assert small.info.clip_shape == (1, 8, 24, 24) and small.info.has_masks
    assert small.targets.tolist() == [i % 14 for i in range(28)]
    assert "masks" not in MotionMNIST("train", MotionMNISTConfig(**SMALL))[0]


def test_clip_i_depends_only_on_seed_split_and_i(small: MotionMNIST) -> None:
    again = MotionMNIST("train", MotionMNISTConfig(**SMALL), with_masks=True)
    assert _same(small[5], again[5])
    assert torch.equal(again.subset([9, 5])[1]["video"], small[5]["video"])  # a subset keeps clip numbers
    order = [small[i] for i in (7, 2, 7)]
    assert _same(order[0], order[2])
    assert not torch.equal(small[5]["video"], MotionMNIST("train", MotionMNISTConfig(**SMALL, seed=1))[5]["video"])
    assert not torch.equal(small[5]["video"], MotionMNIST("val", MotionMNISTConfig(**SMALL))[5]["video"])


def test_worker_processes_generate_the_same_bytes(small: MotionMNIST) -> None:
    loader = DataLoader(small, batch_size=7, num_workers=2, collate_fn=small.collate)
    videos = torch.cat([batch["video"] for batch in loader])
    assert torch.equal(videos, torch.stack([small[i]["video"] for i in range(len(small))]))
    assert next(iter(loader))["skipped"] == {}


@pytest.mark.parametrize("label", range(len(MOTION_CLASSES)))
def test_the_reverse_of_a_clip_is_the_clip_of_the_opposite_class(small: MotionMNIST, label: int) -> None:
    clip, reverse = small.render(11, label), small.render(11, reverse_class(label))
    assert reverse_class(reverse_class(label)) == label
    assert np.array_equal(reverse.masks, clip.masks[::-1])
    assert np.array_equal(reverse.visibility, clip.visibility[::-1])
    if reverse_class(label) != label:
        # Byte for byte, distractors and noise included; and really another clip.
        assert np.array_equal(reverse.frames, clip.frames[::-1])
        assert not np.array_equal(reverse.frames, clip.frames)


def test_palindromes(small: MotionMNIST) -> None:
    bounce, still = (small.render(4, MOTION_CLASSES.index(name)) for name in ("bounce", "still"))
    assert np.array_equal(bounce.masks, bounce.masks[::-1]) and not np.array_equal(bounce.masks[0], bounce.masks[3])
    assert all(np.array_equal(m, still.masks[0]) for m in still.masks)


def _centre(masks: np.ndarray) -> np.ndarray:
    """Per-frame (x, y) centre of a mask on the torus, as angles (a circular mean)."""
    size = masks.shape[-1]
    phase = np.exp(2j * np.pi * (np.arange(size) + 0.5) / size)
    x = (masks.sum(1) * phase).sum(1)
    y = (masks.sum(2) * phase).sum(1)
    return np.stack([np.angle(x), np.angle(y)], 1)


def _moved(masks: np.ndarray) -> np.ndarray:
    """(x, y) distance the centre travels over the clip, in radians of the torus: the sum of
    wrapped frame-to-frame steps (a shift over half the canvas would wrap as a whole)."""
    steps = np.diff(_centre(masks), axis=0)
    return np.angle(np.exp(1j * steps)).sum(0)


def _swept(masks: np.ndarray) -> float:
    """Signed area swept by the centre's path (shoelace formula on the unwrapped path): positive
    when it turns clockwise on screen, since y points down."""
    steps = np.angle(np.exp(1j * np.diff(_centre(masks), axis=0)))
    x, y = np.vstack([[0.0, 0.0], np.cumsum(steps, 0)]).T
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@pytest.mark.parametrize(
    "name, check",
    [
        ("right", lambda c: _moved(c.masks)[0] > 0.3 and abs(_moved(c.masks)[1]) < 0.1),
        ("left", lambda c: _moved(c.masks)[0] < -0.3),
        ("down", lambda c: _moved(c.masks)[1] > 0.3 and abs(_moved(c.masks)[0]) < 0.1),
        ("up", lambda c: _moved(c.masks)[1] < -0.3),
        ("zoom-in", lambda c: c.masks[-1].sum() > 1.8 * c.masks[0].sum()),
        ("zoom-out", lambda c: c.masks[0].sum() > 1.8 * c.masks[-1].sum()),
        ("appear", lambda c: np.all(np.diff(c.visibility) > 0) and c.visibility[-1] == 1.0),
        ("vanish", lambda c: np.all(np.diff(c.visibility) < 0)),
        # a turn in place moves the mask's centre around the turning point, clockwise
        ("clockwise", lambda c: 0 < _swept(c.masks) < 0.5),
        ("counter-clockwise", lambda c: -0.5 < _swept(c.masks) < 0),
        ("orbit-clockwise", lambda c: _swept(c.masks) > 0.5),
        ("orbit-counter-clockwise", lambda c: _swept(c.masks) < -0.5),
        ("still", lambda c: np.all(np.diff(c.visibility) == 0) and np.abs(_moved(c.masks)).max() == 0),
    ],
)
def test_each_motion_does_what_its_name_says(small: MotionMNIST, name: str, check) -> None:
    label = MOTION_CLASSES.index(name)
    clips = [small.render(i, label) for i in range(6)]
    assert all(check(c) for c in clips)


def test_without_mnist_installed_it_falls_back_to_shapes_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        ds = MotionMNIST("val", MotionMNISTConfig(**SMALL), root=str(tmp_path / "no-data-here"))
    assert ds.source == "shapes" and "random shapes instead" in caplog.text
    assert ds[0]["video"].shape == (1, 8, 24, 24)
    assert build_video_dataset("motion-mnist", "val", source="shapes", num_items=14).source == "shapes"


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_frames=1), "at least 2 frames"),
        (dict(side_range=(0.3, 0.9)), r"\(0, 0.7\]"),
        (dict(zoom_range=(0.5, 2.0)), "growth factor"),
        (dict(source="cifar"), "unknown"),
        (dict(mean=(0.5, 0.5, 0.5)), "grayscale"),
    ],
)
def test_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MotionMNISTConfig(**options)


def _frame_features(frames: torch.Tensor) -> torch.Tensor:
    """Features a linear probe can read from single frames [N,H,W] in 0..1: coarse layout,
    intensity histogram, edge energy and bright area."""
    layout = F.avg_pool2d(frames[:, None], 4).flatten(1)
    histogram = torch.stack([((frames >= a / 16) & (frames < (a + 1) / 16)).float().mean((1, 2)) for a in range(16)], 1)
    edges = (frames[:, 1:] - frames[:, :-1]).abs().mean((1, 2))[:, None]
    return torch.cat([layout, histogram, edges, (frames > 0.6).float().mean((1, 2))[:, None]], 1)


def _probe(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor) -> float:
    """Held-out accuracy of a multinomial logistic regression (full-batch L-BFGS)."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / std, (test - mean) / std
    weight = torch.zeros(train.shape[1], len(MOTION_CLASSES), requires_grad=True)
    bias = torch.zeros(len(MOTION_CLASSES), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train @ weight + bias, train_y) + 1e-3 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return ((test @ weight + bias).argmax(1) == test_y).float().mean().item()


def _ends(features: torch.Tensor) -> torch.Tensor:
    """Per clip: the first frame's features, the last one's, and their difference."""
    return torch.cat([features[:, 0], features[:, -1], features[:, -1] - features[:, 0]], 1)


@pytest.mark.slow
def test_a_single_frame_is_at_chance_while_frames_in_order_are_not() -> None:
    config = dict(num_frames=8, image_size=24)
    sets = {}
    for split, per_class in (("train", 40), ("val", 20)):
        ds = MotionMNIST(split, MotionMNISTConfig(num_items=14 * per_class, **config))
        frames = torch.from_numpy(np.stack([ds.render(i).frames for i in range(len(ds))])).float() / 255
        sets[split] = (_frame_features(frames.flatten(0, 1)).unflatten(0, frames.shape[:2]), torch.as_tensor(ds.targets))
    (train, train_y), (val, val_y) = sets["train"], sets["val"]
    frames = train.shape[1]
    # Every frame of every clip, labelled with its clip's class: chance is 1/14 = 0.071.
    single = _probe(train.flatten(0, 1), train_y.repeat_interleave(frames), val.flatten(0, 1),
                    val_y.repeat_interleave(frames))
    assert single < CHANCE + 0.04, f"a single frame tells the class: {single:.3f} vs chance {CHANCE:.3f}"
    # The same probe on the first and the last frame, in that order, tells classes apart.
    ordered = _probe(_ends(train), train_y, _ends(val), val_y)
    assert ordered > 2 * CHANCE, f"frames in order carry no class either: {ordered:.3f}"


def test_a_batch_feeds_transformers_videomae_after_one_transpose(small: MotionMNIST) -> None:
    # The layout note of lm4vis.data.video: clips are (C, T, H, W); VideoMAEModel takes
    # pixel_values (B, T, C, H, W).
    from transformers import VideoMAEConfig, VideoMAEModel

    info = small.info
    config = VideoMAEConfig(image_size=info.image_size, patch_size=8, num_channels=info.in_chans,
                            num_frames=info.num_frames, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=64)
    batch = small.collate([small[i] for i in range(2)])
    out = VideoMAEModel(config)(pixel_values=batch["video"].transpose(1, 2)).last_hidden_state
    assert out.shape == (2, (info.num_frames // 2) * (info.image_size // 8) ** 2, 32)
    with pytest.raises(ValueError, match="channel dimension"):
        VideoMAEModel(config)(pixel_values=batch["video"])  # (B, C, T, H, W) as it is: refused


def test_the_cache_returns_the_drawn_bytes_and_lives_in_the_cache_folder(
        small: MotionMNIST, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM4VIS_CACHE", str(tmp_path / "cache"))
    cached = MotionMNIST("train", MotionMNISTConfig(**SMALL), with_masks=True, cache=True).limit(14)
    assert _same(cached[5], small[5]) and _same(cached[13], small[13])
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert files == ["frames.npy", "ids.npy", "masks.npy", "visibility.npy"]
    # A second dataset reads the files (no drawing): break the drawing to prove it.
    again = MotionMNIST("train", MotionMNISTConfig(**SMALL), with_masks=True, cache=True).limit(14)
    expected = small[9]
    monkeypatch.setattr(MotionMNIST, "render", lambda *a, **k: (_ for _ in ()).throw(AssertionError("drawn")))
    assert _same(again[9], expected)
    # Other options are another cache: nothing stale is read.
    other = MotionMNIST("train", MotionMNISTConfig(**SMALL, seed=1), cache=True).limit(14)
    with pytest.raises(AssertionError, match="drawn"):
        other[0]


def test_every_lap_class_shows_the_same_unordered_frames() -> None:
    """On motion_set='laps' a clip drawn as any class is a reordering of the same frames."""
    ds = MotionMNIST("val", MotionMNISTConfig(num_frames=8, image_size=16, distractors=0, motion_set="laps",
                                              num_items=8, source="shapes"))
    assert ds.info.num_classes == 4 and ds.info.class_names[0] == "lap-clockwise"
    for clip in (0, 5):
        drawn = [ds.render(clip, label) for label in range(4)]
        # The noise is per frame, so compare the noiseless object masks, sorted into one order.
        reference = sorted(m.tobytes() for m in drawn[0].masks)
        assert len(set(reference)) == 8  # eight distinct points of the lap
        for label, other in enumerate(drawn[1:], start=1):
            assert sorted(m.tobytes() for m in other.masks) == reference, label
            assert not np.array_equal(other.masks, drawn[0].masks), label  # ... in another order
        for label in range(4):
            reverse = ds.render(clip, reverse_class(label, "laps"))
            assert np.array_equal(reverse.frames, drawn[label].frames[::-1])


def test_laps_refuse_a_frame_count_that_three_steps_would_not_cover() -> None:
    with pytest.raises(ValueError, match="multiple of 3"):
        MotionMNISTConfig(num_frames=6, motion_set="laps")
    with pytest.raises(ValueError, match="unknown"):
        MotionMNISTConfig(motion_set="spirals")


def test_the_light_config_names_the_generators_motion_sets() -> None:
    from lm4vis.data.video.motion_mnist import MOTION_SETS
    from lm4vis.data.video_config import MOTION_SET_NAMES

    assert MOTION_SET_NAMES == tuple(MOTION_SETS)
