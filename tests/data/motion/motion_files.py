"""Writers of tiny motion datasets in their releases' exact formats and folder layouts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ARGOVERSE_HEADER = "TIMESTAMP,TRACK_ID,OBJECT_TYPE,X,Y,CITY_NAME"
#: The first timestamp of a real sequence (seconds, 10 Hz).
T0 = 315969629.019741


@dataclass
class Track:
    """One track of an Argoverse CSV: its type and its world positions at some steps."""

    object_type: str
    steps: list[int]
    xy: np.ndarray  # (len(steps), 2)


def track_id(k: int) -> str:
    return f"00000000-0000-0000-0000-{k:012d}"


def straight(start: tuple[float, float], velocity: tuple[float, float], steps: range | list[int]) -> np.ndarray:
    """Positions of a constant-velocity track at ``steps`` (10 Hz)."""
    t = np.asarray(list(steps), float)[:, None] / 10.0
    return np.asarray(start) + t * np.asarray(velocity)


def write_argoverse_csv(path: Path, tracks: dict[int, Track], city: str = "PIT") -> Path:
    """A sequence CSV as the release has them: rows grouped by timestamp, the AV first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, track in tracks.items():
        for step, (x, y) in zip(track.steps, track.xy):
            rank = {"AV": 0, "OTHERS": 1, "AGENT": 2}.get(track.object_type, 3)
            rows.append((step, rank, k, track.object_type, x, y))
    rows.sort()
    lines = [ARGOVERSE_HEADER] + [
        f"{T0 + 0.1 * step:.6f},{track_id(k)},{kind},{float(x)!r},{float(y)!r},{city}"
        for step, _, k, kind, x, y in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def argoverse_scene(total_steps: int = 50, others: int = 2) -> dict[int, Track]:
    """An AGENT driving +x at 10 m/s from (2000, 1000), the AV behind it, and ``others``
    OTHERS tracks, the second of them seen only from step 5 to 12."""
    steps = range(total_steps)
    tracks = {
        7: Track("AGENT", list(steps), straight((2000.0, 1000.0), (10.0, 0.0), steps)),
        0: Track("AV", list(steps), straight((1980.0, 1000.0), (10.0, 0.0), steps)),
    }
    for i in range(others):
        part = range(5, 13) if i == 1 else steps
        tracks[100 + i] = Track("OTHERS", list(part), straight((2010.0 + 5 * i, 1004.0), (0.0, 1.0), part))
    return tracks


def write_vector_map(path: Path, lanes: list[dict]) -> Path:
    """An Argoverse vector map: nodes first, then one way per lane with its tags, as the
    release's pruned_argoverse_*_vector_map.xml."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<ArgoverseVectorMap>"]
    node = 0
    ways = []
    for lane in lanes:
        refs = []
        for x, y in lane["points"]:
            lines.append(f'  <node id="{node}" x="{x}" y="{y}" />')
            refs.append(node)
            node += 1
        way = [f'  <way lane_id="{lane["lane_id"]}">',
               f'    <tag k="has_traffic_control" v="{lane.get("has_traffic_control", False)}" />',
               f'    <tag k="turn_direction" v="{lane.get("turn_direction", "NONE")}" />',
               f'    <tag k="is_intersection" v="{lane.get("is_intersection", False)}" />',
               '    <tag k="l_neighbor_id" v="None" />', '    <tag k="r_neighbor_id" v="None" />']
        way += [f'    <nd ref="{r}" />' for r in refs]
        way += ['    <tag k="predecessor" v="9608794" />', "  </way>"]
        ways += way
    path.write_text("\n".join(lines + ways + ["</ArgoverseVectorMap>"]) + "\n")
    return path


def write_eth_file(path: Path, tracks: dict[int, tuple[list[int], np.ndarray]], frame_step: int = 10,
                   sep: str = "\t") -> Path:
    """A Social-GAN ``<frame> <ped> <x> <y>`` file: rows sorted by frame, values as floats."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((step * frame_step, ped, x, y) for ped, (steps, xy) in tracks.items()
                  for step, (x, y) in zip(steps, xy))
    path.write_text("".join(f"{float(f)}{sep}{float(p)}{sep}{x:.2f}{sep}{y:.2f}\n" for f, p, x, y in rows))
    return path
