"""``sqa3d``: SQA3D (Ma et al., ICLR 2023) in its release layout, over ScanNet scans.

The release's balanced task files, per split (``train``, ``val``, ``test``)::

    v1_balanced_questions_<split>_scannetv2.json      {"questions": [{"scene_id", "situation",
                                                        "alternative_situation", "question",
                                                        "question_id"}, ...]}
    v1_balanced_sqa_annotations_<split>_scannetv2.json {"annotations": [{"question_id", "scene_id",
                                                        "answers": [{"answer", ...}], "answer_type",
                                                        "position": {"x", "y", "z"},
                                                        "rotation": {"_w", "_x", "_y", "_z"}}, ...]}

in ``data.root`` or its ``sqa_task/balanced/`` (the release's ``assets/data`` layout). The scenes
are ScanNet's ``scans/<scene_id>/<scene_id>_vh_clean_2.ply`` (vertex x, y, z and red, green,
blue, read with plyfile) or ScanQA-style ``<scene_id>_vert.npy`` arrays (x, y, z, r, g, b[, ...],
colours 0..255), in ``data.scenes``. The ``.ply`` is looked for first.

Each scene is sampled once to ``num_points`` points (without replacement; a smaller scene with
replacement, counted) with a generator seeded by the scene id, and the sample is cached as
``.npy`` under ``$LM4VIS_CACHE/sqa3d/`` with a ``.json`` beside it that records the source file's
size and modification time (a changed file is sampled again), never beside the data.

Question types are SQA3D's: the question's first word (what, is, how, can, which), else others.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...tasks.vqa_metrics import answer_vocabulary, normalize_answer
from ..cache import atomic_save_npy, cache_dir
from ..points.io import CloudReadError, read_npy
from ..skips import BadInputError, SkipLog
from .base import SceneQARecord, fixed_budget

NAME = "sqa3d"
SPLITS: tuple[str, ...] = ("train", "val", "test")
QUESTION_TYPES: tuple[str, ...] = ("what", "is", "how", "can", "which", "others")
QUESTIONS_FILE = "v1_balanced_questions_{split}_scannetv2.json"
ANNOTATIONS_FILE = "v1_balanced_sqa_annotations_{split}_scannetv2.json"
#: Where the task files may sit under ``data.root``: the folder itself, or the release's layout.
TASK_DIRS: tuple[str, ...] = (".", "sqa_task/balanced", "balanced")
#: Bumped when the sampling changes, so that older caches are never read.
CACHE_VERSION = 1
#: How many mismatched ids an error names.
SHOWN = 5


def question_type(question: str) -> str:
    """SQA3D's question type: the first word, when it is one of the five it reports."""
    words = question.strip().lower().split()
    return words[0] if words and words[0] in QUESTION_TYPES[:-1] else "others"


def task_file(root: Path, pattern: str, split: str) -> Path:
    """The release file of ``split`` under ``root`` (see `TASK_DIRS`); a missing one is an error
    that names every place looked in."""
    name = pattern.format(split=split)
    tried = [root / d / name for d in TASK_DIRS]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{NAME}: {name} is in none of {', '.join(str(p.parent) for p in tried)}; set data.root "
                            "to the folder of SQA3D's balanced task files (sqa_task/balanced/ or its parent)")


