"""trainer.fast: the fast path where the machine has it, a stated fallback where not
(simulated: whichever machine runs the tests)."""

from __future__ import annotations

import pytest

from lm4vis.train import fastpath
from lm4vis.train.config import load_config


@pytest.fixture
def machine(monkeypatch):
    monkeypatch.delenv(fastpath.ENV_FAST, raising=False)   # the suite's conftest turns the fast path off

    def set_machine(bf16: bool, compiler: str | None):
        monkeypatch.setattr(fastpath, "native_bf16",
                            lambda accelerator="auto": (bf16, "CPU with AMX" if bf16 else "CPU with AVX2 only"))
        monkeypatch.setattr(fastpath, "cpp_compiler", lambda: compiler)
    return set_machine


def _cfg(**trainer):
    return load_config(None, {"trainer.accelerator": "cpu", **{f"trainer.{k}": v for k, v in trainer.items()}})


def test_the_whole_fast_path(machine):
    machine(True, "/usr/bin/g++")
    cfg = fastpath.resolve_fast_path(_cfg(fast=True))
    assert (cfg.trainer.precision, cfg.block.dtype, cfg.trainer.compile) == ("bf16-mixed", "bf16", True)
    assert fastpath.fast_path_notes(cfg) == ("trainer.fast on a CPU with AMX: precision bf16-mixed, "
                                             "LM layers in bf16, torch.compile")


def test_no_bf16_keeps_fp32_and_eager_and_says_so(machine):
    machine(False, "/usr/bin/g++")
    cfg = fastpath.resolve_fast_path(_cfg(fast=True))
    assert (cfg.trainer.precision, cfg.block.dtype, cfg.trainer.compile) == ("32", None, False)
    note = fastpath.fast_path_notes(cfg)
    assert "no native bf16 on this CPU with AVX2 only: fp32 kept" in note and "eager kept" in note
    assert note.count("\n") == 0


def test_the_environment_turns_it_off(machine, monkeypatch):
    machine(True, "/usr/bin/g++")
    monkeypatch.setenv(fastpath.ENV_FAST, "0")
    cfg = fastpath.resolve_fast_path(_cfg(fast=True))
    assert (cfg.trainer.precision, cfg.block.dtype, cfg.trainer.compile) == ("32", None, False)
    assert "LM4VIS_FAST=0" in fastpath.fast_path_notes(cfg)
    monkeypatch.setenv(fastpath.ENV_FAST, "maybe")
    with pytest.raises(ValueError, match="LM4VIS_FAST='maybe'"):
        fastpath.resolve_fast_path(_cfg(fast=True))


def test_every_preset_takes_the_fast_path():
    from lm4vis.train.config import configs_dir

    root = configs_dir()
    presets = sorted(root.rglob("*.yaml"))
    assert len(presets) > 20
    slow = [p.relative_to(root).as_posix() for p in presets
            if not load_config(str(p), {}).trainer.fast]
    assert not slow, f"presets without trainer.fast: {slow}"


def test_no_compiler_stays_eager_and_says_so(machine):
    machine(True, None)
    cfg = fastpath.resolve_fast_path(_cfg(fast=True))
    assert (cfg.trainer.precision, cfg.trainer.compile) == ("bf16-mixed", False)
    note = fastpath.fast_path_notes(cfg)
    assert "eager" in note and "no C++ compiler" in note and note.count("\n") == 0


def test_fast_compile_false_keeps_bf16_but_stays_eager_and_says_so(machine):
    machine(True, "/usr/bin/g++")
    cfg = fastpath.resolve_fast_path(_cfg(fast=True, fast_compile=False))
    assert (cfg.trainer.precision, cfg.block.dtype, cfg.trainer.compile) == ("bf16-mixed", "bf16", False)
    note = fastpath.fast_path_notes(cfg)
    assert "eager kept: trainer.fast_compile is false" in note and note.count("\n") == 0
    # the demo presets, measured on 2 cores: bf16 where native, never compiled
    from lm4vis.train.demo_tasks import DEMO_TASKS

    names = [t.preset for t in DEMO_TASKS.values()]
    assert len(names) == 7
    for name in names:
        demo = fastpath.resolve_fast_path(load_config(name, {}))
        assert demo.block.dtype == "bf16" and not demo.trainer.compile, name
        assert demo.trainer.precision == ("32" if name in ("vqa-demo", "vqa3d-demo") else "bf16-mixed"), name


def test_fast_autocast_false_holds_only_the_lm_layers_in_bf16(machine):
    machine(True, "/usr/bin/g++")
    cfg = fastpath.resolve_fast_path(_cfg(fast=True, fast_autocast=False))
    assert (cfg.trainer.precision, cfg.block.dtype, cfg.trainer.compile) == ("32", "bf16", True)
    assert "host in fp32: trainer.fast_autocast is false" in fastpath.fast_path_notes(cfg)
    machine(False, "/usr/bin/g++")   # without native bf16 the LM layers stay fp32 too
    cfg = fastpath.resolve_fast_path(_cfg(fast=True, fast_autocast=False))
    assert (cfg.trainer.precision, cfg.block.dtype) == ("32", None)
    assert "fast_autocast" not in fastpath.fast_path_notes(cfg)


def test_off_changes_nothing(machine):
    machine(True, "/usr/bin/g++")
    cfg = _cfg(precision="32")
    assert fastpath.resolve_fast_path(cfg) == cfg and fastpath.fast_path_notes(cfg) is None


@pytest.mark.slow
def test_prepare_config_resolves_it_and_a_run_records_it(machine, tiny_cfg):
    from lm4vis.train.run import train

    machine(False, None)
    summary = train(tiny_cfg.replace({"trainer.fast": True, "trainer.max_epochs": 1, "data.limit_train": 16,
                                      "data.limit_val": 16, "run_name": "fast"}))
    assert summary["precision"] == "32" and summary["compiled"] is False
    assert "fp32 kept" in summary["fast_path"] and "eager kept" in summary["fast_path"]
    assert summary["threads"] >= 1


def test_this_machine_is_described():
    ok, what = fastpath.native_bf16("cpu")
    assert isinstance(ok, bool) and what.startswith("CPU")


def test_a_precision_or_compile_given_on_the_command_line_wins_over_the_preset():
    assert load_config("demo", {}).trainer.fast
    cfg = load_config("demo", ["trainer.precision=bf16-mixed", "block.dtype=bf16", "trainer.compile=true"])
    assert not cfg.trainer.fast and cfg.trainer.compile and cfg.trainer.precision == "bf16-mixed"
    assert fastpath.resolve_fast_path(cfg) == cfg
    assert load_config("demo", ["trainer.compile=true", "trainer.fast=true"]).trainer.fast
    assert load_config("demo", ["optim.lr=1e-3"]).trainer.fast
    # the same on a resume, whose overrides are applied to the run's saved config
    saved = load_config("demo", {})
    assert not saved.replace({"trainer.compile": True}).trainer.fast
    assert saved.replace({"trainer.threads": 1}).trainer.fast
