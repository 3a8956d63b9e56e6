"""`lm4vis train` and `lm4vis demo --task points` on point clouds, end to end with tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lm4vis.cli import main

# A Point-BERT small enough for seconds, on a few generated shapes.
TINY = [
    "host.num_groups=8", "host.group_size=8", "host.tokenizer_dims=[8,16,16]", "host.encoder_dim=16",
    "host.embed_dim=16", "host.depth=1", "host.num_heads=2", "host.pos_hidden_dim=8", "host.head_hidden_dim=16",
    "data.num_points=32", "data.batch_size=8", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
]


def test_train_points_demo_preset_writes_a_completed_summary(tmp_path, tiny_llama, capsys):
    argv = ["train", "--config", "points-demo", *TINY, "data.limit_train=16", "data.limit_val=8",
            "trainer.max_steps=2", "trainer.limit_val_batches=1", f"block.source={tiny_llama}",
            "--out", str(tmp_path), "--run-name", "pts"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "pts" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["host_kind"] == "point-bert"
    assert summary["dataset"] == "shapes3d" and summary["steps"] == 2
    assert summary["host"].startswith("Point-BERT (depth 1, width 16, 8 groups of 8")
    assert 0.0 <= summary["final"]["val/acc"] <= 1.0 and summary["params"]["frozen"] > 0
    assert summary["skipped"] == {"pipeline": {}, "indexing": {}}
    saved = (tmp_path / "pts" / "config.yaml").read_text()
    assert "kind: point-bert" in saved and "name: shapes3d" in saved and "num_points: 32" in saved
    assert "skipped" not in capsys.readouterr().out


def _modelnet_with_a_nan_cloud(root: Path, points: int = 40) -> Path:
    """A ModelNet40 HDF5 release of 4 classes' clouds in the real layout; train cloud 3 has a NaN."""
    import h5py

    folder = root / "modelnet40_ply_hdf5_2048"
    folder.mkdir(parents=True)
    (folder / "shape_names.txt").write_text("\n".join(f"class{i}" for i in range(4)) + "\n")
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("test", 8)):
        data = rng.uniform(-1, 1, (count, points, 3)).astype(np.float32)
        if split == "train":
            data[3, 7, 2] = np.nan
        with h5py.File(folder / f"ply_data_{split}0.h5", "w") as f:
            f.create_dataset("data", data=data)
            f.create_dataset("label", data=(np.arange(count) % 4).astype(np.uint8).reshape(-1, 1))
        (folder / f"{split}_files.txt").write_text(f"data/modelnet40_ply_hdf5_2048/ply_data_{split}0.h5\n")
    return folder


def _release_preset(tmp_path: Path, root: Path) -> str:
    """points-demo's host, block, optim and trainer on the release at ``root`` (points-demo's own
    data section holds shapes3d's keys, which ModelNet40's config refuses)."""
    import yaml

    from lm4vis.train.config import load_preset_dict

    preset = load_preset_dict("points-demo")
    preset["data"] = {"name": "modelnet40-h5", "root": str(root), "batch_size": 8}
    path = tmp_path / "modelnet-tiny.yaml"
    path.write_text(yaml.safe_dump(preset))
    return str(path)


def test_a_nan_cloud_is_skipped_and_counted_in_the_run_summary(tmp_path, tiny_llama, capsys):
    root = _modelnet_with_a_nan_cloud(tmp_path / "data")
    argv = ["train", "--config", _release_preset(tmp_path, root), *TINY, "host.num_classes=4",
            f"block.source={tiny_llama}", "block.variant=baseline",
            "--out", str(tmp_path / "runs"), "--run-name", "nan"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "runs" / "nan" / "summary.json").read_text())
    assert summary["status"] == "completed"
    train = summary["skipped"]["indexing"]["train"]
    assert train["counts"] == {"nonfinite-coordinates": 1}
    assert train["examples"]["nonfinite-coordinates"] == ["ply_data_train0.h5[3]: NaN/Inf coordinates"]
    assert "val" not in summary["skipped"]["indexing"]
    assert summary["steps"] == 15 // 8  # 15 usable clouds, full batches only
    assert "skipped    train: nonfinite-coordinates=1" in capsys.readouterr().out


