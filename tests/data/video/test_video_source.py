"""The registered video datasets through the engine: typed configs, `lm4vis train` end to end,
and bad input counted in the run summary or refused before any run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from video_files import truncate, write_video

from lm4vis.cli import main
from lm4vis.registry import DATASETS
from lm4vis.train.config import ConfigError, load_config, load_preset_dict

# A VideoMAE small enough for seconds on 4 frames of 16 px.
TINY = ["host.num_frames=4", "host.image_size=16", "host.patch_size=8", "host.tubelet_size=2",
        "host.embed_dim=16", "host.depth=1", "host.num_heads=2", "data.batch_size=4", "data.num_workers=0",
        "trainer.max_epochs=1", "trainer.log_every_n_steps=1"]


def test_registered_with_typed_configs():
    from lm4vis.data.video_config import MotionMNISTDataConfig, SSv2DataConfig, VideoFolderDataConfig

    for name, cls in (("motion-mnist", MotionMNISTDataConfig), ("ssv2", SSv2DataConfig),
                      ("video-folder", VideoFolderDataConfig)):
        assert DATASETS.get(name).config is cls
    cfg = load_config("video-demo", ["data.distractors=1", "host.num_frames=16"])
    assert type(cfg.data) is MotionMNISTDataConfig and cfg.data.distractors == 1
    assert (cfg.data.num_frames, cfg.data.image_size, cfg.data.in_chans) == (16, 24, 1)  # from the host
    with pytest.raises(ConfigError, match="on_bad_file='maybe' is unknown; choose one of skip, fail"):
        load_config("video-demo", ["data.on_bad_file=maybe"])
    with pytest.raises(ConfigError, match="data.num_frames=4 but host.num_frames=8"):
        load_config("video-demo", ["data.num_frames=4"])
    with pytest.raises(ConfigError, match="motion-mnist is grayscale"):
        load_config("video-demo", ["data.in_chans=3"])


def test_train_video_demo_preset_writes_a_completed_summary(tmp_path, tiny_llama):
    argv = ["train", "--config", "video-demo", *TINY, "data.limit_train=8", "data.limit_val=4", "data.source=shapes",
            "trainer.max_steps=2", f"block.source={tiny_llama}", "--out", str(tmp_path), "--run-name", "vid"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "vid" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["host_kind"] == "videomae"
    assert summary["dataset"] == "motion-mnist" and summary["steps"] == 2
    assert summary["host"].startswith("VideoMAE (depth 1, width 16, 2x8x8 tubelets, 2x2x2 tokens")
    assert 0.0 <= summary["final"]["val/acc"] <= 1.0 and summary["params"]["frozen"] > 0
    assert summary["skipped"] == {"pipeline": {}, "indexing": {}}
    saved = (tmp_path / "vid" / "config.yaml").read_text()
    assert "kind: videomae" in saved and "name: motion-mnist" in saved and "num_frames: 4" in saved


def _folder_preset(tmp_path: Path, root: Path, **data) -> str:
    """video-demo's host, block, optim and trainer on a video folder at ``root``."""
    preset = load_preset_dict("video-demo")
    preset["data"] = {"name": "video-folder", "root": str(root), "in_chans": 1, "batch_size": 4, **data}
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(preset))
    return str(path)


def _tree_with_bad_files(root: Path) -> Path:
    """train/ and val/ of 2 classes x 4 videos; one training video truncated, one only 2 frames long."""
    for split in ("train", "val"):
        for cls in ("push", "pull"):
            for i in range(4):
                write_video(root / split / cls / f"{i}.webm", 30, width=24, height=16)
    truncate(root / "train" / "push" / "1.webm", 0.5)
    write_video(root / "train" / "pull" / "2.webm", 2, width=24, height=16)
    return root


