"""Typed configs of the 3D VQA datasets and their registrations (light: no torch).

Situated question answering over point-cloud scenes: each sample is a scene, a *situation*
(where the agent stands and which way it faces, as a sentence) and a question with exact
answers. Two datasets share `SceneQADataConfig` (point budget, text length, the blind
controls) and one data source, `lm4vis.data.vqa3d.source.SceneQASource`:

- ``rooms3d-qa``: generated rooms (`lm4vis.data.vqa3d.rooms`), embedded, deterministic by seed;
- ``sqa3d``: the SQA3D release (Ma et al., ICLR 2023) over ScanNet scans
  (`lm4vis.data.vqa3d.sqa3d`), with its bad-input policies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..registry import register_dataset
from .configs import DataConfig

#: What a blind control removes (`lm4vis.data.vqa3d.base.BLIND`; a test keeps the two equal).
BLIND = ("situation", "scene")
#: Where rooms3d-qa's agent may stand (`lm4vis.data.vqa3d.rooms.SPOT_NAMES`; a test keeps the two equal).
AGENT_SPOTS = ("middle", "north", "east", "south", "west")
SKIP_OR_FAIL = ("skip", "fail")
SHORT_SCENE = ("resample", "fail")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"data.{name}={value!r} is unknown; choose one of {', '.join(map(str, choices))}")


@dataclass
class SceneQADataConfig(DataConfig):
    """What every situated 3D VQA dataset shares.

    Args:
        num_points: points per scene (x, y, z, r, g, b): larger scenes are subsampled, smaller
            ones resampled with replacement (counted, or refused under ``short_scene: fail``).
        max_length: longest situation and longest question kept, in tokens ([CLS], [SEP] included).
        min_word_count: training words seen fewer times map to [UNK].
        blind: a control that removes one input from every sample, in training and evaluation:
            ``situation`` (the situation sentence is emptied) or ``scene`` (every point is set
            to zero); null keeps both.
    """

    name: str = "rooms3d-qa"
    num_points: int = 1024
    max_length: int = 32
    min_word_count: int = 1
    blind: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_points < 1:
            raise ValueError(f"data.num_points={self.num_points} must be positive")
        if self.max_length < 3:
            raise ValueError(f"data.max_length={self.max_length} must leave room for [CLS], a word and [SEP]")
        if self.min_word_count < 1:
            raise ValueError(f"data.min_word_count={self.min_word_count} must be at least 1")
        if self.blind is not None:
            _choice("blind", self.blind, BLIND)


@dataclass
class Rooms3DQADataConfig(SceneQADataConfig):
    """Generated rooms with situated questions (`lm4vis.data.vqa3d.rooms`). Sample ``i`` of a
    split depends only on ``(data_seed, split, i)``; the rooms of train and val differ.

    Args:
        num_train, num_val: samples per split (val also serves ``val_split: test``).
        train_rooms, val_rooms: distinct rooms per split; each appears with many poses.
        min_objects, max_objects: objects per room.
        agent_spots: where the agent may stand, taken in turn (all five by default): ``middle``
            (the middle of the room), or ``north``, ``east``, ``south``, ``west`` (a quarter of
            the way from the middle to that wall).
    """

    name: str = "rooms3d-qa"
    num_train: int = 4000
    num_val: int = 1000
    train_rooms: int = 200
    val_rooms: int = 100
    min_objects: int = 3
    max_objects: int = 5
    agent_spots: list[str] = field(default_factory=lambda: list(AGENT_SPOTS))

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [name for name in self.agent_spots if name not in AGENT_SPOTS]
        if bad or not self.agent_spots or len(set(self.agent_spots)) != len(self.agent_spots):
            raise ValueError(f"data.agent_spots={self.agent_spots} must name distinct spots among "
                             f"{', '.join(AGENT_SPOTS)}")
        for key in ("num_train", "num_val", "train_rooms", "val_rooms"):
            if getattr(self, key) < 1:
                raise ValueError(f"data.{key}={getattr(self, key)} must be positive")
        if not 3 <= self.min_objects <= self.max_objects <= 8:
            raise ValueError(f"data.min_objects={self.min_objects}, data.max_objects={self.max_objects}: "
                             "need 3 <= min_objects <= max_objects <= 8 (more than 8 do not fit "
                             "around the middle of a small room)")


@dataclass
class SQA3DDataConfig(SceneQADataConfig):
    """The SQA3D release: ``data.root`` holds its question and annotation files
    (``v1_balanced_questions_<split>_scannetv2.json``, ``v1_balanced_sqa_annotations_<split>_
    scannetv2.json``, directly or under ``sqa_task/balanced/``); ``data.scenes`` holds the
    ScanNet scans (``scans/<scene_id>/<scene_id>_vh_clean_2.ply``) or ScanQA-style arrays
    (``<scene_id>_vert.npy``). Sampled scenes are cached as ``.npy`` under ``$LM4VIS_CACHE``,
    never beside the data.

    Args:
        scenes: the folder of the scans or arrays; null takes ``data.root``.
        max_answers: keep the most frequent training answers (null: every training answer);
            an answer outside the vocabulary is counted and scored wrong.
        missing_scene: ``fail`` (a question whose scene file is missing stops the run, naming
            it) or ``skip`` (its questions are dropped and counted).
        unreadable: ``skip`` (a corrupt ``.ply`` / ``.npy``: its questions dropped and counted)
            or ``fail``.
        short_scene: ``resample`` (with replacement, counted) or ``fail``.
        alternative_situations: train on each question once more per rewording of its situation
            (the release's ``alternative_situation`` list; same question, answers and pose), so
            the model sees a situation in more than one phrasing; validation and test keep the
            question's own situation only.
    """

    name: str = "sqa3d"
    val_split: str = "val"
    scenes: str | None = None
    max_answers: int | None = None
    missing_scene: str = "fail"
    unreadable: str = "skip"
    short_scene: str = "resample"
    alternative_situations: bool = False
    num_points: int = 40_000

    reads_files: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.root:
            raise ValueError("data.root must name the folder of SQA3D's v1_balanced_*_scannetv2.json files "
                             "(the release's sqa_task/balanced/ or its parent)")
        _choice("missing_scene", self.missing_scene, SKIP_OR_FAIL)
        _choice("unreadable", self.unreadable, SKIP_OR_FAIL)
        _choice("short_scene", self.short_scene, SHORT_SCENE)
        if self.max_answers is not None and self.max_answers < 1:
            raise ValueError(f"data.max_answers={self.max_answers} must be positive (or null for all)")


#: name -> (config class, one line for listings).
SCENE_QA_DATASETS: dict[str, tuple[type[SceneQADataConfig], str]] = {
    "rooms3d-qa": (Rooms3DQADataConfig, "generated rooms, situated questions of 5 types, exact answers (embedded)"),
    "sqa3d": (SQA3DDataConfig, "SQA3D situated questions on ScanNet scans (.ply or _vert.npy)"),
}
for _name, (_config, _description) in SCENE_QA_DATASETS.items():
    register_dataset(_name, config=_config, builder="lm4vis.data.vqa3d.source:SceneQASource",
                     description=_description, kind="scene-qa", run_files=True)

__all__ = ["SceneQADataConfig", "Rooms3DQADataConfig", "SQA3DDataConfig", "SCENE_QA_DATASETS", "BLIND"]
