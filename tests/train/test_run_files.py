"""A data source registered with ``run_files=True`` saves its derived files with the run, and
every later build for that run (resume, evaluation, analysis) reads them back."""

from __future__ import annotations

import json
from pathlib import Path

from lm4vis import register_dataset
from lm4vis.data.configs import ImageDataConfig
from lm4vis.train.datamodule import build_source
from lm4vis.train.loading import load_run
from lm4vis.train.run import train

VOCAB = "vocab.json"


class VocabSource:
    """The synthetic image source plus a "vocabulary" it derives at build time: a fresh build
    draws a new one (as text that changed would), a build for a run reads the run's."""

    builds = 0

    def __init__(self, cfg, run_dir: Path | None) -> None:
        from lm4vis.registry import DATASETS

        self._inner = DATASETS.get("synthetic").build(cfg)  # the tests' images, as registered
        VocabSource.builds += 1
        saved = None if run_dir is None else run_dir / VOCAB
        if saved is not None and saved.is_file():
            self.vocab, self.loaded = json.loads(saved.read_text()), True
        else:
            self.vocab, self.loaded = [f"word{VocabSource.builds}"], False
        self.info = self._inner.info

    def resolve(self):
        return self._inner.resolve()

    def dataset(self, split, train):
        return self._inner.dataset(split, train)

    def save_run_files(self, run_dir: Path) -> list[Path]:
        path = run_dir / VOCAB
        path.write_text(json.dumps(self.vocab))
        return [path]


register_dataset("synthetic-vocab", config=ImageDataConfig, run_files=True,
                 builder=lambda cfg, run_dir=None: VocabSource(cfg, run_dir))


def test_run_files_are_saved_and_read_back(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace({"data.name": "synthetic-vocab", "trainer.max_epochs": 1, "run_name": "v"})
    summary = train(cfg)
    run_dir = Path(summary["run_dir"])
    saved = json.loads((run_dir / VOCAB).read_text())

    again = build_source(cfg, run_dir)  # what resume, evaluation and analysis build
    assert again.loaded and again.vocab == saved
    fresh = build_source(cfg)  # without the run: derived anew, and different
    assert not fresh.loaded and fresh.vocab != saved

    model, loaded_cfg = load_run(run_dir)
    assert loaded_cfg.data.name == "synthetic-vocab"


def test_sources_without_run_files_ignore_the_run_folder(tiny_cfg, tmp_path):
    source = build_source(tiny_cfg, tmp_path)  # the plain synthetic source takes no run_dir
    assert not hasattr(source, "save_run_files")
