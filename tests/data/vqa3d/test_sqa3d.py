"""The SQA3D loader on small files written here in the release's exact layout: the balanced task
JSONs under sqa_task/balanced/, ScanNet scans/<id>/<id>_vh_clean_2.ply through plyfile, or
ScanQA's <id>_vert.npy; and its bad-input policies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from lm4vis.data.vqa3d.source import SceneQASource
from lm4vis.train.config import ConfigError, load_config

BUDGET = 64


def write_ply(path: Path, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(0, 4, (n, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    vertex = np.empty(n, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                ("blue", "u1"), ("alpha", "u1")])
    for i, c in enumerate("xyz"):
        vertex[c] = xyz[:, i]
    for i, c in enumerate(("red", "green", "blue")):
        vertex[c] = rgb[:, i]
    vertex["alpha"] = 255
    faces = np.empty(1, dtype=[("vertex_indices", "i4", (3,))])
    faces["vertex_indices"] = [(0, 1, 2)]
    path.parent.mkdir(parents=True, exist_ok=True)
    PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(faces, "face")], byte_order="<").write(str(path))
    return np.concatenate([xyz, rgb / 255.0], axis=1)


def question(qid: int, scene: str, text: str) -> dict:
    return {"scene_id": scene, "situation": f"i am sitting on the bed in {scene} facing the window .",
            "alternative_situation": ["i sit on the bed ."], "question": text, "question_id": qid}


def annotation(qid: int, scene: str, answer: str) -> dict:
    return {"question_id": qid, "scene_id": scene, "answer_type": "other", "question_type": "N/A",
            "answers": [{"answer": answer, "answer_confidence": "yes", "answer_id": 1}],
            "position": {"x": 1.0, "y": 2.0, "z": 0.0}, "rotation": {"_w": 0.5, "_x": 0.0, "_y": 0.0, "_z": 0.866}}


SPLITS = {
    "train": [(1, "scene0000_00", "What is on my left?", "Table"), (2, "scene0000_00", "Is the door open?", "yes"),
              (3, "scene0001_00", "How many chairs are behind me?", "two"), (4, "scene0001_00", "Which way is the sink?", "left")],
    "val": [(11, "scene0002_00", "What is in front of me?", "the table"), (12, "scene0002_00", "Can I see a lamp?", "no"),
            (13, "scene0002_00", "What colour is the sofa?", "purple")],
}


def write_release(root: Path, splits=SPLITS, drop_annotation: int | None = None) -> Path:
    task = root / "sqa_task" / "balanced"
    task.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        qs = [question(q, s, t) for q, s, t, _ in rows]
        anns = [annotation(q, s, a) for q, s, _, a in rows if q != drop_annotation]
        (task / f"v1_balanced_questions_{split}_scannetv2.json").write_text(json.dumps({"questions": qs}))
        (task / f"v1_balanced_sqa_annotations_{split}_scannetv2.json").write_text(json.dumps({"annotations": anns}))
    return root


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LM4VIS_CACHE", str(tmp_path / "cache"))
    root = write_release(tmp_path / "sqa3d")
    scans = tmp_path / "scannet"
    write_ply(scans / "scans" / "scene0000_00" / "scene0000_00_vh_clean_2.ply", 200, seed=0)
    write_ply(scans / "scans" / "scene0001_00" / "scene0001_00_vh_clean_2.ply", 40, seed=1)  # short: resampled
    cloud = np.random.default_rng(2).uniform(0, 255, (300, 9)).astype(np.float32)  # xyz rgb normals, 0..255
    np.save(scans / "scene0002_00_vert.npy", cloud)
    return root


def source(root: Path, *overrides: str) -> SceneQASource:
    cfg = load_config(None, ["host.kind=scene-vqa", "task.name=scene-qa", "data.name=sqa3d", f"data.root={root}", f"data.scenes={root.parent / 'scannet'}",
                                     f"data.num_points={BUDGET}", "host.num_groups=8", "host.group_size=8",
                                     *overrides])
    return SceneQASource(cfg)


def test_reads_the_release_layout(release: Path, tmp_path: Path):
    src = source(release)
    train, val = src.dataset("train", True), src.dataset("val", False)
    assert len(train) == 4 and len(val) == 3
    info = src.info
    # Answers normalised (articles, number words, case) and ranked by frequency, ties by text.
    assert set(info.answers) == {"table", "yes", "2", "left"}
    assert info.question_types == ("what", "is", "how", "can", "which", "others")
    item = train[0]
    assert item["points"].shape == (BUDGET, 6)
    assert info.answers[int(item["answer"])] == "table"
    assert train.records[0].position == (1.0, 2.0, 0.0) and train.records[0].orientation == (0.5, 0.0, 0.0, 0.866)
    assert [train.records[i].question_type for i in range(4)] == ["what", "is", "how", "which"]
    # Colours from the .ply's uchar red/green/blue, scaled to 0..1, xyz as stored.
    ply_points = PlyData.read(str(tmp_path / "scannet/scans/scene0000_00/scene0000_00_vh_clean_2.ply"))["vertex"]
    xs = set(np.asarray(ply_points["x"]).tolist())
    assert set(item["points"][:, 0].tolist()) <= xs and float(item["points"][:, 3:].max()) <= 1.0
    # The short scan (40 < 64 points) was resampled with replacement, and counted.
    assert train.skips.counts["short-scene-resampled"] == 1
    # The _vert.npy scene (colours 0..255) reads too.
    assert val[0]["points"].shape == (BUDGET, 6) and float(val[0]["points"][:, 3:].max()) <= 1.0
    # "the table" is "table" after normalisation; "no" and "purple" are not training answers:
    # counted, kept, and their answer_mask is empty (EM@1 scores them wrong).
    assert val.skips.counts["answer-not-in-vocabulary"] == 2
    assert int(val[0]["answer"]) == info.answers.index("table")
    assert int(val[1]["answer"]) == -1 and not val[1]["answer_mask"].any()


def test_alternative_situations_are_extra_training_samples(release: Path):
    plain = source(release).dataset("train", True)
    src = source(release, "data.alternative_situations=true")
    train, val = src.dataset("train", True), src.dataset("val", False)
    # Each training question once more with its one rewording; validation unchanged.
    assert len(plain) == 4 and len(train) == 8 and len(val) == 3
    own, alt = train.records[0], train.records[1]
    assert own == plain.records[0] and alt.situation == "i sit on the bed ." and alt.question_id == "1-alt0"
    assert (alt.question, alt.answers, alt.position, alt.orientation) == (own.question, own.answers, own.position,
                                                                           own.orientation)
    assert all(r.situation != "i sit on the bed ." for r in val.records)
    # The rewording's words join the tokeniser's vocabulary (trained on the training split).
    assert src.tokenizer.vocab_size > source(release).tokenizer.vocab_size


def test_samples_are_cached_away_from_the_data(release: Path, tmp_path: Path):
    src = source(release)
    first = src.dataset("train", True)[0]["points"]
    src.resolve()  # reads the val split too
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert cached == ["scene0000_00.npy", "scene0001_00.npy", "scene0002_00.npy"]
    assert not list((tmp_path / "scannet").rglob("*.json")) and len(list((tmp_path / "scannet").rglob("*.npy"))) == 1
    again = source(release).dataset("train", True)[0]["points"]
    assert np.array_equal(first.numpy(), again.numpy())
    # A replaced scan is sampled again (its size and time are part of the cache entry).
    write_ply(tmp_path / "scannet/scans/scene0000_00/scene0000_00_vh_clean_2.ply", 300, seed=5)
    assert not np.array_equal(first.numpy(), source(release).dataset("train", True)[0]["points"].numpy())


def test_missing_scene_fails_or_is_counted(release: Path, tmp_path: Path):
    (tmp_path / "scannet/scans/scene0001_00/scene0001_00_vh_clean_2.ply").unlink()
    with pytest.raises(ConfigError, match=r"scene0001_00 \(2 questions\).*data.missing_scene=skip"):
        source(release).dataset("train", True)
    train = source(release, "data.missing_scene=skip").dataset("train", True)
    assert len(train) == 2
    assert train.skips.counts["missing-scene"] == 1 and train.skips.counts["questions-without-scene"] == 2


def test_corrupt_ply_is_counted_or_fails(release: Path, tmp_path: Path):
    bad = tmp_path / "scannet/scans/scene0000_00/scene0000_00_vh_clean_2.ply"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    train = source(release).dataset("train", True)
    assert len(train) == 2 and train.skips.counts["unreadable-scene"] == 1
    with pytest.raises(ConfigError, match=r"scene0000_00_vh_clean_2.ply.*data.unreadable=skip"):
        source(release, "data.unreadable=fail").dataset("train", True)


def test_short_scene_fails_under_fail(release: Path):
    with pytest.raises(ConfigError, match=r"40 points, fewer than data.num_points=64.*short_scene=resample"):
        source(release, "data.short_scene=fail").dataset("train", True)


def test_question_annotation_mismatch_names_the_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LM4VIS_CACHE", str(tmp_path / "cache"))
    root = write_release(tmp_path / "sqa3d", drop_annotation=3)
    with pytest.raises(ConfigError, match=r"1 question_id\(s\) have no annotation, first \[3\]"):
        source(root).dataset("train", True)


def test_missing_task_file_names_the_places_looked(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"v1_balanced_questions_train_scannetv2.json is in none of"):
        source(tmp_path).dataset("train", True)
