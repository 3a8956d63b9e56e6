"""`lm4vis demo --task all` and `--lm`: what they refuse, before anything trains."""

from __future__ import annotations

import pytest

from lm4vis.checkpoint import registry
from lm4vis.cli import main


def test_all_refuses_a_preset_or_a_dataset(tmp_path, capsys):
    code = main(["demo", "--task", "all", "--config", "demo", "--out", str(tmp_path)])
    assert code != 0 and "drop --config and --dataset" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif("gemma3-270m" in registry.available(), reason="gemma3-270m is installed here")
def test_an_lm_that_is_not_installed_names_its_install(tmp_path, capsys):
    code = main(["demo", "--task", "all", "--lm", "gemma3-270m", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "--lm gemma3-270m is not installed" in err and "pip install" in err


def test_help_names_all(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "all: every one of them, then one table in the shape of the paper's" in out
    assert "--lm NAME" in out and "--no-controls" in out
