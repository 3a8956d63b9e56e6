"""Video files for the tests, encoded here with PyAV, and a small SSv2 release in its download layout.

Every frame of a written video is one flat gray level, ``level(k) = 20 + 7 k`` for frame k:
lossy codecs keep a flat frame's level within a few units, so a decoded frame's mean says which
source frame it is, and the tests can check sampled frames by their content.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

FPS = 12
WIDTH, HEIGHT = 64, 48
LEVEL_START, LEVEL_STEP = 20, 7  # up to 33 frames within 0..255


def level(frame: int) -> int:
    """The gray level written into frame ``frame``."""
    return LEVEL_START + LEVEL_STEP * frame


def frame_of(mean_level: float) -> int:
    """The source frame whose level is nearest ``mean_level``."""
    return round((mean_level - LEVEL_START) / LEVEL_STEP)


def write_video(path: Path, num_frames: int, *, codec: str = "libvpx-vp9", width: int = WIDTH,
                height: int = HEIGHT) -> Path:
    """Encode ``num_frames`` flat frames (see the module docstring) at 12 fps into ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(num_frames):
            frame = np.full((height, width, 3), level(k), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: Path, share: float = 0.5) -> Path:
    """Cut ``path`` to its first ``share`` of bytes, as an interrupted download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


# The classes of the small release: real SSv2 templates, with the release's quirks (a
# capitalised placeholder, two placeholders, a comma).
LABELS = {
    "Putting something on a surface": "0",
    "Pushing something from left to right": "1",
    "Something falling like a rock": "2",
    "Putting something next to something": "3",
    "Tipping something over, so it falls": "4",
}
TEMPLATES = {
    0: "Putting [something] on a surface",
    1: "Pushing [something] from left to right",
    2: "[Something] falling like a rock",
    3: "Putting [something] next to [something]",
    4: "Tipping [something] over, so it falls",
}
# id -> (class, frames); ids as strings, as in the release
TRAIN = {"101": (0, 24), "102": (1, 24), "103": (2, 24), "104": (3, 24), "105": (4, 24), "106": (0, 30)}
VAL = {"201": (1, 24), "202": (4, 20)}
TEST = {"301": (2, 24)}


def entry(video_id: str, label: int) -> dict:
    return {"id": video_id, "label": f"caption of {video_id}", "template": TEMPLATES[label],
            "placeholders": ["a pen"] * TEMPLATES[label].count("[")}


def write_release(root: Path, *, names: str = "qualcomm") -> Path:
    """A small SSv2 release in the download's layout: ``labels/`` (Qualcomm's names) or the
    top folder (20BN's ``something-something-v2-*.json``), and ``20bn-something-something-v2/``."""
    folder, prefix = (root / "labels", "") if names == "qualcomm" else (root, "something-something-v2-")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}labels.json").write_text(json.dumps(LABELS, indent=1))
    (folder / f"{prefix}train.json").write_text(json.dumps([entry(i, c) for i, (c, _) in TRAIN.items()]))
    (folder / f"{prefix}validation.json").write_text(json.dumps([entry(i, c) for i, (c, _) in VAL.items()]))
    (folder / f"{prefix}test.json").write_text(json.dumps([{"id": i} for i in TEST]))
    class_names = list(LABELS)
    (folder / "test-answers.csv").write_text("".join(f"{i};{class_names[c]}\n" for i, (c, _) in TEST.items()))
    for video_id, (_, frames) in {**TRAIN, **VAL, **TEST}.items():
        write_video(root / "20bn-something-something-v2" / f"{video_id}.webm", frames)
    return root


def write_audio(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """A sound file with no video stream at all."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        samples = av.AudioFrame.from_ndarray(np.zeros((1, int(seconds * rate)), np.int16), format="s16", layout="mono")
        samples.rate = rate
        for packet in [*stream.encode(samples), *stream.encode()]:
            container.mux(packet)
    return path
