"""The cluttered-scene generator: reproducible, exact masks, and not solvable by a threshold."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lm4vis.data import ClutteredDataset, best_threshold_iou, build_dataset, make_cluttered
from lm4vis.data.mnist import fashion_mnist_root, find_idx_file


class _Objects(torch.utils.data.Dataset):
    """Users' own objects: discs and squares of random size, label 0 = disc, 1 = square."""

    def __init__(self, n: int = 12) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        yy, xx = np.mgrid[0:28, 0:28]
        r = 6 + i % 7
        if i % 2 == 0:
            shape = (yy - 13.5) ** 2 + (xx - 13.5) ** 2 <= r**2
        else:
            shape = (abs(yy - 13.5) <= r) & (abs(xx - 13.5) <= r)
        image = np.where(shape, 150 + 8 * (i % 10), 0).astype(np.uint8)
        return torch.from_numpy(image)[None], i % 2


def _disc(radius: float = 10.0) -> np.ndarray:
    yy, xx = np.mgrid[0:28, 0:28]
    return np.where((yy - 13.5) ** 2 + (xx - 13.5) ** 2 <= radius**2, 220, 0).astype(np.uint8)


HAVE_ANIMAL = importlib.util.find_spec("animal_mnist") is not None
HAVE_FASHION = find_idx_file(fashion_mnist_root(), "test", "images") is not None
SOURCES = [
    pytest.param(lambda **kw: ClutteredDataset(_Objects(), **kw), id="custom"),
    pytest.param(
        lambda **kw: build_dataset("cluttered-animal-mnist", split="val", limit=60, **kw),
        id="animal",
        marks=pytest.mark.skipif(not HAVE_ANIMAL, reason="pip install --no-deps animal-mnist"),
    ),
]


@pytest.mark.parametrize("make", SOURCES)
def test_same_seed_same_bytes_in_any_order(make) -> None:
    a, b = make(seed=3, with_masks=True), make(seed=3, with_masks=True)
    forward = [a[i] for i in range(6)]
    backward = [b[i] for i in reversed(range(6))][::-1]
    for (ia, la, ma), (ib, lb, mb) in zip(forward, backward):
        assert torch.equal(ia, ib) and torch.equal(ma, mb) and la == lb


@pytest.mark.parametrize("make", SOURCES)
def test_different_seed_different_scene(make) -> None:
    a, b = make(seed=0, with_masks=True), make(seed=1, with_masks=True)
    assert all(not torch.equal(a[i][0], b[i][0]) for i in range(4))
    assert any(not torch.equal(a[i][2], b[i][2]) for i in range(4))
    assert [a[i][1] for i in range(4)] == [b[i][1] for i in range(4)]  # same object, same label


def _gradient_object() -> np.ndarray:
    """An asymmetric object (a disc with a notch) whose intensity ramps from left to right."""
    yy, xx = np.mgrid[0:28, 0:28]
    shape = ((yy - 13.5) ** 2 + (xx - 13.5) ** 2 <= 11**2) & ~((yy < 8) & (xx > 18))
    return np.where(shape, 60 + 6 * xx, 0).astype(np.uint8)


@pytest.mark.parametrize("canvas", [32, 64, 96])
def test_mask_is_the_whole_unoccluded_object(canvas: int) -> None:
    obj = _gradient_object()
    others = [_disc(r) for r in (5, 8, 12)] + [obj]
    expected = obj > 0
    for k in range(10):
        image, mask = make_cluttered(obj, np.random.default_rng(k), canvas, others, scale_range=(1.0, 1.0))
        assert image.shape == (1, canvas, canvas) and image.dtype == torch.uint8
        assert mask.shape == (canvas, canvas) and mask.dtype == torch.bool
        ys, xs = torch.nonzero(mask, as_tuple=True)
        crop = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].numpy()
        # at scale 1 the mask is exactly the object's own foreground, nowhere cut by the canvas
        np.testing.assert_array_equal(crop, expected[expected.any(1)][:, expected.any(0)])
        # the masked pixels show the object's own (contrast-stretched) ramp plus pixel noise of
        # at most 0.05*255: a fragment on top of the object would leave a larger residual
        shown = image[0, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].float().numpy()[crop]
        source = obj[expected.any(1)][:, expected.any(0)][crop].astype(float)
        source = np.minimum(source / np.percentile(source, 90), 1.0)
        slope, offset = np.polyfit(source, shown, 1)
        assert slope > 20
        assert np.std(shown - (slope * source + offset)) < 16


