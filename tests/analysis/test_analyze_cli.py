"""`lm4vis analyze` end to end on two tiny runs trained by the engine on a masks folder."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lm4vis.cli import main

SIZE = 32


def write_masks_folder(root: Path, n: int = 40) -> Path:
    """Noisy 32 px images with one bright rectangle (the foreground) each; 2 classes."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for i in range(n):
        image = rng.integers(0, 90, (SIZE, SIZE), dtype=np.uint8)
        mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
        r, c = rng.integers(0, SIZE - 12, 2)
        h, w = rng.integers(6, 12, 2)
        mask[r:r + h, c:c + w] = 255
        image[mask > 0] = 220
        Image.fromarray(image).save(root / "images" / f"im{i:03d}.png")
        Image.fromarray(mask).save(root / "masks" / f"im{i:03d}.png")
        rows.append(f"im{i:03d},{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_hf):
    from lm4vis.train import load_config, train

    tmp = tmp_path_factory.mktemp("analyze")
    data = write_masks_folder(tmp / "data")
    _, llama = tiny_hf.get("llama")
    out = {}
    for variant in ("baseline", "frozen-lm"):
        cfg = load_config(None, [
            f"block.variant={variant}", f"block.source={llama}",
            "data.name=masks-folder", f"data.root={data}", "data.batch_size=8",
            f"host.img_size={SIZE}", "host.patch_size=8", "host.num_classes=2",
            "host.kwargs={embed_dim: 32, depth: 2, num_heads: 2}",
            "trainer.max_steps=2", "trainer.max_epochs=1", "trainer.progress_bar=false",
            f"out_dir={tmp / 'runs'}",
        ])
        out[variant] = Path(train(cfg)["run_dir"])
    return out


def test_analyze_against_baseline_writes_every_output(runs, tmp_path, capsys):
    out = tmp_path / "an"
    rc = main(["analyze", str(runs["frozen-lm"]), "--against", str(runs["baseline"]),
               "--num-images", "4", "--num-examples", "3", "--out", str(out)])
    assert rc == 0
    for name in ("analysis.md", "analysis.json", "grid.png", "activation_hist.png"):
        assert (out / name).stat().st_size > 0, name
    result = json.loads((out / "analysis.json").read_text())
    maps = {(r["model"], r["map"]) for r in result["rows"]}
    for stage in ("pre_proj_in", "post_lm", "post_proj_out", "post_norm"):
        assert ("frozen-lm", f"l2@{stage}") in maps and ("frozen-lm", f"freq@{stage}") in maps
    assert {("frozen-lm", "attn@host_attn"), ("frozen-lm", "attn@lm_attn.0"),
            ("baseline", "l2@last_block"), ("baseline", "attn@host_attn"),
            ("reference", "random"), ("reference", "all-foreground")} <= maps
    for r in result["rows"]:
        for protocol in ("best", "fixed"):
            est = r[protocol]
            assert 0.0 <= est["lo"] <= est["mean"] <= est["hi"] <= 1.0
            assert est["n"] == 4
    assert {(d["map"], d["against"]) for d in result["deltas"]} >= {("l2@post_lm", "l2@last_block")}
    assert result["meta"]["grid_map"] == "l2@post_lm" and result["meta"]["num_calib"] > 0
    printed = capsys.readouterr().out
    assert "| frozen-lm | l2@post_lm |" in printed and f"wrote {out}" in printed


def test_analyze_a_baseline_run_alone(runs, tmp_path):
    out = tmp_path / "an"
    assert main(["analyze", str(runs["baseline"]), "--num-images", "3", "--maps", "l2",
                 "--out", str(out)]) == 0
    result = json.loads((out / "analysis.json").read_text())
    assert result["meta"]["grid_map"] == "l2@last_block"
    assert {r["map"] for r in result["rows"] if r["model"] == "baseline"} == {
        "l2@last_block", "l2@post_norm"}


@pytest.mark.parametrize("extra,message", [
    (["--split", "val", "--calib-split", "val"], "chosen on the images it is scored on"),
    (["--show", "l2@nowhere"], "--show l2@nowhere is not a map"),
    (["--num-images", "0"], "--num-images=0 must be positive"),
    (["--checkpoint", "nope.ckpt"], "checkpoints in this run: "),
])
def test_analyze_errors_name_the_fix(runs, tmp_path, capsys, extra, message):
    rc = main(["analyze", str(runs["frozen-lm"]), "--num-images", "2", "--out", str(tmp_path), *extra])
    assert rc == 1
    assert message in capsys.readouterr().err


def test_analyze_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 1
    assert "not a run folder" in capsys.readouterr().err
