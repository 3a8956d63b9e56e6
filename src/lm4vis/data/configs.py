"""Typed data configs and the registrations of the built-in datasets (light: no torch).

`DataConfig` holds what every dataset shares (where, how many, batch sizes, order); a kind of
data extends it with its own keys (`ImageDataConfig`: size, normalisation, augmentation). A
registered dataset names its config class and the builder of its *data source*: an object
built from the run config that resolves data-derived values (normalisation statistics),
describes the data (``info``) and builds each split (see `lm4vis.train.datamodule.DataSource`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import register_dataset

VAL_SPLITS = ("val", "test")
CROPS = ("none", "random-resized", "padded")


def _positive(section: Any, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value is not None and value <= 0:
            raise ValueError(f"data.{name}={value} must be positive")


@dataclass
class DataConfig:
    """What every dataset shares.

    Args:
        name: a registered dataset (see ``lm4vis.registry.DATASETS.names()``).
        root: folder of the dataset files (needed by users' data: imagefolder, idx, ...).
        batch_size: samples per device per training step.
        eval_batch_size: samples per device per validation step; None takes ``batch_size``.
        num_workers: DataLoader worker processes.
        limit_train: keep only the first N training samples (quick runs).
        limit_val: keep only the first N validation samples.
        val_split: ``val`` (carved from train where the source has none) or ``test``.
        data_seed: seed of generated data. Kept apart from the run seed so every seed and every
            variant is measured on the same samples.
    """

    name: str = "fashion-mnist"
    root: str | None = None
    batch_size: int = 64
    eval_batch_size: int | None = None
    num_workers: int = 0
    limit_train: int | None = None
    limit_val: int | None = None
    val_split: str = "val"
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size is None or self.batch_size <= 0:
            raise ValueError(f"data.batch_size={self.batch_size} must be positive")
        if self.eval_batch_size is None:
            self.eval_batch_size = self.batch_size
        _positive(self, "eval_batch_size", "limit_train", "limit_val")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers={self.num_workers} must be >= 0")
        if self.val_split not in VAL_SPLITS:
            raise ValueError(f"data.val_split={self.val_split!r} is unknown; choose one of {', '.join(VAL_SPLITS)}")

    def check_run(self, run: Any) -> None:
        """Cross-section checks against the whole run config (override where needed)."""


@dataclass
class ImageDataConfig(DataConfig):
    """Images: size, normalisation and augmentation.

    Args:
        image_size: side the images are resized to; None takes ``host.img_size``.
        mean, std: per-channel normalisation (0..1 scale); None estimates them from up to
            1000 training images.
        crop: training crop: ``none``, ``random-resized`` (DeiT, scale 0.08-1) or ``padded``
            (pad by ``crop_padding`` and crop back, the small-image recipe).
        crop_padding: padding of the ``padded`` crop, in pixels.
        hflip: probability of a horizontal flip in training.
        randaugment: timm RandAugment string such as ``rand-m9-mstd0.5-inc1``, or None.
        random_erasing: probability of timm's RandomErasing per image.
    """

    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    crop: str = "none"
    crop_padding: int = 4
    hflip: float = 0.0
    randaugment: str | None = None
    random_erasing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "image_size")
        if self.crop not in CROPS:
            raise ValueError(f"data.crop={self.crop!r} is unknown; choose one of {', '.join(CROPS)}")
        for key in ("hflip", "random_erasing"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"data.{key}={getattr(self, key)} must be in [0, 1]")
        if (self.mean is None) != (self.std is None):
            raise ValueError("data.mean and data.std must be given together (or both left None)")
        if self.mean is not None and len(self.mean) != len(self.std):
            raise ValueError(
                f"data.mean has {len(self.mean)} values but data.std has {len(self.std)}; "
                "give one per image channel"
            )
        if self.std is not None and any(s <= 0 for s in self.std):
            raise ValueError(f"data.std={self.std} must be positive")
        if self.randaugment is not None and not self.randaugment.startswith("rand-"):
            raise ValueError(
                f"data.randaugment={self.randaugment!r} is not a timm RandAugment string; "
                "use e.g. 'rand-m9-mstd0.5-inc1' or null"
            )

    def check_run(self, run: Any) -> None:
        img_size = getattr(run.host, "img_size", None)
        if self.image_size is None:
            self.image_size = img_size
        elif img_size is not None and img_size != self.image_size:
            raise ValueError(
                f"data.image_size={self.image_size} but host.img_size={img_size}; "
                "set them to the same size (or leave data.image_size null)"
            )


#: The image datasets of `lm4vis.data.registry`, served through one image data source.
IMAGE_DATASETS: dict[str, str] = {
    "fashion-mnist": "Fashion-MNIST, 28x28 gray, 10 classes (55k/5k/10k)",
    "animal-mnist": "Animal-MNIST silhouettes, 28x28 gray, 10 classes (8k/1k/1k)",
    "cluttered-fashion-mnist": "Fashion-MNIST objects in clutter, 64x64, exact masks",
    "cluttered-animal-mnist": "Animal-MNIST objects in clutter, 64x64, exact masks",
    "imagefolder": "root/[split/]<class>/*.png|jpg (ImageNet layout)",
    "idx": "a directory of MNIST-format IDX files",
    "masks-folder": "root/images/*.png + root/masks/*.png [+ labels.csv]",
}
for _name, _description in IMAGE_DATASETS.items():
    register_dataset(_name, config=ImageDataConfig, builder="lm4vis.data.image_source:ImageSource",
                     description=_description, kind="images")

# -- motion forecasting ----------------------------------------------------------------------------
#: Bad-input policies of the motion loaders (`lm4vis.data.skips.POLICIES`).
POLICIES = ("skip", "fail")
#: Road layouts of the simulator (`lm4vis.data.motion.LAYOUTS`) and the ETH/UCY scenes
#: (`lm4vis.data.motion.SCENES`); a test keeps each equal to the loader's own.
SIM_LAYOUTS = ("intersection", "straight", "curve", "merge")
ETH_UCY_SCENES = ("eth", "hotel", "univ", "zara1", "zara2")


def _policy(section: Any, *names: str) -> None:
    for name in names:
        if getattr(section, name) not in POLICIES:
            raise ValueError(f"data.{name}={getattr(section, name)!r} is unknown; choose skip or fail")


@dataclass
class MotionDataConfig(DataConfig):
    """Motion scenes as polylines (`lm4vis.data.motion`): what every motion dataset shares.

    Args:
        max_agents: most track polylines per scene, the focal agent included; the nearest are
            kept and the rest counted in the run summary (``agents-beyond-max_agents``).
        lane_radius: metres around the focal agent within which lane pieces are kept.
        lane_piece_vectors: lanes longer than this many vectors are split into pieces.
        min_heading_distance: metres of travel the focal heading is measured over.
        keep_in_memory: keep every scene read in this process's memory, for later epochs and
            for the other runs of a ``compare`` in the same process (a cached scene takes ~6 ms
            to read back from its ``.npz``: a third of a small model's step at batch 16). Each
            DataLoader worker keeps its own copy, so leave it off for a large dataset.
        (limit_train / limit_val count scenes; val_split ``test`` is the held-out split.)
    """

    max_agents: int = 64
    lane_radius: float = 50.0
    lane_piece_vectors: int = 9
    min_heading_distance: float = 1.0
    keep_in_memory: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "max_agents", "lane_radius", "lane_piece_vectors", "min_heading_distance")


@dataclass
class SimTrafficDataConfig(MotionDataConfig):
    """The traffic simulator (`lm4vis.data.motion.sim_traffic`): embedded, no download.
    Scene ``i`` of a split depends only on ``(data_seed, split, i)``.

    Args:
        num_train, num_val: scenes in the train and the val (and test) split.
        layouts: road layouts drawn from (intersection, straight, curve, merge).
        obs_len, pred_len, hz: observed and forecast steps, steps per second (Argoverse's).
        other_agents: [min, max] agents spawned besides the focal one.
        noise_std: metres of observation noise.
        partial_prob, dropout_prob: chance that another agent is seen over part of the
            window only, and that it is missed at one step.
        sensor_range: metres beyond which other agents are not seen.
        cache: keep generated scenes in the cache folder (``$LM4VIS_CACHE``, else
            ``~/.cache/lm4vis``): a scene took ~35 ms to simulate here and ~6 ms to read back.
    """

    name: str = "sim-traffic"
    num_train: int = 20_000
    num_val: int = 2_000
    layouts: list[str] = field(default_factory=lambda: list(SIM_LAYOUTS))
    obs_len: int = 20
    pred_len: int = 30
    hz: float = 10.0
    other_agents: list[int] = field(default_factory=lambda: [2, 9])
    noise_std: float = 0.05
    partial_prob: float = 0.3
    dropout_prob: float = 0.05
    sensor_range: float = 80.0
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "num_train", "num_val", "pred_len", "hz", "sensor_range")
        unknown = [name for name in self.layouts if name not in SIM_LAYOUTS]
        if unknown or not self.layouts:
            raise ValueError(f"data.layouts={self.layouts}: choose from {', '.join(SIM_LAYOUTS)}")
        if self.obs_len < 2:
            raise ValueError(f"data.obs_len={self.obs_len} must be at least 2 (a heading needs two steps)")
        if len(self.other_agents) != 2 or not 0 <= self.other_agents[0] <= self.other_agents[1]:
            raise ValueError(f"data.other_agents={self.other_agents} must be [min, max] with 0 <= min <= max")
        if self.noise_std < 0:
            raise ValueError(f"data.noise_std={self.noise_std} must be >= 0 (metres)")
        for name in ("partial_prob", "dropout_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"data.{name}={getattr(self, name)} is a probability: give it in [0, 1]")


@dataclass
class Argoverse1DataConfig(MotionDataConfig):
    """Argoverse 1.1 motion forecasting, read from the release as extracted
    (`lm4vis.data.motion.argoverse1`). ``data.root`` holds ``train/``, ``val/`` and
    ``test_obs/`` (the test split has no futures, so it cannot be ``val_split``).

    Args:
        map_root: the ``map_files`` folder of ``hd_maps.tar.gz``; null for agents only.
        on_bad_focal: ``skip`` (count) or ``fail`` on a scene without exactly one AGENT, or
            whose AGENT misses an observed or future step.
        on_nan: ``skip`` or ``fail`` on a row with a non-finite TIMESTAMP, X or Y.
        cache: keep processed scenes in the cache folder (never next to the release).
    """

    name: str = "argoverse1"
    map_root: str | None = None
    on_bad_focal: str = "skip"
    on_nan: str = "skip"
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _policy(self, "on_bad_focal", "on_nan")
        if not self.root:
            raise ValueError("data.root must name the folder the forecasting_*_v1.1.tar.gz files were "
                             "extracted into (it holds train/, val/, test_obs/)")
        if self.val_split == "test":
            raise ValueError("data.val_split=test: Argoverse 1's test split has no futures to score; "
                             "validate on val and submit test forecasts to the leaderboard")


@dataclass
class EthUcyDataConfig(MotionDataConfig):
    """ETH/UCY pedestrians, leave one scene out, as the Social-GAN release ships them
    (`lm4vis.data.motion.eth_ucy`). ``data.root`` is its ``datasets`` folder; ``scene`` is
    the held-out one: train and val come from the other four, ``val_split: test`` scores the
    held-out scene (the protocol's number).

    Args:
        scene: eth, hotel, univ, zara1 or zara2.
        obs_len, pred_len: observed and forecast steps at 2.5 Hz (the protocol's 8 and 12).
        stride: steps between consecutive windows.
        min_pedestrians: windows with fewer pedestrians seen throughout are left out.
        on_bad_row: ``skip`` (count) or ``fail`` on a line that is not four finite numbers.
    """

    name: str = "eth-ucy"
    scene: str = "eth"
    obs_len: int = 8
    pred_len: int = 12
    stride: int = 1
    min_pedestrians: int = 2
    on_bad_row: str = "skip"
    min_heading_distance: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "obs_len", "pred_len", "stride", "min_pedestrians")
        _policy(self, "on_bad_row")
        if not self.root:
            raise ValueError("data.root must name the Social-GAN release's datasets folder "
                             "(its scripts/download_data.sh)")
        if self.scene not in ETH_UCY_SCENES:
            raise ValueError(f"data.scene={self.scene!r} is unknown; choose one of {', '.join(ETH_UCY_SCENES)}")


MOTION_DATASETS: dict[str, tuple[type[MotionDataConfig], str]] = {
    "sim-traffic": (SimTrafficDataConfig, "simulated traffic at intersections, straights, curves and "
                    "merges; embedded (20k/2k scenes, 2 s observed, 3 s forecast)"),
    "argoverse1": (Argoverse1DataConfig, "Argoverse 1.1 forecasting CSVs [+ HD map XML] (205k/39k scenes)"),
    "eth-ucy": (EthUcyDataConfig, "ETH/UCY pedestrians (Social-GAN release), leave one scene out"),
}
for _name, (_config, _description) in MOTION_DATASETS.items():
    register_dataset(_name, config=_config, builder="lm4vis.data.motion.source:MotionSource",
                     description=_description, kind="motion")

__all__ = ["DataConfig", "ImageDataConfig", "IMAGE_DATASETS", "MotionDataConfig", "SimTrafficDataConfig",
           "Argoverse1DataConfig", "EthUcyDataConfig", "MOTION_DATASETS", "SIM_LAYOUTS", "ETH_UCY_SCENES"]