def test_a_truncated_file_and_a_short_clip_are_counted_in_the_run_summary(tmp_path, tiny_llama):
    root = _tree_with_bad_files(tmp_path / "data")
    argv = ["train", "--config", _folder_preset(tmp_path, root), *TINY, "host.num_classes=2", "host.in_chans=1",
            f"block.source={tiny_llama}", "block.variant=baseline", "--out", str(tmp_path / "runs"), "--run-name", "bad"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "runs" / "bad" / "summary.json").read_text())
    assert summary["status"] == "completed"
    # counted where it happened, in the loader, by split: each bad video once
    assert summary["skipped"]["pipeline"] == {"train": {"truncated": 1, "short-clip-padded": 1}}
    assert summary["steps"] == 2


def test_bad_video_input_is_refused_before_any_folder(tmp_path, tiny_llama, capsys):
    root = _tree_with_bad_files(tmp_path / "data")
    base = [*TINY, "host.num_classes=2", "host.in_chans=1", f"block.source={tiny_llama}",
            "block.variant=baseline", "--out", str(tmp_path / "runs"), "--run-name", "bad"]
    code = main(["train", "--config", _folder_preset(tmp_path, root), *base, "host.num_classes=3"])
    assert code == 1 and "host.num_classes=3 but dataset 'video-folder' has num_classes=2" in capsys.readouterr().err
    code = main(["train", "--config", _folder_preset(tmp_path, tmp_path / "nowhere"), *base])
    assert code == 1 and "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "bad").exists()
    # on_bad_file: fail stops the run at the truncated file, naming it and the fix
    code = main(["train", "--config", _folder_preset(tmp_path, root, on_bad_file="fail"), *base])
    err = capsys.readouterr().err
    assert code == 1 and "1.webm" in err and "on_bad_file='skip'" in err


def test_ssv2_labels_not_in_labels_json_fail_before_training(release: Path, tmp_path, tiny_llama, capsys):
    train = json.loads((release / "labels" / "train.json").read_text())
    train[0]["template"] = "Spinning [something] that quickly stops spinning"
    (release / "labels" / "train.json").write_text(json.dumps(train))
    preset = load_preset_dict("video-demo")
    preset["data"] = {"name": "ssv2", "root": str(release), "in_chans": 1, "batch_size": 2}
    path = tmp_path / "ssv2.yaml"
    path.write_text(yaml.safe_dump(preset))
    code = main(["train", "--config", str(path), *TINY, "host.num_classes=5", "host.in_chans=1",
                 f"block.source={tiny_llama}", "--out", str(tmp_path / "runs"), "--run-name", "s"])
    err = capsys.readouterr().err
    assert code == 1 and "'Spinning something that quickly stops spinning' (id 101)" in err
    assert "take both files from the same release" in err and not (tmp_path / "runs" / "s").exists()


def test_demo_task_table(tmp_path):
    from lm4vis.train.demo import DEMO_TASKS, demo_config

    assert list(DEMO_TASKS)[0] == "images"  # the default stays the image demo
    cfg = demo_config(task="video", out=str(tmp_path))
    assert (cfg.host.kind, cfg.data.name, cfg.block.variant) == ("videomae", "motion-mnist", "frozen-lm")
    assert demo_config(quick=True, task="video").trainer.max_epochs == 1
    with pytest.raises(ValueError, match="--dataset fashion-mnist is not an embedded dataset of --task video"):
        demo_config(task="video", dataset="fashion-mnist")


@pytest.mark.slow
def test_demo_task_video(tmp_path, tiny_llama, capsys):
    code = main(["demo", "--task", "video", "--quick", "--seeds", "0,1", "--out", str(tmp_path), *TINY,
                 "data.limit_train=8", "data.limit_val=4", "data.source=shapes", f"block.source={tiny_llama}"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    for words in ("| baseline |", "| frozen-lm |", "| mlp |", "wall time", "chance: 7.1% for 14 balanced classes"):
        assert words in out
    results = json.loads((tmp_path / "demo-quick-motion-mnist" / "results.json").read_text())
    assert {r["variant"] for r in results["runs"]} == {"baseline", "frozen-lm", "mlp"}
    assert all(r["status"] == "completed" and r["host_kind"] == "videomae" for r in results["runs"])
