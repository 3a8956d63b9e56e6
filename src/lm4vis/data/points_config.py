"""Typed configs of the point-cloud datasets and their registrations (light: no torch).

Every point dataset shares `PointDataConfig`: points per cloud, normalisation and Point-BERT's
training augmentations (the fields of `lm4vis.data.points.PointAugment`, one switch each). Those
that read files add the bad-input policy (`PointFileDataConfig`); each release adds its own keys
(ScanObjectNN's ``variant``, ModelNet40's ``use_normals``, the generated ``shapes3d``'s sizes),
so ``data.variant`` on ModelNet40 is an error that lists ModelNet40's keys. One data source,
`lm4vis.data.points.source.PointSource`, serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..registry import register_dataset
from .configs import DataConfig

SHORT_CLOUD = ("resample", "fail")  # `lm4vis.data.points.base.SHORT_CLOUD_POLICIES`
SKIP_OR_FAIL = ("skip", "fail")  # `lm4vis.data.skips.POLICIES`
SCANOBJECTNN_VARIANTS = ("obj_only", "obj_bg", "pb_t50_rs")  # `lm4vis.data.points.scanobjectnn.VARIANTS`
SHAPES3D_ROTATIONS = ("upright", "so3")  # `lm4vis.data.points.shapes3d.ROTATIONS`


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"data.{name}={value!r} is unknown; choose one of {', '.join(choices)}")


@dataclass
class PointDataConfig(DataConfig):
    """Point clouds: how many points, normalisation, and the training augmentations.

    The augmentation defaults are Point-BERT's fine-tuning recipe (scale each axis by
    ``scale``, translate by up to ``translate``, shuffle the point order); PointNet++'s adds
    ``rotate: true``, ``jitter_std: 0.01`` and ``dropout_max: 0.875``.

    Args:
        num_points: points per cloud: larger clouds are reduced by farthest point sampling.
        normalize: centre each cloud and scale it into the unit sphere; None takes the
            dataset's own default (on for the resampled ModelNet40 and users' folders, off for
            the HDF5 releases, which are stored normalised, and for shapes3d).
        augment: apply the training augmentations below (evaluation never does).
        shuffle: permute the points (moves farthest point sampling's start point).
        rotate: rotate by a uniform angle about the dataset's up axis.
        scale: per-axis scale factors drawn from ``[low, high]``; null: none.
        translate: per-axis shift drawn from ``[-translate, translate]``.
        jitter_std: std of Gaussian noise on x, y, z (0: none), clipped at ``jitter_clip``.
        jitter_clip: bound of each jitter offset.
        dropout_max: drop a uniform fraction in ``[0, dropout_max)`` of the points (they become
            copies of the first point, so the cloud keeps its size).
    """

    name: str = "shapes3d"
    num_points: int = 1024
    normalize: bool | None = None
    augment: bool = True
    shuffle: bool = True
    rotate: bool = False
    scale: tuple[float, float] | None = (2.0 / 3.0, 3.0 / 2.0)
    translate: float = 0.2
    jitter_std: float = 0.0
    jitter_clip: float = 0.05
    dropout_max: float = 0.0

    #: The dataset reads files (and so takes a bad-input policy).
    reads_files: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_points <= 0:
            raise ValueError(f"data.num_points={self.num_points} must be positive")
        if self.scale is not None:
            self.scale = tuple(self.scale)
            if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
                raise ValueError(f"data.scale={list(self.scale)} must be [low, high] with 0 < low <= high, or null")
        for key in ("translate", "jitter_std", "jitter_clip"):
            if getattr(self, key) < 0:
                raise ValueError(f"data.{key}={getattr(self, key)} must be >= 0")
        if not 0 <= self.dropout_max < 1:
            raise ValueError(f"data.dropout_max={self.dropout_max} must be in [0, 1)")

    def augment_options(self) -> dict[str, Any] | None:
        """`PointAugment`'s arguments, or None when training is not augmented."""
        if not self.augment:
            return None
        return dict(shuffle=self.shuffle, rotate=self.rotate, scale=self.scale, translate=self.translate,
                    jitter_std=self.jitter_std, jitter_clip=self.jitter_clip, dropout_max=self.dropout_max)

    def builder_options(self) -> dict[str, Any]:
        """The dataset builder's own options (`lm4vis.data.points.build_point_dataset`)."""
        opts: dict[str, Any] = {"num_points": self.num_points}
        if self.normalize is not None:
            opts["normalize"] = self.normalize
        return opts


@dataclass
class PointFileDataConfig(PointDataConfig):
    """Point clouds read from files, with what to do about bad ones (see `lm4vis.data.skips`).

    Args:
        short_cloud: a cloud with fewer than ``num_points`` points: ``resample`` (repeat
            random points; counted in the run summary's ``skipped`` section) or ``fail``.
        nonfinite: a cloud with NaN/Inf coordinates: ``skip`` (dropped and counted) or ``fail``.
        unreadable: a file that cannot be parsed: ``skip`` (dropped and counted) or ``fail``.
    """

    name: str = "point-folder"
    short_cloud: str = "resample"
    nonfinite: str = "skip"
    unreadable: str = "skip"

    reads_files: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("short_cloud", self.short_cloud, SHORT_CLOUD)
        _choice("nonfinite", self.nonfinite, SKIP_OR_FAIL)
        _choice("unreadable", self.unreadable, SKIP_OR_FAIL)


@dataclass
class ModelNet40Config(PointFileDataConfig):
    """ModelNet40 (either release). It has train and test splits only; Point-BERT validates
    on test, which is the default here.

    Args:
        use_normals: add the nx, ny, nz channels (then ``host.in_chans: 6``).
    """

    name: str = "modelnet40-h5"
    val_split: str = "test"
    use_normals: bool = False

    def builder_options(self) -> dict[str, Any]:
        return {**super().builder_options(), "use_normals": self.use_normals}


@dataclass
class ScanObjectNNConfig(PointFileDataConfig):
    """ScanObjectNN's h5 release: train and test splits (validation on test, as Point-BERT).

    Args:
        variant: ``obj_only``, ``obj_bg`` or ``pb_t50_rs`` (the hardest: perturbed boxes,
            rotated and scaled).
    """

    name: str = "scanobjectnn"
    val_split: str = "test"
    variant: str = "obj_bg"

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("variant", self.variant, SCANOBJECTNN_VARIANTS)

    def builder_options(self) -> dict[str, Any]:
        return {**super().builder_options(), "variant": self.variant}


@dataclass
class Shapes3DDataConfig(PointDataConfig):
    """The generated shapes (14 classes; `lm4vis.data.points.shapes3d`). ``data_seed`` fixes
    the shapes, the run seed only the augmentation.

    Args:
        rotation: ``upright`` (turned about the up axis, tilted by at most ``max_tilt``) or
            ``so3`` (any orientation: much harder).
        max_tilt: the largest tilt off vertical, in degrees.
        train_per_class, val_per_class, test_per_class: clouds of each class per split.
    """

    name: str = "shapes3d"
    rotation: str = "upright"
    max_tilt: float = 30.0
    train_per_class: int = 200
    val_per_class: int = 50
    test_per_class: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("rotation", self.rotation, SHAPES3D_ROTATIONS)
        for key in ("train_per_class", "val_per_class", "test_per_class"):
            if getattr(self, key) <= 0:
                raise ValueError(f"data.{key}={getattr(self, key)} must be positive")
        if not 0 <= self.max_tilt <= 180:
            raise ValueError(f"data.max_tilt={self.max_tilt} must be in [0, 180] degrees")

    def builder_options(self) -> dict[str, Any]:
        return {**super().builder_options(), "data_seed": self.data_seed, "rotation": self.rotation,
                "max_tilt": self.max_tilt, "train_per_class": self.train_per_class,
                "val_per_class": self.val_per_class, "test_per_class": self.test_per_class}


#: name -> (config class, one line for listings); the builders are `lm4vis.data.points.POINT_DATASETS`.
POINT_DATASETS: dict[str, tuple[type[PointDataConfig], str]] = {
    "shapes3d": (Shapes3DDataConfig, "generated surfaces, 14 classes, partial views, outliers, object masks"),
    "modelnet40-h5": (ModelNet40Config, "PointNet's modelnet40_ply_hdf5_2048/ (2048 points, 40 classes)"),
    "modelnet40-resampled": (ModelNet40Config, "PointNet++'s modelnet40_normal_resampled/ (10k points + normals)"),
    "scanobjectnn": (ScanObjectNNConfig, "ScanObjectNN h5_files: obj_only / obj_bg / pb_t50_rs, 15 classes"),
    "point-folder": (PointFileDataConfig, "root/<class>/[train|test/]*.ply|off|npy"),
}
for _name, (_config, _description) in POINT_DATASETS.items():
    register_dataset(_name, config=_config, builder="lm4vis.data.points.source:PointSource",
                     description=_description, kind="points")

__all__ = ["PointDataConfig", "PointFileDataConfig", "ModelNet40Config", "ScanObjectNNConfig",
           "Shapes3DDataConfig", "POINT_DATASETS"]
