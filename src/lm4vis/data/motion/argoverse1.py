"""Argoverse 1.1 motion forecasting, read from the release as downloaded.

``root`` is the folder the forecasting tarballs were extracted into::

    forecasting_train_v1.1.tar.gz -> root/train/data/<sequence id>.csv      (205,942 scenes)
    forecasting_val_v1.1.tar.gz   -> root/val/data/<sequence id>.csv        (39,472)
    forecasting_test_v1.1.tar.gz  -> root/test_obs/data/<sequence id>.csv   (78,143, observed only)

Each CSV holds ``TIMESTAMP,TRACK_ID,OBJECT_TYPE,X,Y,CITY_NAME`` rows of 5 s at 10 Hz: 20
observed steps and 30 to forecast (the test split stops after the 20 observed). The focal
agent is the track whose ``OBJECT_TYPE`` is ``AGENT``; ``AV`` is the recording vehicle and
``OTHERS`` every other tracked object. The sorted distinct timestamps are the steps; other
tracks are kept where they were seen in the observed window.

``map_root`` (optional) is the ``map_files`` folder of ``hd_maps.tar.gz``; lanes are read from
its ``pruned_argoverse_<city>_<id>_vector_map.xml`` centrelines with their
``is_intersection``, ``has_traffic_control`` and ``turn_direction`` attributes. (The API's
``*_tableidx_to_laneid_map.json`` and ``*_halluc_bbox_table.npy`` only index the same lanes for
its own queries; the loader builds its own index from the XML, so it does not need them.)
Without a map the scenes are agents only, and ``info.has_map`` says so.

Processed items are cached per scene under ``$LM4VIS_CACHE/argoverse1/<options>/``, never next
to the release.
"""

from __future__ import annotations

import csv
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base import DatasetNotFoundError, check_split
from ..cache import atomic_save_npz, cache_dir
from ..configs import Argoverse1DataConfig
from ..skips import BadInputError, SkipLog, Skipped
from .base import MotionDataset, MotionInfo, bad_scene
from .vectorize import AGENT, AV, FOCAL, LEFT, NO_TURN, RIGHT, Lane, Scene

log = logging.getLogger(__name__)

NAME = "argoverse1"
COLUMNS: tuple[str, ...] = ("TIMESTAMP", "TRACK_ID", "OBJECT_TYPE", "X", "Y", "CITY_NAME")
OBJECT_TYPES: dict[str, int] = {"AGENT": FOCAL, "AV": AV, "OTHERS": AGENT}
OBS_LEN, PRED_LEN, HZ = 20, 30, 10.0
#: Split -> (folder the release's tarball extracts, the tarball).
SPLIT_DIRS: dict[str, tuple[str, str]] = {
    "train": ("train", "forecasting_train_v1.1.tar.gz"),
    "val": ("val", "forecasting_val_v1.1.tar.gz"),
    "test": ("test_obs", "forecasting_test_v1.1.tar.gz"),
}
#: The two cities of Argoverse 1 and the ids in their map file names.
CITY_IDS: dict[str, int] = {"PIT": 10314, "MIA": 10316}
TURN_DIRECTIONS: dict[str, int] = {"NONE": NO_TURN, "LEFT": LEFT, "RIGHT": RIGHT}
#: Bumped whenever processing changes, so no cache of an older version is read.
FORMAT_VERSION = 1


