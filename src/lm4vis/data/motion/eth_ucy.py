"""ETH/UCY pedestrians as the Social-GAN release ships them, leave-one-scene-out.

``root`` is the release's ``datasets`` folder::

    datasets/<scene>/{train,val,test}/*.txt      scene: eth, hotel, univ, zara1, zara2

``<scene>/test`` holds the held-out scene and ``<scene>/train`` and ``val`` the other four, so
choosing a scene chooses the protocol's split. Each line is ``<frame> <pedestrian> <x> <y>``
(world metres, whitespace- or tab-separated); a file's distinct frames, in order, are its
steps at 2.5 Hz.

As Social-GAN does, every window of ``obs_len + pred_len`` consecutive steps (stride 1) is a
sequence, kept when more than one pedestrian is seen throughout it (``min_pedestrians``). Each
pedestrian seen throughout is the focal agent of one item; everyone else seen in the observed
window is context. There is no map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..base import DatasetNotFoundError, check_split
from ..configs import EthUcyDataConfig
from ..skips import SkipLog
from .base import MotionDataset, MotionInfo
from .vectorize import AGENT, FOCAL, Scene

NAME = "eth-ucy"
SCENES: tuple[str, ...] = ("eth", "hotel", "univ", "zara1", "zara2")
HZ = 2.5


@dataclass(frozen=True)
class _Recording:
    """One file as a (frames, pedestrians) grid."""

    positions: np.ndarray  # (F, N, 2) float64
    seen: np.ndarray  # (F, N) bool


class EthUcy(MotionDataset):
    """ETH/UCY windows, one item per pedestrian seen throughout a window.

    Args:
        cfg: the dataset's options: the ``data`` section of an ``eth-ucy`` run
            (`lm4vis.data.configs.EthUcyDataConfig`: ``root``, the held-out ``scene``, ``obs_len``,
            ``pred_len``, ``stride``, ``min_pedestrians``, ``on_bad_row``, the vectorisation options).
        split: ``train`` or ``val`` (the other four scenes' files), ``test`` (the held-out scene's).
    """

    def __init__(self, cfg: EthUcyDataConfig, split: str = "train") -> None:
        self.cfg, self.split = cfg, check_split(split)
        folder = Path(cfg.root).expanduser() / cfg.scene / split
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise DatasetNotFoundError(
                f"{NAME}: no {folder}/*.txt; root must be the Social-GAN datasets folder, laid out "
                "as datasets/<scene>/{train,val,test}/*.txt (its scripts/download_data.sh)"
            )
        self.skips = SkipLog(NAME)
        self.info = MotionInfo(NAME, split, cfg.obs_len, cfg.pred_len, HZ, has_map=False, has_future=True)
        self.options = dict(folder=str(folder.resolve()), **{k: getattr(cfg, k) for k in (
            "obs_len", "pred_len", "stride", "min_pedestrians", "max_agents", "min_heading_distance")})
        self.recordings: list[_Recording] = []
        samples = []
        window = cfg.obs_len + cfg.pred_len
        for path in files:
            recording = self._read(path)
            if recording is None:
                continue
            file_index = len(self.recordings)
            self.recordings.append(recording)
            for start in range(0, len(recording.seen) - window + 1, cfg.stride):
                throughout = np.flatnonzero(recording.seen[start: start + window].all(axis=0))
                if len(throughout) >= cfg.min_pedestrians:
                    samples += [(file_index, start, ped) for ped in throughout]
        self.samples = np.array(samples, np.int64).reshape(-1, 3)

    def _read(self, path: Path) -> _Recording | None:
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                values = [float(v) for v in fields]
            except ValueError:
                values = []
            if len(values) != 4 or not np.isfinite(values).all():
                self.skips.handle(self.cfg.on_bad_row, "bad-row", f"{path}:{number}: {line.strip()!r}",
                                  "each line must be '<frame> <pedestrian> <x> <y>'; fix or delete it, "
                                  "or set on_bad_row='skip' to count such lines")
                continue
            rows.append(values)
        if not rows:
            self.skips.skip("empty-file", f"{path} has no usable line")
            return None
        data = np.array(rows)
        frames, frame_index = np.unique(data[:, 0], return_inverse=True)
        peds, ped_index = np.unique(data[:, 1], return_inverse=True)
        positions = np.zeros((len(frames), len(peds), 2))
        seen = np.zeros((len(frames), len(peds)), bool)
        positions[frame_index, ped_index] = data[:, 2:4]
        seen[frame_index, ped_index] = True
        return _Recording(positions, seen)

    def __len__(self) -> int:
        return len(self.samples)

    def _scene(self, index: int) -> Scene:
        cfg = self.cfg
        file_index, start, focal = (int(v) for v in self.samples[index])
        recording = self.recordings[file_index]
        window = slice(start, start + cfg.obs_len + cfg.pred_len)
        seen = recording.seen[window].T  # (N, T)
        context = [p for p in np.flatnonzero(seen[:, : cfg.obs_len].any(axis=1)) if p != focal]
        tracks = [focal, *context]
        track_type = np.array([FOCAL] + [AGENT] * len(context))
        return Scene(index, recording.positions[window][:, tracks].transpose(1, 0, 2), seen[tracks],
                     track_type, cfg.obs_len, HZ, has_future=True)


__all__ = ["NAME", "SCENES", "EthUcyDataConfig", "EthUcy"]
