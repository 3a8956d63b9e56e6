"""The wheel: every package under src/ is listed in pyproject.toml, and the presets ship with
it, so an installed (not editable) lm4vis finds them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_listed_packages_match_the_source_tree():
    on_disk = {
        ".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")
    }
    listed = set(_setuptools()["packages"])
    assert listed - {"lm4vis.presets"} == on_disk, (
        "pyproject.toml [tool.setuptools] packages must list every package under src/"
    )


@pytest.mark.slow
def test_wheel_ships_the_presets_and_finds_them(tmp_path):
    # Build from a copy of what the build reads, so no stale build/ folder can stand in.
    tree = tmp_path / "tree"
    for name in ("pyproject.toml", "README.md", "src", "configs"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy(src, tree / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(tree)],
        capture_output=True, text=True, check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("lm4vis-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml"))
    assert presets
    missing = [p for p in presets if f"lm4vis/presets/{p}" not in names]
    assert not missing, f"presets missing from the wheel: {missing}"

    # Installed from the wheel alone (unpacked into a folder on sys.path), with no repository
    # around it, `configs_dir` and `load_config` find the shipped presets.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from lm4vis.train.config import configs_dir, load_config;"
        "print(configs_dir()); print(load_config('demo').block.source)"
    )
    run = subprocess.run([sys.executable, "-I", "-c", probe, str(site)], capture_output=True,
                         text=True, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stderr
    folder, source = run.stdout.split()
    assert Path(folder).is_relative_to(site) and source == "smollm2-135m"