class ArgoverseLanes:
    """Lane centrelines of the Argoverse 1 vector maps, with a query by distance.

    Each city's XML is parsed once (a few seconds) and kept as arrays in the cache folder.

    Args:
        map_root: the ``map_files`` folder.
    """

    def __init__(self, map_root: str | Path) -> None:
        self.root = Path(map_root).expanduser()
        found = sorted(self.root.glob("pruned_argoverse_*_vector_map.xml")) if self.root.is_dir() else []
        if not found:
            raise DatasetNotFoundError(
                f"{NAME}: map_root {self.root} holds no pruned_argoverse_<city>_<id>_vector_map.xml; "
                "extract hd_maps.tar.gz from argoverse.org (its map_files folder), or leave "
                "map_root unset for agents-only scenes"
            )
        self._cities: dict[str, dict[str, np.ndarray]] = {}

    def xml_path(self, city: str) -> Path:
        if city not in CITY_IDS:
            raise BadInputError(f"{NAME}: unknown CITY_NAME {city!r}; Argoverse 1 has {', '.join(CITY_IDS)}")
        return self.root / f"pruned_argoverse_{city}_{CITY_IDS[city]}_vector_map.xml"

    def fingerprint(self) -> list[tuple[str, int, int]]:
        """Name, size and mtime of every map file: part of the item cache key."""
        return [(p.name, p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(self.root.glob("pruned_argoverse_*_vector_map.xml"))]

    def _city(self, city: str) -> dict[str, np.ndarray]:
        if city in self._cities:
            return self._cities[city]
        path = self.xml_path(city)
        if not path.is_file():
            raise BadInputError(f"{NAME}: a scene in {city} needs {path}; "
                                f"extract all of hd_maps.tar.gz into {self.root}")
        stat = path.stat()
        cached = cache_dir(f"{NAME}-map", xml=str(path.resolve()), size=stat.st_size,
                           mtime=stat.st_mtime_ns, version=FORMAT_VERSION) / "lanes.npz"
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as f:
                arrays = dict(f)
        else:
            log.info("%s: indexing the lanes of %s (once; cached in %s)", NAME, path.name, cached.parent)
            arrays = read_vector_map(path)
            atomic_save_npz(cached, **arrays)
        points, starts = arrays["points"], arrays["offsets"][:-1]
        # Per-lane bounding boxes: a query tests four numbers per lane before any point.
        arrays["lo"] = np.minimum.reduceat(points, starts, axis=0) if len(starts) else np.zeros((0, 2))
        arrays["hi"] = np.maximum.reduceat(points, starts, axis=0) if len(starts) else np.zeros((0, 2))
        self._cities[city] = arrays
        return arrays

    def near(self, city: str, center: np.ndarray, radius: float) -> list[Lane]:
        """Lanes with a centreline point within ``radius`` metres of ``center`` (world).

        Args:
            city: ``PIT`` or ``MIA``.
            center: (2,) world position.
            radius: metres.
        """
        lanes = self._city(city)
        boxed = np.flatnonzero(((lanes["lo"] - radius <= center) & (center <= lanes["hi"] + radius)).all(axis=1))
        out = []
        for i in boxed:
            points = lanes["points"][lanes["offsets"][i]: lanes["offsets"][i + 1]]
            if np.linalg.norm(points - center, axis=1).min() <= radius:
                out.append(Lane(points, bool(lanes["is_intersection"][i]),
                                bool(lanes["has_traffic_control"][i]), int(lanes["turn"][i])))
        return out


def read_vector_map(path: Path) -> dict[str, np.ndarray]:
    """The lanes of one ``pruned_argoverse_*_vector_map.xml`` as flat arrays.

    The file is OSM-like: ``<node id x y [height]>`` elements, then one ``<way lane_id>`` per
    lane with ``<tag k v>`` attributes and ``<nd ref>`` centreline node references, in order.

    Returns:
        ``lane_id`` (L,) int64, ``offsets`` (L+1,) int64 into ``points`` (N, 2) float64,
        ``is_intersection`` and ``has_traffic_control`` (L,) bool, ``turn`` (L,) int8
        (index into `vectorize.TURNS`).
    """
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, dict[str, str], list[int]]] = []
    for _, elem in ET.iterparse(path, events=("end",)):
        if elem.tag == "node":
            nodes[int(elem.attrib["id"])] = (float(elem.attrib["x"]), float(elem.attrib["y"]))
            elem.clear()
        elif elem.tag == "way":
            tags = {t.attrib["k"]: t.attrib["v"] for t in elem.iter("tag")}
            refs = [int(nd.attrib["ref"]) for nd in elem.iter("nd")]
            ways.append((int(elem.attrib["lane_id"]), tags, refs))
            elem.clear()
    try:
        points = [np.array([nodes[r] for r in refs], np.float64) for _, _, refs in ways]
    except KeyError as err:
        raise BadInputError(f"{NAME}: {path} refers to node {err.args[0]}, which it never defines; "
                            "the map file is truncated, extract hd_maps.tar.gz again") from None
    return {
        "lane_id": np.array([lane_id for lane_id, _, _ in ways], np.int64),
        "offsets": np.cumsum([0] + [len(p) for p in points]).astype(np.int64),
        "points": np.concatenate(points) if points else np.zeros((0, 2)),
        "is_intersection": np.array([t.get("is_intersection") == "True" for _, t, _ in ways], bool),
        "has_traffic_control": np.array([t.get("has_traffic_control") == "True" for _, t, _ in ways], bool),
        "turn": np.array([TURN_DIRECTIONS.get(t.get("turn_direction", "NONE"), NO_TURN) for _, t, _ in ways], np.int8),
    }


