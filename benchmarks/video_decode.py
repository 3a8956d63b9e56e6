"""Video decoding throughput: clips per second out of a DataLoader, for training and test sampling.

Encodes ``--videos`` short VP9 .webm clips shaped like Something-Something-v2's (``--frames``
frames at 12 fps, ``--width`` x ``--height``; a textured scene panning and a bright square
moving across it, so the codec has real motion to code) into a temporary folder, then reads
them all through `video-folder` and a DataLoader:

* ``train``: 16 random segment frames, random resized crop to 224 (VideoMAE's fine-tuning);
* ``test``: 2 clips x 3 crops (VideoMAE's SSv2 test views: one decode, six views);
* ``decode only``: the training read without crop, resize or normalisation, in the main process;
* ``control``: items that only burn a fixed CPU time, to show what workers can gain on the
  machine at that moment (a shared machine may have no idle core to give them);

``train``, ``test`` and ``control`` each with 0 workers (decoding in the main process) and
``--workers`` worker processes. One pass over all videos is one timed call; the passes of the
seven candidates are interleaved and the figure is the median over ``--rounds``. Every process
runs one thread (torch and FFmpeg), so workers are the only parallelism. A pass with workers
includes starting them, as an epoch does.

Example: ``OMP_NUM_THREADS=1 python benchmarks/video_decode.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see block_speed.py

import argparse  # noqa: E402
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import interleaved_times, markdown_table, setup_threads, summarize, write_results  # noqa: E402

FPS = 12
CONTROL_CPU_S = 0.05  # CPU seconds of one item of the control


class BusyItems(torch.utils.data.Dataset):
    """The control: items that cost a fixed CPU time and carry nothing. Its speed-up with
    workers is what this machine's idle cores allow right now, whatever the decoder does."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        start = time.process_time()
        while time.process_time() - start < CONTROL_CPU_S:
            pass
        return torch.zeros(1)
SAMPLINGS: dict[str, dict[str, Any]] = {
    "train": dict(train=True),
    "test": dict(train=False, num_clips=2, num_crops=3),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=24, help="videos encoded and read per pass")
    p.add_argument("--frames", type=int, default=48, help="frames per video (SSv2 averages about 45)")
    p.add_argument("--width", type=int, default=427)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--num-frames", type=int, default=16, help="frames per clip")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--workers", type=int, default=2, help="worker processes of the second setting")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5, help="timed passes per candidate (interleaved)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--name", default="video_decode", help="results file stem")
    return p.parse_args(argv)


def encode_videos(folder: Path, count: int, frames: int, width: int, height: int) -> None:
    """``count`` VP9 clips under ``folder/<class>/``, deterministic, each a different scene."""
    yy, xx = np.mgrid[0:height, 0 : width + frames * 4].astype(np.float32)
    for i in range(count):
        rng = np.random.default_rng(i)
        waves = (xx * rng.uniform(0.01, 0.1) + yy * rng.uniform(0.01, 0.1) + rng.uniform(0, 6) for _ in range(3))
        scene = sum(np.sin(w) for w in waves)
        base = np.clip(128 + 40 * scene[..., None] * rng.uniform(0.5, 1.0, 3), 0, 255).astype(np.uint8)
        path = folder / f"class_{i % 4}" / f"{i}.webm"
        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libvpx-vp9", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"deadline": "realtime", "cpu-used": "8"}  # fast to write; decoding is what is timed
            for k in range(frames):
                frame = np.ascontiguousarray(base[:, k * 4 : k * 4 + width])
                x = (k * width) // frames
                frame[height // 3 : height // 3 + 40, x : x + 40] = 250
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def candidates_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.webm"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_threads(1)
    from lm4vis.data.video import build_video_folder, read_frames, segment_indices

    with tempfile.TemporaryDirectory(prefix="lm4vis-video-bench-") as tmp:
        root = Path(tmp)
        encode_videos(root, args.videos, args.frames, args.width, args.height)
        size_mb = sum(p.stat().st_size for p in root.rglob("*.webm")) / 2**20
        candidates = {}
        for sampling, options in SAMPLINGS.items():
            ds = build_video_folder("all", str(root), num_frames=args.num_frames, image_size=args.image_size,
                                    decode_threads=1, **options)
            for workers in (0, args.workers):
                def one_pass(ds=ds, workers=workers) -> None:
                    loader = DataLoader(ds, batch_size=args.batch, num_workers=workers, collate_fn=ds.collate)
                    for batch in loader:
                        assert not batch["skipped"], batch["skipped"]
                candidates[(sampling, workers)] = one_pass
        # FFmpeg's share: the training read without crop, resize or normalisation
        files, pick = candidates_files(root), lambda n: segment_indices(n, args.num_frames, 0.5)

        def decode_only() -> None:
            for path in files:
                read_frames(path, pick, threads=1)

        candidates[("decode only", 0)] = decode_only
        for workers in (0, args.workers):
            def control(workers=workers) -> None:
                for _ in DataLoader(BusyItems(args.videos), batch_size=args.batch, num_workers=workers):
                    pass
            candidates[("control", workers)] = control
        # The machine's speed in the same rounds (one thread, fp32 1024^3), to read the rates against.
        square = [torch.randn(1024, 1024, generator=torch.Generator().manual_seed(k)) for k in range(2)]
        timed = {f"{s}/{w}": fn for (s, w), fn in candidates.items()}
        timed["gemm"] = lambda: square[0] @ square[1]
        times = interleaved_times(timed, args.rounds, args.warmup)
        gemm_gflops = 2 * 1024**3 / (summarize(times["gemm"]["wall"])["median_ms"] / 1e3) / 1e9

    rows, results = [], []
    for (sampling, workers) in candidates:
        wall = summarize(times[f"{sampling}/{workers}"]["wall"])
        per_second = args.videos / (wall["median_ms"] / 1e3)
        options = SAMPLINGS.get(sampling, {})
        views = options.get("num_clips", 1) * options.get("num_crops", 1)
        rows.append([sampling, views, workers, per_second, args.videos / (wall["q3_ms"] / 1e3),
                     args.videos / (wall["q1_ms"] / 1e3), wall["median_ms"] / args.videos])
        results.append({"sampling": sampling, "views": views, "workers": workers, "clips_per_s": per_second, **wall})
    title = (f"Video decoding, {args.videos} VP9 .webm videos of {args.frames} frames at {args.width}x{args.height} "
             f"({size_mb:.1f} MiB), clips of {args.num_frames} frames at {args.image_size} px, batch {args.batch}, "
             f"one thread per process, median of {args.rounds} interleaved passes. GEMM here in the same rounds: "
             f"{gemm_gflops:.1f} GFLOP/s fp32 at 1024^3, one thread")
    table = markdown_table(
        ["sampling", "views per video", "workers", "clips/s (median)", "clips/s (slower quartile)",
         "clips/s (faster quartile)", "ms per clip"], rows)
    note = ("A clip is one video read: its frames (train) or its 2 x 3 views (test), cropped, resized and "
            "normalised; 'decode only' is the training read without them (FFmpeg's decoding and the RGB "
            f"conversion of the sampled frames). 'control' items burn {CONTROL_CPU_S * 1e3:.0f} ms of CPU "
            "each and decode nothing: their speed-up with workers is what the machine's idle cores "
            "allowed during this run. Wall time; with workers the main process's CPU time says "
            "nothing, so no CPU column. Passes with workers include starting them.")
    write_results(args.name, {"args": vars(args), "results": results, "gemm_gflops": gemm_gflops, "times_s": times},
                  f"{title}\n\n{table}\n\n{note}")


if __name__ == "__main__":
    main()