def _read_json(path: Path, key: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(f"{NAME}: {path} is not readable JSON ({e}); download it again") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise BadInputError(f"{NAME}: {path} has no {key!r} list (found {found}); is this the SQA3D release file?")
    return data[key]


def check_ids(questions: Sequence[dict[str, Any]], annotations: Sequence[dict[str, Any]], split: str) -> None:
    """Questions and annotations must pair one to one, on the same scene; else an error naming
    the first mismatches of each kind."""
    qids = [q["question_id"] for q in questions]
    aids = [a["question_id"] for a in annotations]
    problems = []
    for what, ids in (("questions", qids), ("annotations", aids)):
        twice = [i for i, n in Counter(ids).items() if n > 1]
        if twice:
            problems.append(f"{len(twice)} question_id(s) appear more than once in the {what}: {twice[:SHOWN]}")
    only_q, only_a = sorted(set(qids) - set(aids), key=str), sorted(set(aids) - set(qids), key=str)
    if only_q:
        problems.append(f"{len(only_q)} question_id(s) have no annotation, first {only_q[:SHOWN]}")
    if only_a:
        problems.append(f"{len(only_a)} annotation(s) have no question, first {only_a[:SHOWN]}")
    scenes = {a["question_id"]: a.get("scene_id") for a in annotations}
    other = [(q["question_id"], q["scene_id"], scenes[q["question_id"]]) for q in questions
             if q["question_id"] in scenes and scenes[q["question_id"]] != q["scene_id"]]
    if other:
        problems.append(f"{len(other)} question(s) name another scene than their annotation, first "
                        + ", ".join(f"{i}: {a} vs {b}" for i, a, b in other[:SHOWN]))
    if problems:
        raise BadInputError(f"{NAME} {split}: the questions and annotations files do not match: "
                            + "; ".join(problems) + ". Use the two files of one release and one split")


def _xyz(d: Any) -> tuple[float, float, float]:
    d = d or {}
    return (float(d.get("x", 0.0)), float(d.get("y", 0.0)), float(d.get("z", 0.0)))


def _quaternion(d: Any) -> tuple[float, float, float, float]:
    d = d or {}
    get = lambda k: float(d.get(f"_{k}", d.get(k, 1.0 if k == "w" else 0.0)))  # noqa: E731 (the release writes _w)
    return (get("w"), get("x"), get("y"), get("z"))


def read_split(root: str | Path, split: str, skips: SkipLog, alternatives: bool = False) -> list[SceneQARecord]:
    """Every question of a split, paired with its annotation, as records.

    Args:
        root: ``data.root``.
        split: ``train``, ``val`` or ``test``.
        skips: the split's log (a question without any answer is skipped and counted).
        alternatives: also one record per ``alternative_situation`` of a question (the release's
            rewordings of its situation; same question, answers and pose), after the question's own.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    root = Path(root).expanduser()
    questions = _read_json(task_file(root, QUESTIONS_FILE, split), "questions")
    annotations = _read_json(task_file(root, ANNOTATIONS_FILE, split), "annotations")
    check_ids(questions, annotations, split)
    by_id = {a["question_id"]: a for a in annotations}
    records = []
    for q in questions:
        a = by_id[q["question_id"]]
        answers = tuple(dict.fromkeys(normalize_answer(str(x.get("answer", ""))) for x in a.get("answers") or []))
        answers = tuple(x for x in answers if x)
        if not answers:
            skips.skip("no-answer", f"question {q['question_id']} has no answer in the annotations")
            continue
        record = SceneQARecord(q["scene_id"], q["situation"], q["question"], answers, question_type(q["question"]),
                               _xyz(a.get("position")), _quaternion(a.get("rotation")), q["question_id"])
        records.append(record)
        if alternatives:
            others = q.get("alternative_situation") or []
            others = [others] if isinstance(others, str) else others  # a list in the release; one string tolerated
            records.extend(replace(record, situation=text, question_id=f"{q['question_id']}-alt{k}")
                           for k, text in enumerate(t for t in others if t and t.strip()))
    return records


def scene_file(scenes_root: Path, scene_id: str) -> Path | None:
    """The scan of a scene: ``scans/<id>/<id>_vh_clean_2.ply`` first, else ``<id>_vert.npy``
    (directly in the folder or under ``scans/<id>/``)."""
    for path in (scenes_root / "scans" / scene_id / f"{scene_id}_vh_clean_2.ply",
                 scenes_root / f"{scene_id}_vert.npy", scenes_root / "scans" / scene_id / f"{scene_id}_vert.npy"):
        if path.is_file():
            return path
    return None


def read_scene(path: Path) -> np.ndarray:
    """``(N, 6)`` float32 points (x, y, z, r, g, b in 0..1) of a ``.ply`` or ``_vert.npy`` scan.
    Raises `CloudReadError` for a file that cannot be used."""
    if path.suffix == ".ply":
        from plyfile import PlyData, PlyParseError

        try:
            vertex = PlyData.read(str(path))["vertex"]
            names = {p.name for p in vertex.properties}
            missing = [c for c in ("x", "y", "z", "red", "green", "blue") if c not in names]
            if missing:
                raise CloudReadError(f"{path}: the vertices have no {', '.join(missing)} (found {sorted(names)})")
            xyz = np.stack([np.asarray(vertex[c], dtype=np.float32) for c in ("x", "y", "z")], axis=1)
            rgb = np.stack([np.asarray(vertex[c], dtype=np.float32) for c in ("red", "green", "blue")], axis=1) / 255.0
        except CloudReadError:
            raise
        except (PlyParseError, KeyError, ValueError, IndexError, TypeError, UnicodeDecodeError, EOFError, OSError) as e:
            raise CloudReadError(f"{path}: not a readable PLY file ({type(e).__name__}: {e})") from e
        points = np.concatenate([xyz, rgb], axis=1)
    else:
        array = read_npy(path)
        if array.shape[1] < 6:
            raise CloudReadError(f"{path}: {array.shape[1]} columns; want x, y, z, r, g, b")
        points = array[:, :6].copy()
        if points[:, 3:].max(initial=0.0) > 1.0:  # ScanQA stores colours as 0..255
            points[:, 3:] /= 255.0
    if len(points) == 0:
        raise CloudReadError(f"{path}: the scan has no points")
    if not np.isfinite(points).all():
        raise CloudReadError(f"{path}: non-finite coordinates or colours")
    return points


class SceneCache:
    """Scenes sampled to a fixed budget, cached as ``.npy`` away from the data.

    Args:
        scenes_root: ``data.scenes`` (or ``data.root``).
        num_points: the budget.
        data_seed: mixed into each scene's sampling seed.
    """

    def __init__(self, scenes_root: str | Path, num_points: int, data_seed: int = 0) -> None:
        self.root = Path(scenes_root).expanduser()
        self.num_points, self.data_seed = num_points, data_seed
        self.folder = cache_dir(NAME, scenes=str(self.root.resolve()), num_points=num_points, data_seed=data_seed,
                                version=CACHE_VERSION)

    def load(self, scene_id: str, path: Path) -> tuple[np.ndarray, int]:
        """(the sampled ``(num_points, 6)`` points, the scan's own point count)."""
        stat = path.stat()
        stamp = {"source": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        npy, meta = self.folder / f"{scene_id}.npy", self.folder / f"{scene_id}.json"
        if npy.is_file() and meta.is_file():
            try:
                saved = json.loads(meta.read_text())
                if {k: saved.get(k) for k in stamp} == stamp:
                    return np.load(npy, allow_pickle=False), int(saved["points_in_scan"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is made again
        points = read_scene(path)
        rng = np.random.default_rng([self.data_seed, zlib.crc32(scene_id.encode())])
        sample, _ = fixed_budget(points, self.num_points, rng)
        atomic_save_npy(npy, sample)
        meta.write_text(json.dumps({**stamp, "points_in_scan": len(points)}))
        return sample, len(points)


def load_scenes(records: Sequence[SceneQARecord], cache: SceneCache, skips: SkipLog, missing_scene: str,
                unreadable: str, short_scene: str) -> tuple[list[SceneQARecord], dict[str, np.ndarray]]:
    """The scenes the records ask about, under the bad-input policies; returns the records
    whose scene could be used, and the scenes.

    Args:
        records: a split's records.
        cache: the sampled-scene cache.
        skips: the split's log.
        missing_scene, unreadable: ``skip`` or ``fail``.
        short_scene: ``resample`` or ``fail``.
    """
    questions = Counter(r.scene for r in records)
    scenes: dict[str, np.ndarray] = {}
    for scene_id in questions:
        path = scene_file(cache.root, scene_id)
        if path is None:
            skips.handle(missing_scene, "missing-scene",
                         f"scene {scene_id} ({questions[scene_id]} questions): neither "
                         f"{cache.root / 'scans' / scene_id / f'{scene_id}_vh_clean_2.ply'} nor "
                         f"{cache.root / f'{scene_id}_vert.npy'} exists",
                         "point data.scenes at the folder holding ScanNet's scans/ (or the _vert.npy "
                         "arrays), or set data.missing_scene=skip to drop and count its questions")
            continue
        try:
            points, in_scan = cache.load(scene_id, path)
        except (CloudReadError, OSError) as e:
            skips.handle(unreadable, "unreadable-scene", f"{e} ({questions[scene_id]} questions)",
                         "replace the file, or set data.unreadable=skip to drop and count its questions")
            continue
        if in_scan < cache.num_points:
            if short_scene == "fail":
                raise BadInputError(f"{NAME}: {path} has {in_scan} points, fewer than data.num_points="
                                    f"{cache.num_points}; lower data.num_points or set data.short_scene=resample")
            skips.skip("short-scene-resampled", f"{path}: {in_scan} points resampled with replacement to "
                       f"{cache.num_points}")
        scenes[scene_id] = points
    kept = [r for r in records if r.scene in scenes]
    dropped = len(records) - len(kept)
    if dropped:
        skips.skip("questions-without-scene", f"{dropped} questions dropped with their scenes", count=dropped)
    return kept, scenes


def vocabulary(records: Sequence[SceneQARecord], max_answers: int | None) -> tuple[str, ...]:
    """The training answers, most frequent first (each question's first answer counted), cut
    to ``max_answers``."""
    answers = [r.answers[0] for r in records]
    return answer_vocabulary(answers, max_answers or max(1, len(set(answers))))


__all__ = ["NAME", "SPLITS", "QUESTION_TYPES", "QUESTIONS_FILE", "ANNOTATIONS_FILE", "question_type", "task_file",
           "check_ids", "read_split", "scene_file", "read_scene", "SceneCache", "load_scenes", "vocabulary"]