@dataclass(frozen=True)
class _Rows:
    """One sequence CSV, column by column."""

    timestamp: np.ndarray  # (R,) float64
    track_id: list[str]
    object_type: list[str]
    xy: np.ndarray  # (R, 2) float64
    city: list[str]


def _numbers(rows: list[list[str]], column: int) -> np.ndarray:
    out = np.full(len(rows), np.nan)  # what does not parse stays NaN, for the on_nan policy
    for i, row in enumerate(rows):
        try:
            out[i] = float(row[column])
        except (ValueError, IndexError):
            pass
    return out


def _texts(rows: list[list[str]], column: int) -> list[str]:
    return [row[column] if len(row) > column else "" for row in rows]


def read_sequence(path: Path) -> _Rows:
    """The rows of one sequence CSV; numbers that do not parse become NaN.

    Raises:
        BadInputError: a required column is missing, or an OBJECT_TYPE is not Argoverse's.
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise BadInputError(
                f"{NAME}: {path} has no column {', '.join(missing)} (header: {','.join(header) or 'empty'}); "
                f"an Argoverse 1.1 forecasting CSV starts with {','.join(COLUMNS)}"
            )
        rows = [row for row in reader if row]
    col = {c: header.index(c) for c in COLUMNS}
    object_type = _texts(rows, col["OBJECT_TYPE"])
    unknown = sorted(set(object_type) - set(OBJECT_TYPES))
    if unknown:
        raise BadInputError(f"{NAME}: {path} has OBJECT_TYPE {', '.join(map(repr, unknown))}; "
                            f"Argoverse 1.1 uses {', '.join(OBJECT_TYPES)}")
    xy = np.stack([_numbers(rows, col["X"]), _numbers(rows, col["Y"])], axis=1)
    return _Rows(_numbers(rows, col["TIMESTAMP"]), _texts(rows, col["TRACK_ID"]), object_type, xy,
                 _texts(rows, col["CITY_NAME"]))


class Argoverse1(MotionDataset):
    """Argoverse 1.1 forecasting scenes (see the module doc for the layout).

    Args:
        cfg: the dataset's options: the ``data`` section of an ``argoverse1`` run
            (`lm4vis.data.configs.Argoverse1DataConfig`: ``root``, ``map_root``, the bad-input
            policies ``on_bad_focal`` and ``on_nan``, ``cache``, the vectorisation options).
        split: ``train``, ``val`` or ``test`` (the test split has no futures).
    """

    def __init__(self, cfg: Argoverse1DataConfig, split: str = "train") -> None:
        self.cfg, self.split = cfg, check_split(split)
        folder, tarball = SPLIT_DIRS[split]
        data_dir = Path(cfg.root).expanduser() / folder / "data"
        if not data_dir.is_dir():
            raise DatasetNotFoundError(
                f"{NAME}: no {data_dir}; download {tarball} from argoverse.org and extract it in "
                f"{cfg.root} (it creates {folder}/data/<sequence id>.csv)"
            )
        self.skips = SkipLog(NAME)
        self.files: list[Path] = []
        for path in sorted(data_dir.glob("*.csv"), key=lambda p: (len(p.stem), p.stem)):
            if path.stem.isdigit():
                self.files.append(path)
            else:  # e.g. macOS "._123.csv" shadows copied along with the release
                self.skips.skip("not-a-sequence-file", f"{path.name} in {data_dir}")
        if not self.files:
            raise DatasetNotFoundError(f"{NAME}: {data_dir} holds no <sequence id>.csv; extract {tarball} again")
        self.lanes = ArgoverseLanes(cfg.map_root) if cfg.map_root else None
        self.info = MotionInfo(NAME, split, OBS_LEN, PRED_LEN, HZ, has_map=self.lanes is not None,
                               has_future=split != "test")
        self.options = dict(data=str(data_dir.resolve()), map=self.lanes.fingerprint() if self.lanes else None,
                            max_agents=cfg.max_agents, lane_radius=cfg.lane_radius,
                            lane_piece_vectors=cfg.lane_piece_vectors,
                            min_heading_distance=cfg.min_heading_distance)
        self.cache = cache_dir(NAME, **self.options, version=FORMAT_VERSION) if cfg.cache else None

    def __len__(self) -> int:
        return len(self.files)

    def _cache_name(self, index: int) -> str:
        return f"{self.files[index].stem}.npz"

    def _scene(self, index: int) -> Scene | Skipped:
        cfg, path = self.cfg, self.files[index]
        rows = read_sequence(path)
        bad = ~np.isfinite(rows.xy).all(axis=1) | ~np.isfinite(rows.timestamp)
        if bad.any():
            return bad_scene(cfg.on_nan, NAME, "nan-coordinates",
                             f"{path} has {int(bad.sum())} row(s) with a non-finite TIMESTAMP, X or Y "
                             f"(first on line {int(np.argmax(bad)) + 2})",
                             "repair or delete the file, or set on_nan='skip' to count such scenes")
        agents = sorted({t for t, o in zip(rows.track_id, rows.object_type) if o == "AGENT"})
        if len(agents) != 1:
            reason = "no-agent" if not agents else "several-agents"
            return bad_scene(cfg.on_bad_focal, NAME, reason,
                             f"{path} has {len(agents)} AGENT tracks, not 1",
                             "set on_bad_focal='skip' to count such scenes")

        steps = OBS_LEN + (PRED_LEN if self.info.has_future else 0)
        _, step = np.unique(rows.timestamp, return_inverse=True)
        in_window = step < steps  # a longer file keeps its first `steps` timestamps
        track_ids = [agents[0]] + sorted(set(rows.track_id) - {agents[0]})
        number = {t: i for i, t in enumerate(track_ids)}
        row_track = np.array([number[t] for t in rows.track_id], np.int64)
        positions = np.zeros((len(track_ids), steps, 2))
        observed = np.zeros((len(track_ids), steps), bool)
        positions[row_track[in_window], step[in_window]] = rows.xy[in_window]
        observed[row_track[in_window], step[in_window]] = True
        track_type = np.full(len(track_ids), AGENT)
        for t, o in zip(row_track, rows.object_type):
            track_type[t] = OBJECT_TYPES[o]

        seen_obs, seen_future = int(observed[0, :OBS_LEN].sum()), int(observed[0, OBS_LEN:].sum())
        if seen_obs < OBS_LEN:
            return bad_scene(cfg.on_bad_focal, NAME, "focal-track-too-short",
                             f"{path}: the AGENT is seen at {seen_obs} of the {OBS_LEN} observed steps",
                             "set on_bad_focal='skip' to count such scenes")
        if seen_future < steps - OBS_LEN:
            return bad_scene(cfg.on_bad_focal, NAME, "focal-future-incomplete",
                             f"{path}: the AGENT is seen at {seen_future} of the {PRED_LEN} future steps",
                             "set on_bad_focal='skip' to count such scenes")
        lanes: list[Lane] = []
        if self.lanes is not None:
            city = rows.city[rows.track_id.index(agents[0])]
            lanes = self.lanes.near(city, positions[0, OBS_LEN - 1], cfg.lane_radius)
        return Scene(int(path.stem), positions, observed, track_type, OBS_LEN, HZ,
                     self.info.has_future, lanes)


__all__ = ["NAME", "COLUMNS", "OBJECT_TYPES", "SPLIT_DIRS", "CITY_IDS", "Argoverse1DataConfig",
           "Argoverse1", "ArgoverseLanes", "read_sequence", "read_vector_map"]
