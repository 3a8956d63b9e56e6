"""SSv2 on a small release written in the download's layout, with real .webm files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader
from video_files import LABELS, TEST, TRAIN, VAL, frame_of, truncate, write_release, write_video

from lm4vis.data.base import DatasetNotFoundError
from lm4vis.data.skips import BadInputError
from lm4vis.data.video import build_ssv2, build_video_dataset, class_of_template
from lm4vis.data.video.transforms import IMAGENET_MEAN, IMAGENET_STD

SMALL = dict(num_frames=8, image_size=32)  # small clips keep the tests fast
SPLITS = {"train": TRAIN, "val": VAL, "test": TEST}


def _levels(video: torch.Tensor) -> list[int]:
    """Source frame of every frame of a (C,T,H,W) clip of flat frames, read from its pixels."""
    gray = video[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]  # undo the normalisation of channel 0
    return [frame_of(255 * float(frame.mean())) for frame in gray]


@pytest.mark.parametrize(
    "template, expected",
    [
        ("Putting [something] on a surface", "Putting something on a surface"),
        ("[Something] falling like a rock", "Something falling like a rock"),
        ("Putting [something] next to [something]", "Putting something next to something"),
        ("Tipping [something] over, so it falls", "Tipping something over, so it falls"),
        ("Putting  [something]  on a surface ", "Putting something on a surface"),
    ],
)
def test_class_of_template(template: str, expected: str) -> None:
    assert class_of_template(template) == expected


@pytest.mark.parametrize("split", list(SPLITS))
def test_release_splits(release_source: Path, split: str) -> None:
    ds = build_ssv2(split, str(release_source), **SMALL)
    expected = SPLITS[split]
    assert [Path(f).stem for f in ds.files] == list(expected)
    assert ds.targets.tolist() == [c for c, _ in expected.values()]
    assert ds.info.class_names == tuple(LABELS) and ds.info.num_classes == 5
    assert ds.clip.train == (split == "train") and ds.clip.flip is False
    # test: VideoMAE's 2 clips x 3 crops; train and val: one view
    assert ds.info.clip_shape == ((6,) if split == "test" else ()) + (3, 8, 32, 32)
    item = ds[0]
    assert item["video"].shape == ds.info.clip_shape and item["video"].dtype == torch.float32
    assert item["label"].item() == ds.targets[0] and item["label"].dtype == torch.int64
    assert item["num_source_frames"].item() == next(iter(expected.values()))[1]
    assert not item["padded"]


def test_the_older_20bn_file_names(tmp_path: Path) -> None:
    root = write_release(tmp_path, names="20bn")
    assert (root / "something-something-v2-train.json").is_file() and not (root / "labels").exists()
    ds = build_ssv2("val", str(root), **SMALL)
    assert [Path(f).stem for f in ds.files] == list(VAL) and ds.targets.tolist() == [1, 4]


def test_clip_frames_are_the_sampled_source_frames(release: Path) -> None:
    val = build_ssv2("val", str(release), **SMALL)
    item = val[0]  # 24 frames, 8 segments of 3: centres 1, 4, ..., 22
    assert item["frame_indices"].tolist() == list(range(1, 24, 3))
    assert _levels(item["video"]) == item["frame_indices"].tolist()
    train = build_ssv2("train", str(release), **SMALL)
    for _ in range(3):
        item = train[0]
        picked = item["frame_indices"].tolist()
        assert [p // 3 for p in picked] == list(range(8))  # one frame from each segment
        assert _levels(item["video"]) == picked


def test_test_views_are_clips_times_crops(release: Path) -> None:
    ds = build_ssv2("val", str(release), num_clips=2, num_crops=3, **SMALL)
    item = ds[0]
    assert ds.info.num_views == 6 and ds.info.clip_shape == (6, 3, 8, 32, 32)
    assert item["video"].shape == (6, 3, 8, 32, 32)
    offsets_1, offsets_2 = list(range(0, 24, 3)), list(range(2, 24, 3))  # floor(0.75 + 3 s), floor(2.25 + 3 s)
    assert item["frame_indices"].tolist() == [offsets_1] * 3 + [offsets_2] * 3
    assert _levels(item["video"][4]) == offsets_2


def test_videomae_lists(release: Path) -> None:
    # VideoMAE's lists name the .mp4 files it converted, under its own folders; one entry is
    # relative to the list's folder and exists as written.
    lines = ["/data/ssv2_mp4/102.mp4 1", "20bn-something-something-v2/101.webm 0", "/elsewhere/105.mp4 4"]
    (release / "train.csv").write_text("\n".join(lines) + "\n")
    ds = build_ssv2("train", str(release), annotations="csv", **SMALL)
    assert [Path(f).name for f in ds.files] == ["102.webm", "101.webm", "105.webm"]
    assert ds.targets.tolist() == [1, 0, 4] and ds.info.class_names == tuple(LABELS)
    assert ds[2]["video"].shape == (3, 8, 32, 32)


def test_videomae_lists_alone_count_their_classes(tmp_path: Path) -> None:
    write_video(tmp_path / "videos" / "7.mp4", 10, codec="mpeg4")
    (tmp_path / "train.csv").write_text("videos/7.mp4 2\n")
    (tmp_path / "val.csv").write_text("videos/7.mp4 5\n")
    ds = build_ssv2("train", str(tmp_path), **SMALL)  # no JSON anywhere: auto falls back to the lists
    assert ds.info.num_classes == 6 and ds.info.class_names[5] == "class_5"


@pytest.mark.parametrize(
    "line, message", [("just_a_path.mp4\n", "expected '<video path> <class id>'"), ("a.mp4 x\n", "expected")]
)
def test_malformed_list_lines_are_named(release: Path, line: str, message: str) -> None:
    (release / "val.csv").write_text(line)
    with pytest.raises(ValueError, match=message):
        build_ssv2("val", str(release), annotations="csv")


def test_templates_missing_from_labels_json_fail_before_any_decoding(release: Path) -> None:
    path = release / "labels" / "train.json"
    entries = json.loads(path.read_text())
    entries[1]["template"] = "Pushing [something] from right to the left"
    entries[4]["template"] = "Poking [something]"
    path.write_text(json.dumps(entries))
    with pytest.raises(BadInputError) as caught:
        build_ssv2("train", str(release))
    message = str(caught.value)
    assert "2 of 6 videos" in message
    assert "'Pushing something from right to the left' (id 102)" in message and "'Poking something' (id 105)" in message


def test_test_answers_are_checked_too(release: Path) -> None:
    (release / "labels" / "test-answers.csv").write_text("301;Juggling something\n")
    with pytest.raises(BadInputError, match="'Juggling something' \\(id 301\\)"):
        build_ssv2("test", str(release))


@pytest.mark.parametrize("policy", ["skip", "fail"])
def test_missing_videos_are_counted_or_fail(release: Path, policy: str) -> None:
    (release / "20bn-something-something-v2" / "103.webm").unlink()
    if policy == "fail":
        with pytest.raises(BadInputError, match="1 of 6 videos .* e.g. 103.webm"):
            build_ssv2("train", str(release), on_bad_file=policy)
        return
    ds = build_ssv2("train", str(release), on_bad_file=policy)
    assert len(ds) == 5 and "103" not in [Path(f).stem for f in ds.files]
    assert ds.targets.tolist() == [0, 1, 3, 4, 0]  # labels stay with their videos
    assert ds.skips.counts == {"missing-video": 1}


def test_bad_files_are_skipped_and_counted_through_worker_processes(release: Path) -> None:
    videos = release / "20bn-something-something-v2"
    truncate(write_video(videos / "102.webm", 33), 0.5)
    (videos / "104.webm").write_bytes(b"\x1aE\xdf\xa3 not really a webm" * 40)
    ds = build_ssv2("train", str(release), **SMALL)
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=ds.collate)
    batches = list(loader)
    skipped: dict[str, int] = {}
    for batch in batches:
        for reason, n in batch["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    assert skipped == {"truncated": 1, "unreadable": 1}
    labels = torch.cat([b["label"] for b in batches]).tolist()
    assert labels == [0, 2, 4, 0]  # the four good videos, in order
    assert batches[0]["video"].shape == (2, 3, 8, 32, 32)


def test_bad_files_fail_when_asked(release: Path) -> None:
    truncate(release / "20bn-something-something-v2" / "101.webm", 0.5)
    ds = build_ssv2("train", str(release), on_bad_file="fail", **SMALL)
    with pytest.raises(BadInputError, match="101.webm.*on_bad_file='skip'"):
        ds[0]


def test_short_clips_are_padded_and_counted(release: Path) -> None:
    write_video(release / "20bn-something-something-v2" / "201.webm", 5)
    ds = build_ssv2("val", str(release), **SMALL)
    item = ds[0]
    assert item["padded"] and item["num_source_frames"].item() == 5
    assert item["frame_indices"].tolist() == [0, 0, 1, 2, 2, 3, 4, 4]  # floor((s + 1/2) * 5 / 8)
    assert _levels(item["video"]) == [0, 0, 1, 2, 2, 3, 4, 4]
    batch = next(iter(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=ds.collate)))
    assert batch["padded"].tolist() == [True, False] and batch["skipped"] == {"short-clip-padded": 1}
    with pytest.raises(BadInputError, match="5 frames, fewer than num_frames=8"):
        build_ssv2("val", str(release), on_short_clip="fail", **SMALL)[0]


def test_flip_is_an_option_that_ssv2_leaves_off(release: Path) -> None:
    assert build_ssv2("train", str(release)).clip.flip is False
    assert build_ssv2("train", str(release), flip=True).clip.flip is True


def test_registry_and_limit(release: Path) -> None:
    ds = build_video_dataset("ssv2", "train", str(release), limit=2, **SMALL)
    assert len(ds) == 2 and ds.targets.tolist() == [0, 1]
    with pytest.raises(ValueError, match="needs root"):
        build_video_dataset("ssv2", "train")


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (lambda root: (root / "labels" / "labels.json").unlink(), DatasetNotFoundError, "no labels.json"),
        (lambda root: (root / "labels" / "labels.json").write_text('{"a": "0", "b": "2"}'), ValueError, "0..1"),
        (lambda root: (root / "labels" / "train.json").write_text("[{"), ValueError, "not valid JSON"),
        (lambda root: (root / "labels" / "test-answers.csv").unlink(), DatasetNotFoundError, "test-answers.csv"),
    ],
)
def test_broken_releases_name_the_problem(release: Path, damage, error: type, message: str) -> None:
    damage(release)
    split = "test" if "test" in message else "train"
    with pytest.raises(error, match=message):
        build_ssv2(split, str(release))


def test_nothing_is_written_beside_the_release(release: Path) -> None:
    before = sorted(p.relative_to(release) for p in release.rglob("*"))
    ds = build_ssv2("train", str(release), **SMALL)
    list(DataLoader(ds, batch_size=3, collate_fn=ds.collate))
    assert sorted(p.relative_to(release) for p in release.rglob("*")) == before