@pytest.mark.parametrize("canvas", [40, 64])
def test_scaled_object_stays_inside(canvas: int) -> None:
    for k in range(10):
        _, mask = make_cluttered(_disc(), np.random.default_rng(k), canvas, [_disc(5)])
        ys, xs = torch.nonzero(mask, as_tuple=True)
        height, width = int(ys.max() - ys.min()) + 1, int(xs.max() - xs.min()) + 1
        assert abs(height - width) <= 1  # a disc cut by one edge would not have a square box
        assert 0.6 * 20 <= height <= 1.6 * 20 + 2  # the disc's 20 px diameter, scaled


def test_object_brighter_than_background_but_not_separable() -> None:
    ds = ClutteredDataset(_Objects(50), with_masks=True, seed=0)
    ious, gaps = [], []
    for i in range(len(ds)):
        image, _, mask = ds[i]
        assert mask.any()
        pixels = image[0].float()
        gaps.append((pixels[mask].mean() - pixels[~mask].mean()).item())
        ious.append(best_threshold_iou(image, mask))
    assert min(gaps) > 10  # the object stands out on average...
    assert np.mean(ious) < 0.9  # ...but a global threshold does not segment it


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "cluttered-fashion-mnist",
            marks=pytest.mark.skipif(not HAVE_FASHION, reason="apt-get install dataset-fashion-mnist"),
        ),
        pytest.param(
            "cluttered-animal-mnist",
            marks=pytest.mark.skipif(not HAVE_ANIMAL, reason="pip install --no-deps animal-mnist"),
        ),
    ],
)
def test_best_threshold_iou_on_real_objects(name: str) -> None:
    ds = build_dataset(name, split="test", with_masks=True, limit=50)
    ious, gaps = [], []
    for image, _, mask in (ds[i] for i in range(len(ds))):
        ious.append(best_threshold_iou(image, mask))
        pixels = image[0].float()
        gaps.append((pixels[mask].mean() - pixels[~mask].mean()).item())
    mean = float(np.mean(ious))
    print(f"{name}: best global threshold IoU {mean:.3f} over 50 images")
    assert np.mean(gaps) > 20 and min(gaps) > 0
    assert 0.1 < mean < 0.9


@pytest.mark.parametrize(
    "image, mask, expected",
    [
        (np.array([[0, 0], [200, 200]]), np.array([[0, 0], [1, 1]]), 1.0),
        (np.array([[255, 0], [0, 0]]), np.array([[0, 1], [1, 1]]), 1.0),  # dark object
        (np.array([[9, 9], [9, 9]]), np.array([[0, 0], [0, 1]]), 0.25),
    ],
)
def test_best_threshold_iou(image, mask, expected: float) -> None:
    assert best_threshold_iou(image.astype(np.uint8), mask.astype(bool)) == pytest.approx(expected)


def test_image_size_resizes_image_and_mask_and_batches() -> None:
    ds = ClutteredDataset(_Objects(), canvas_size=48, image_size=32, with_masks=True)
    assert ds.info.image_size == 32 and ds.info.has_masks and ds.info.num_classes == 2
    images, labels, masks = next(iter(DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 1, 32, 32) and masks.shape == (4, 32, 32) and masks.dtype == torch.bool
    assert labels.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(distractors=-1), ValueError),
        (dict(scale_rnage=(1, 2)), TypeError),
    ],
)
def test_bad_options(kwargs, error) -> None:
    with pytest.raises(error):
        ClutteredDataset(_Objects(), **kwargs)


def test_rgb_objects_are_refused() -> None:
    with pytest.raises(ValueError, match="grayscale"):
        make_cluttered(np.zeros((3, 28, 28), np.uint8), np.random.default_rng(0))
