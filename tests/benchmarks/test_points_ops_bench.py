"""benchmarks/points_ops.py: answers --help, and at toy sizes times every (op, N, G) it is given."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import points_ops  # noqa: E402


def test_points_ops_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        points_ops.main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_points_ops_smoke(tmp_path, monkeypatch):
    # Inter-op threads can be set once per process; the test process is not the script's.
    monkeypatch.setattr(points_ops, "setup_threads", lambda threads: None)
    assert points_ops.main(["--batch", "2", "--num-points", "40", "64", "--num-samples", "8", "50",
                            "--k", "5", "--rounds", "2", "--warmup", "0", "--threads", "1",
                            "--results-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "points_ops.json").read_text())["results"]
    # G=50 > N=40 is left out; every other (op, N, G) is timed for both candidates.
    assert set(results) == {f"{op}/N={n}/G={g}" for op in ("fps", "knn") for n, g in
                            ((40, 8), (64, 8), (64, 50))}
    for r in results.values():
        assert all(len(r["times_s"][c]["wall"]) == 2 for c in ("lm4vis", "reference"))
    assert "| fps | 2 | 64 | 50 |" in (tmp_path / "points_ops.md").read_text()
