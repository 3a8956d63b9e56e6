"""Video datasets for lm4vis: Something-Something-v2, users' video folders, and motion-mnist.

    from lm4vis.data.video import build_video_dataset
    ds = build_video_dataset("motion-mnist", split="train")
    item = ds[0]            # {"video": float32 [1,16,32,32], "label": int64 [], "index": int64 []}
    loader = DataLoader(ds, batch_size=8, num_workers=2, collate_fn=ds.collate)
    batch["video"]          # float32 [B,C,T,H,W]; batch["skipped"]: {reason: count} of dropped files

Clips are (C, T, H, W); transformers' ``VideoMAEModel`` takes (B, T, C, H, W):
``batch["video"].transpose(1, 2)``. Decoding uses PyAV (``pip install av``).
"""

from .base import LAYOUT, ClipConfig, VideoDataset, VideoDatasetInfo, VideoFileDataset, collate_clips
from .decode import DecodedFrames, VideoDecodeError, read_frames
from .folder import VIDEO_EXTENSIONS, build_video_folder
from .motion_mnist import CLASS_NAMES as MOTION_CLASSES
from .motion_mnist import MotionMNIST, MotionMNISTConfig, build_motion_mnist, reverse_class
from .registry import VIDEO_DATASETS, VideoDatasetSpec, build_video_dataset
from .sampling import clip_offsets, crop_starts, random_offsets, segment_indices
from .ssv2 import build_ssv2, class_of_template, read_labels

__all__ = [
    "LAYOUT", "ClipConfig", "VideoDataset", "VideoDatasetInfo", "VideoFileDataset", "collate_clips",
    "DecodedFrames", "VideoDecodeError", "read_frames", "VIDEO_EXTENSIONS", "build_video_folder",
    "MOTION_CLASSES", "MotionMNIST", "MotionMNISTConfig", "build_motion_mnist", "reverse_class",
    "VIDEO_DATASETS", "VideoDatasetSpec", "build_video_dataset",
    "clip_offsets", "crop_starts", "random_offsets", "segment_indices",
    "build_ssv2", "class_of_template", "read_labels",
]