def test_bad_point_input_is_refused_in_one_line_before_any_folder(tmp_path, tiny_llama, capsys):
    root = _modelnet_with_a_nan_cloud(tmp_path / "data")
    base = ["train", "--config", _release_preset(tmp_path, root), *TINY, f"block.source={tiny_llama}",
            "--out", str(tmp_path / "runs")]
    cases = [
        (["host.num_classes=4", "data.nonfinite=fail"], ["ply_data_train0.h5[3]: NaN/Inf", "nonfinite='skip'"]),
        (["host.num_classes=4", "data.num_points=64"], ["clouds of 40 points, 64 asked"]),  # resampled: fine
        (["host.num_classes=4", "data.num_points=64", "data.short_cloud=fail"], ["40 points, 64 asked", "resample"]),
        ([], ["host.num_classes=14 but dataset 'modelnet40-h5' has 4 classes", "set host.num_classes=4"]),
        (["host.num_classes=4", "data.root=/nonexistent/modelnet"], ["/nonexistent/modelnet"]),
    ]
    for extra, words in cases:
        code = main([*base, *extra, "--run-name", "bad"])
        captured = capsys.readouterr()
        if extra[1:] == ["data.num_points=64"]:  # a short cloud is resampled and counted, not refused
            assert code == 0
            summary = json.loads((tmp_path / "runs" / "bad" / "summary.json").read_text())
            assert summary["skipped"]["indexing"]["train"]["counts"]["short-cloud-resampled"] == 15
            import shutil

            shutil.rmtree(tmp_path / "runs" / "bad")
            continue
        assert code == 1, extra
        assert captured.err.startswith("lm4vis train: error:"), captured.err
        for w in words:
            assert w in captured.err, (extra, captured.err)
        assert not (tmp_path / "runs" / "bad").exists()


@pytest.mark.slow
def test_demo_task_points(tmp_path, tiny_llama, capsys):
    code = main(["demo", "--task", "points", "--quick", "--seeds", "0,1", "--out", str(tmp_path), *TINY,
                 "data.limit_train=16", "data.limit_val=8", f"block.source={tiny_llama}"])
    out = " ".join(capsys.readouterr().out.split())  # the reading is wrapped at 100 columns
    assert code == 0
    for words in ("| baseline |", "| frozen-lm |", "| mlp |", "wall time", "chance: 7.1% for 14 balanced classes"):
        assert words in out
    report = tmp_path / "demo-quick-shapes3d" / "report.md"
    assert "## Reading" in report.read_text()
    results = json.loads((report.parent / "results.json").read_text())
    assert {r["variant"] for r in results["runs"]} == {"baseline", "frozen-lm", "mlp"}
    assert all(r["status"] == "completed" and r["host_kind"] == "point-bert" for r in results["runs"])


def test_demo_task_table(tmp_path):
    from lm4vis.train.demo import DEMO_TASKS, demo_config

    assert list(DEMO_TASKS)[0] == "images"  # the default stays the image demo
    cfg = demo_config(task="points", out=str(tmp_path))
    assert (cfg.host.kind, cfg.data.name, cfg.block.variant) == ("point-bert", "shapes3d", "frozen-lm")
    assert demo_config(quick=True, task="points").trainer.max_epochs == 1
    with pytest.raises(ValueError, match="--dataset fashion-mnist is not an embedded dataset of --task points"):
        demo_config(task="points", dataset="fashion-mnist")
    with pytest.raises(ValueError, match="--task 'audio' is unknown; choose one of images, points"):
        demo_config(task="audio")
