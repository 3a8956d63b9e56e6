"""Motion forecasting through the engine: `lm4vis train` on the motion preset, bad scenes counted
in the run summary, and verdicts that go the lower-is-better way."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lm4vis.cli import main
from lm4vis.data.cache import CACHE_ENV
from lm4vis.train.report import summarize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "motion"))
from motion_files import argoverse_scene, write_argoverse_csv  # noqa: E402

#: The motion preset at a size that trains in seconds.
TINY = ["--config", "motion-demo", "host.embed_dim=32", "host.subgraph_depth=2", "host.num_heads=2",
        "data.num_train=32", "data.num_val=16", "data.batch_size=8", "trainer.max_epochs=2"]
METRICS = ["minADE@1", "minFDE@1", "MR@1", "minADE@6", "minFDE@6", "MR@6", "brier-minFDE@6", "loss"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.mark.slow
def test_train_the_motion_preset_end_to_end(tmp_path, tiny_llama):
    assert main(["train", *TINY, f"block.source={tiny_llama}", "--out", str(tmp_path), "--run-name", "m"]) == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["host_kind"] == "vectornet"
    assert summary["dataset"] == "sim-traffic" and summary["host"].startswith("VectorNet (width 32")
    assert summary["data_notes"] == []  # the simulator's scenes have lanes
    assert all(f"val/{name}" in summary["final"] for name in METRICS)
    monitor = summary["task"]["monitor"]
    assert (monitor["key"], monitor["higher_is_better"]) == ("val/minFDE@6", False)
    assert summary["best"]["val/minFDE@6"] == min(h["val/minFDE@6"] for h in summary["history"] if "val/minFDE@6" in h)
    assert summary["params"]["frozen"] > 0 and summary["params"]["block"] is not None
    assert summary["steps"] == 2 * 32 // 8
    final = summary["final"]
    assert final["val/minFDE@6"] <= final["val/minFDE@1"] + 1e-9  # more modes never score worse
    saved = (tmp_path / "m" / "config.yaml").read_text()
    assert "kind: vectornet" in saved and "name: forecasting" in saved and "name: sim-traffic" in saved


def _argoverse_release(root: Path) -> Path:
    """Train: 6 good scenes, one with a NaN coordinate, one without an AGENT, and every scene
    with 6 tracks for max_agents=4. Val: 2 good scenes."""
    scene = argoverse_scene(others=4)
    for i in range(1, 7):
        write_argoverse_csv(root / f"train/data/{i}.csv", scene)
    nan = write_argoverse_csv(root / "train/data/7.csv", scene)
    lines = nan.read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[3], "NaN", 1)
    nan.write_text("\n".join(lines) + "\n")
    no_agent = write_argoverse_csv(root / "train/data/8.csv", scene)
    no_agent.write_text(no_agent.read_text().replace(",AGENT,", ",OTHERS,"))
    (root / "train/data/._9.csv").write_text("macOS resource fork")
    for i in (10, 11):
        write_argoverse_csv(root / f"val/data/{i}.csv", scene)
    return root


@pytest.mark.slow
def test_bad_scenes_are_counted_in_the_run_summary(tmp_path, tiny_llama, capsys):
    root = _argoverse_release(tmp_path / "argoverse")
    preset = tmp_path / "argoverse-tiny.yaml"  # the motion preset's data section is the simulator's
    preset.write_text(
        "host: {kind: vectornet, embed_dim: 32, subgraph_depth: 2, num_heads: 2}\n"
        "block: {variant: baseline}\n"
        f"data: {{name: argoverse1, root: '{root}', max_agents: 4, batch_size: 2}}\n"
        "task: {name: forecasting}\n"
        "trainer: {max_epochs: 2, accelerator: cpu, devices: 1, progress_bar: false}\n")
    argv = ["train", "--config", str(preset), "--out", str(tmp_path), "--run-name", "av"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "av" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    pipeline, indexing = summary["skipped"]["pipeline"], summary["skipped"]["indexing"]
    # Two epochs, a sanity check and two validations read every scene more than once; each bad
    # scene is counted once: one NaN scene and one without an AGENT in the training split, and
    # every usable scene (6 training, 2 validation), which had 6 tracks of which 4 were kept.
    assert pipeline == {"train": {"agents-beyond-max_agents": 6, "nan-coordinates": 1, "no-agent": 1},
                        "val": {"agents-beyond-max_agents": 2}}
    assert indexing["train"]["counts"] == {"not-a-sequence-file": 1}
    assert summary["data_notes"] == ["no map: scenes are agents only (set data.map_root to the map_files "
                                     "folder of hd_maps.tar.gz for lane polylines)"]
    printed = capsys.readouterr().out
    assert "data       no map: scenes are agents only" in printed
    assert "while reading train: agents-beyond-max_agents=6, nan-coordinates=1, no-agent=1" in printed
    assert all(f"val/{name}" in summary["final"] for name in METRICS)


def _run(variant: str, seed: int, min_fde: float, mr: float) -> dict:
    monitor = {"name": "minFDE@6", "label": "minFDE@6", "higher_is_better": False, "unit": "m", "scale": 1.0,
               "digits": 3, "key": "val/minFDE@6", "mode": "min"}
    miss = {"name": "MR@6", "label": "MR@6", "higher_is_better": False, "unit": "%", "scale": 100.0, "digits": 1,
            "key": "val/MR@6", "mode": "min"}
    return {"variant": variant, "seed": seed, "status": "completed", "params": {},
            "task": {"monitor": monitor, "metrics": [monitor, miss]},
            "final": {"val/minFDE@6": min_fde, "val/MR@6": mr}, "time_per_step_s": 0.1}


@pytest.mark.parametrize("delta, expected", [(-0.30, "better"), (+0.30, "worse")])
def test_compare_verdicts_go_the_lower_is_better_way(delta, expected):
    noise = [0.02, -0.01, 0.0]
    runs = [r for s in range(3) for r in (_run("baseline", s, 2.0 + s * 0.1, 0.5),
                                           _run("frozen-lm", s, 2.0 + s * 0.1 + delta + noise[s], 0.5 + delta / 3))]
    out = summarize(runs, ["baseline", "frozen-lm"])
    assert out["paired_differences"][0]["verdict"] == expected
    (miss,) = out["other_metrics"]
    assert miss["metric"]["key"] == "val/MR@6" and miss["paired_differences"][0]["verdict"] == expected
