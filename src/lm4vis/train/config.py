"""Typed run configuration: dataclasses, YAML presets with ``base:`` inheritance, overrides.

A run is described by one `RunConfig` (host, block, data, task, optim, trainer, seed, where to
write). The ``host``, ``data`` and ``task`` sections are typed by the part they name
(``host.kind``, ``data.name``, ``task.name``): each registered part brings its own config
dataclass (`lm4vis.registry`), so ``host.num_points=1024`` is typed by the host's class.
Presets are YAML files that may name a ``base:`` preset and override only what differs.
Command-line overrides are ``section.key=value`` strings, typed by the dataclass field they set.
An unknown key anywhere is an error that lists the valid keys of its section: a typo must never
silently train something else. The resolved config is what a run saves as ``config.yaml``, and
resolving a resolved config gives it back unchanged, so configs can be compared on resume.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from ..data.configs import DataConfig, ImageDataConfig
from ..hosts.configs import VARIANTS, BlockConfig, HostConfig, TimmViTConfig
from ..registry import DATASETS, HOSTS, TASKS, RegistryError, load_plugins
from ..tasks.configs import ClassificationConfig, TaskConfig

PRECISIONS = ("32", "32-true", "bf16-mixed", "bf16-true", "16-mixed")
SCHEDULES = ("cosine", "constant")

#: Sections typed by the part they name: base class -> (selecting key, registry).
_SELECTED = {HostConfig: ("kind", HOSTS), DataConfig: ("name", DATASETS), TaskConfig: ("name", TASKS)}
#: Keys that moved to the part they belong to; an old preset gets the new name in its error.
MOVED_KEYS = {
    "optim.label_smoothing": "task.label_smoothing", "optim.mixup": "task.mixup",
    "optim.cutmix": "task.cutmix", "optim.mixup_prob": "task.mixup_prob",
    "optim.mixup_switch_prob": "task.mixup_switch_prob", "optim.randaugment": "data.randaugment",
    "optim.random_erasing": "data.random_erasing",
}
#: Names people type for a key, beyond what difflib finds close.
SYNONYMS = {
    "learning_rate": "lr", "epochs": "max_epochs", "num_epochs": "max_epochs", "bs": "batch_size",
    "batch": "batch_size", "wd": "weight_decay", "workers": "num_workers", "gpus": "devices",
    "model": "name", "dataset": "name", "num_threads": "threads",
}


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the fix."""


@dataclass
class OptimConfig:
    """AdamW, warm-up then cosine, and the DeiT regularisers.

    Args:
        lr: peak learning rate (per ``lr_batch_size`` images when that is set).
        lr_batch_size: when set, the peak rate is ``lr * global_batch / lr_batch_size``
            (DeiT: 5e-4 per 512 images); None uses ``lr`` as is.
        weight_decay: AdamW decay of matrices; norms, biases and the host's
            ``no_weight_decay()`` parameters never decay.
        betas, eps: AdamW moments.
        schedule: ``cosine`` (from the peak down to ``min_lr``) or ``constant``.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        warmup_steps: warm-up length in optimizer steps; overrides ``warmup_epochs``.
        min_lr: floor of the cosine schedule.
        grad_clip: clip the global gradient norm to this value (None: off).
    """

    lr: float = 1e-3
    lr_batch_size: int | None = None
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    warmup_steps: int | None = None
    min_lr: float = 1e-6
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        _positive(self, "optim", "lr")
        if self.lr_batch_size is not None:
            _positive(self, "optim", "lr_batch_size")
        for name in ("weight_decay", "min_lr", "warmup_epochs", "eps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"optim.{name}={getattr(self, name)} must be >= 0")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps={self.warmup_steps} must be >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas={self.betas} must be two numbers in [0, 1)")
        _choice(self, "optim", "schedule", SCHEDULES)
        if self.grad_clip is not None:
            _positive(self, "optim", "grad_clip")


@dataclass
class TrainerConfig:
    """Budget and hardware, passed to `lightning.Trainer`.

    Args:
        max_epochs: epochs to train; the schedule spans them.
        max_steps: stop after this many optimizer steps (-1: no limit); the schedule then
            spans ``min(max_steps, max_epochs * steps_per_epoch)``.
        precision: ``32`` or ``bf16-mixed`` (autocast; ``16-mixed`` needs a GPU).
        accelerator: ``auto``, ``cpu``, ``gpu``, ...
        devices: devices per node, or ``auto``.
        num_nodes: machines.
        strategy: ``auto``, ``ddp``, ``fsdp``, ... (straight to Lightning).
        log_every_n_steps: how often step metrics are written.
        limit_train_batches, limit_val_batches: Lightning's per-epoch batch limits
            (a fraction or a count); None: all.
        val_every_n_epochs: validate every N epochs.
        accumulate_grad_batches: batches per optimizer step.
        progress_bar: show a progress bar.
        compile: `torch.compile` before training: the whole host where no forward hook applies
            an LM block (hosts with slots, baselines), else the LM block only (timm and
            transformers hosts; see `compile_model`). Fuses the norms, activations and residual
            adds that freezing cannot skip: a faster step after a one-off compile (measured
            here: 17 s for the block's first graph with an empty cache, 3-8 s for each further
            one, 0-2 s from inductor's disk cache). Needs a C++ compiler on CPUs.
        threads: torch intra-op threads; None takes the machine's cores. Fixed by config, not
            by the machine's load, so that one command gives one result; recorded in the
            run summary.
        keep_checkpoints: epoch checkpoints kept besides ``last.ckpt``: the best N by the
            task's monitor metric (1: the best one; -1: every epoch, which at the paper's
            schedule with an inline 7B layer means hundreds of GB).
        plateau_window, plateau_tolerance: the plateau rule (`lm4vis.train.plateau`): over
            the last ``plateau_window`` validated epochs the task's monitor metric moved less
            than ``plateau_tolerance``, in the metric's own units (0.005 = half a point of
            top-1). Every run summary says whether and when it held.
        plateau_min_epochs: validated epochs before the plateau rule is judged (0: from the
            first full window): an early flat stretch while the learning rate is high is a
            pause, not the plateau. The demos take three quarters of ``max_epochs``, where a
            cosine schedule has fallen to about 15% of its peak rate (at half, measured: the video
            demo's frozen-lm run stopped at epoch 12 of 20 while its training loss still fell).
        fast: take this machine's fast path (`lm4vis.train.fastpath`): bf16 autocast with the
            LM layers in bf16 where it has native bf16, and torch.compile where it has a C++
            compiler; each part that is missing falls back (fp32, eager) with one line that
            says so. It sets ``precision``, ``compile`` and ``block.dtype``, and the saved
            config holds what was chosen.
        fast_compile: whether ``fast`` compiles where it can. The demo presets set it false:
            on 2 CPU cores compiling costs more than it saves at their size (measured on an
            AMD EPYC with AVX512-BF16, the 3D VQA demo's frozen-lm run: 10 s an epoch compiled
            against 12 s eager, after 40 s of compiling from a warm inductor cache and 266 s
            from an empty one).
        fast_autocast: whether ``fast`` runs the whole model under bf16 autocast (true) or holds
            only the LM layers in bf16 and keeps the host in fp32 (false). The VQA and 3D VQA
            demos set false: their 64-96-wide hosts lose more to autocast's casts than bf16
            matmuls save (measured: the 3D VQA demo's epoch 9 s against 11 s, frozen-lm).
        stop_at_plateau: end the run at the first epoch the plateau rule holds, before
            ``max_epochs`` (the learning-rate schedule still spans ``max_epochs``; the run is
            ``completed`` and its summary says it stopped there).
    """

    max_epochs: int = 10
    max_steps: int = -1
    precision: str = "32"
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    log_every_n_steps: int = 10
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    val_every_n_epochs: int = 1
    accumulate_grad_batches: int = 1
    progress_bar: bool = True
    compile: bool = False
    threads: int | None = None
    keep_checkpoints: int = 1
    plateau_window: int = 3
    plateau_tolerance: float = 0.005
    plateau_min_epochs: int = 0
    stop_at_plateau: bool = False
    fast: bool = False
    fast_compile: bool = True
    fast_autocast: bool = True

    def __post_init__(self) -> None:
        _positive(self, "trainer", "max_epochs")
        if self.plateau_window < 2:
            raise ConfigError(f"trainer.plateau_window={self.plateau_window} must be at least 2 epochs")
        if self.plateau_min_epochs < 0:
            raise ConfigError(f"trainer.plateau_min_epochs={self.plateau_min_epochs} must be 0 or more")
        if not self.plateau_tolerance >= 0:
            raise ConfigError(f"trainer.plateau_tolerance={self.plateau_tolerance} must be 0 or more "
                              "(in the monitor metric's units)")
        if self.threads is not None:
            _positive(self, "trainer", "threads")
        if self.keep_checkpoints < -1:
            raise ConfigError(f"trainer.keep_checkpoints={self.keep_checkpoints} must be -1 (all), 0 or more")
        if self.max_steps != -1:
            _positive(self, "trainer", "max_steps")
        _choice(self, "trainer", "precision", PRECISIONS)
        if isinstance(self.devices, str) and self.devices != "auto":
            raise ConfigError(f"trainer.devices={self.devices!r} must be a count or 'auto'")
        if isinstance(self.devices, int):
            _positive(self, "trainer", "devices")
        for name in ("num_nodes", "log_every_n_steps", "val_every_n_epochs",
                     "accumulate_grad_batches"):
            _positive(self, "trainer", name)
        for name in ("limit_train_batches", "limit_val_batches"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"trainer.{name}={value} must be positive (or null for all)")


@dataclass
class RunConfig:
    """Everything one training run depends on; saved as ``config.yaml`` in the run folder.

    Args:
        host: the host; its class is the one ``host.kind`` registered (default ``timm-vit``).
        block: the LM block variant (see `lm4vis.hosts.configs.BlockConfig`).
        data: the dataset; its class is the one ``data.name`` registered.
        task: what the model is trained to do; its class is the one ``task.name`` registered.
        optim, trainer: see their classes.
        seed: initialisation, data order and augmentation; the same seed gives the same host
            initialisation and the same batches for every variant.
        out_dir: folder that holds run folders.
        run_name: name of this run's folder; None derives ``<dataset>-<variant>-s<seed>``.
        plugins: modules that register a user's own hosts, tasks or datasets, imported before
            the rest of the config is read.
    """

    host: HostConfig = field(default_factory=TimmViTConfig)
    block: BlockConfig = field(default_factory=BlockConfig)
    data: DataConfig = field(default_factory=ImageDataConfig)
    task: TaskConfig = field(default_factory=ClassificationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    out_dir: str = "runs"
    run_name: str | None = None
    plugins: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed} must be >= 0")
        if self.run_name is not None and (not self.run_name or os.sep in self.run_name):
            raise ConfigError(f"run_name={self.run_name!r} must be a plain folder name")
        for section in (self.host, self.data, self.task):
            try:
                section.check_run(self)
            except ConfigError:
                raise
            except ValueError as e:
                raise ConfigError(str(e)) from None

    @property
    def default_run_name(self) -> str:
        return f"{self.data.name}-{self.block.variant}-s{self.seed}"

    # -- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a plain dict; unknown keys are errors naming the valid ones.

        Args:
            data: nested sections as loaded from YAML (no ``base:`` key).
        """
        if isinstance(data, dict):
            load_plugins(data.get("plugins") or [])
        return _build(cls, _normalise(data), "")

    def replace(self, overrides: dict[str, Any] | list[str]) -> RunConfig:
        """A new config with dotted-key overrides applied and everything re-validated.

        Args:
            overrides: ``{"optim.lr": 1e-3}`` or ``["optim.lr=1e-3", ...]``.
        """
        data = self.to_dict()
        apply_overrides(data, overrides)
        return RunConfig.from_dict(data)

    def diff(self, other: RunConfig) -> list[str]:
        """Dotted keys whose values differ between two configs."""
        a, b = _flatten(self.to_dict()), _flatten(other.to_dict())
        return sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))


def threads_for(cfg: RunConfig) -> int:
    """The torch threads of a run: ``trainer.threads``, else the machine's cores (never the
    load average: one command gives one result on a busy and on an idle machine)."""
    if cfg.trainer.threads is not None:
        return cfg.trainer.threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- presets -------------------------------------------------------------------------------------
def configs_dir() -> Path:
    """Where presets are looked up: ``$LM4VIS_CONFIGS`` if set, else the repository's
    ``configs/``, which the wheel ships as the data-only package ``lm4vis.presets``."""
    env = os.environ.get("LM4VIS_CONFIGS")
    if env:
        return Path(env)
    import importlib.util

    spec = importlib.util.find_spec("lm4vis.presets")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    # A source tree on sys.path without an install: src/lm4vis/train/config.py -> configs/
    return Path(__file__).resolve().parents[3] / "configs"


def find_preset(name: str | os.PathLike, relative_to: Path | None = None) -> Path:
    """Path of a preset given as a file path or as a name under ``configs/``.

    Args:
        name: ``configs/x.yaml``, ``x.yaml`` or ``x`` (looked up in ``configs/``).
        relative_to: folder of the file that names this one as its ``base:``.
    """
    text = os.fspath(name)
    candidates = [Path(text)]
    if relative_to is not None:
        candidates.insert(0, relative_to / text)
    for folder in {configs_dir(), *(p.parent for p in configs_dir().glob("**/*.yaml"))}:
        candidates.append(folder / text)
        candidates.append(folder / f"{text}.yaml")
    for path in candidates:
        if path.is_file():
            return path
    available = sorted(p.stem for p in configs_dir().glob("**/*.yaml"))
    close = difflib.get_close_matches(Path(text).stem, available, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise FileNotFoundError(
        f"no config file {text!r}: not a path and not a preset in {configs_dir()}{hint} "
        f"(presets: {', '.join(available) or 'none found'})"
    )


def load_preset_dict(name: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A preset's dict with its ``base:`` chain merged in (child keys win, sections merge).

    Args:
        name: path or preset name.
    """
    path = find_preset(name, _seen[-1].parent if _seen else None).resolve()
    if path in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise ConfigError(f"preset inheritance loops: {chain}; remove one of the base: keys")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    merged = load_preset_dict(base, (*_seen, path))
    _deep_merge(merged, data)
    return merged


def load_config(
    name: str | os.PathLike | None = None, overrides: list[str] | dict[str, Any] | None = None,
    plugins: list[str] | tuple[str, ...] = (),
) -> RunConfig:
    """Resolve a preset (or the defaults) and overrides into a validated `RunConfig`.

    Args:
        name: preset path or name; None starts from the dataclass defaults.
        overrides: ``["optim.lr=1e-3", "block.variant=mlp"]`` or a dotted-key dict.
        plugins: modules registering a user's parts (``--plugin``), added to the config's own
            ``plugins`` so that the saved config names them too.
    """
    load_plugins(plugins)
    data = load_preset_dict(name) if name is not None else {}
    load_plugins(data.get("plugins") or [])  # the preset's own parts type its overrides
    if plugins:
        data["plugins"] = list(dict.fromkeys([*(data.get("plugins") or []), *plugins]))
    if overrides:
        apply_overrides(data, overrides)
    try:
        return RunConfig.from_dict(data)
    except ConfigError as e:
        where = f" (in {name})" if name is not None else ""
        raise ConfigError(f"{e}{where}") from None


#: What ``trainer.fast`` chooses; an override of any of them (without ``trainer.fast``) turns it off.
FAST_PATH_KEYS = ("trainer.precision", "trainer.compile", "block.dtype")


def load_run_config(path: str | os.PathLike) -> RunConfig:
    """Read a run's saved ``config.yaml`` (no inheritance, no overrides).

    Args:
        path: the ``config.yaml`` file.
    """
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    return RunConfig.from_dict(data)


# -- overrides -----------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[str, str]:
    """``"optim.lr=1e-3"`` -> ``("optim.lr", "1e-3")``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"override {text!r} is not of the form section.key=value (e.g. optim.lr=1e-3)"
        )
    return key.strip(), value.strip()


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any]) -> None:
    """Set dotted keys in a nested config dict; values given as text are typed by the field.

    ``plugins`` are applied (and imported) first and the keys that select a part
    (``host.kind``, ``data.name``, ``task.name``) next, so that every other key is typed by
    the class of the part the config ends up naming.

    Args:
        data: nested dict, changed in place.
        overrides: ``["a.b=1", ...]`` (typed by the dataclass field) or ``{"a.b": 1}``. Setting
            one of `FAST_PATH_KEYS` without ``trainer.fast`` turns ``trainer.fast`` off.
    """
    items = list(overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides))
    selectors = {"plugins", "host.kind", "data.name", "task.name", "task"}
    items.sort(key=lambda kv: (kv[0] != "plugins", kv[0] not in selectors))
    for key, value in items:
        parts = key.split(".")
        hint = _field_type(RunConfig, parts, data)
        if isinstance(value, str):
            value = _parse_text(value, Any if hint is None else hint, key)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if isinstance(child, str) and part == "task":  # `task: classification` shorthand
                child = node[part] = {"name": child}
            if not isinstance(child, dict):
                raise ConfigError(f"cannot set {key}: {part} is a value, not a section")
            node = child
        node[parts[-1]] = value
        if key == "plugins":
            load_plugins(value or [])
    keys = {key for key, _ in items}
    if keys & set(FAST_PATH_KEYS) and "trainer.fast" not in keys:
        # A precision, dtype or compile that is set (on the command line, or on a resume) is kept
        # as given: the config's trainer.fast would otherwise choose them over it.
        data.setdefault("trainer", {})["fast"] = False


def _field_type(cls: type, parts: list[str], data: dict[str, Any] | None = None) -> Any:
    """The type hint of a dotted key, or raise listing the valid keys of the section.

    Args:
        cls: the root dataclass.
        parts: the key's path.
        data: the config dict so far, which says which part a selected section is.
    """
    hint: Any = cls
    node: Any = data or {}
    for depth, part in enumerate(parts):
        if dataclasses.is_dataclass(hint):
            hint = _selected_class(hint, node, ".".join(parts[:depth]))
            hints = typing.get_type_hints(hint)
            valid = [f.name for f in dataclasses.fields(hint) if f.init]
            if part not in valid:
                raise _unknown_key(".".join(parts[: depth + 1]), valid)
            hint = hints[part]
            node = node.get(part) if isinstance(node, dict) else None
            if part == "task" and isinstance(node, str):
                node = {"name": node}
        elif _origin(hint) is dict:
            return None  # a free-form dict (host.kwargs): its values are typed as YAML
        else:
            raise ConfigError(f"{'.'.join(parts[:depth])} is a value, not a section: cannot set {'.'.join(parts)}")
    return hint


def _selected_class(hint: type, value: Any, path: str) -> type:
    """For a section typed by the part it names, the registered part's config class."""
    selected = _SELECTED.get(hint)
    if selected is None:
        return hint
    key, registry = selected
    name = value.get(key) if isinstance(value, dict) else None
    if name is None:
        name = hint.__dataclass_fields__[key].default
    try:
        part = registry.get(name)
    except RegistryError as e:
        raise ConfigError(str(e)) from None
    if not (isinstance(part.config, type) and issubclass(part.config, hint)):
        raise ConfigError(
            f"{registry.kind} {name!r} is registered with config {part.config.__name__}, which is not "
            f"a subclass of {hint.__name__}; derive it from lm4vis's {hint.__name__}"
        )
    return part.config


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Shorthands: ``task: classification`` for ``task: {name: classification}``."""
    if isinstance(data, dict) and isinstance(data.get("task"), str):
        data = {**data, "task": {"name": data["task"]}}
    return data


# -- building and checking dataclasses -------------------------------------------------------------
_MISSING = object()


def _build(cls: type, data: Any, path: str) -> Any:
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'the config'} must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise _unknown_key(_join(path, str(unknown[0])), list(fields))
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], _join(path, name))
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        # Host/block configs raise their own ValueErrors: keep the message, add the section.
        text = str(e)
        raise ConfigError(text if path and path in text else f"{path or 'config'}: {text}") from None


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against ``hint`` and convert where lossless (int -> float, list -> tuple)."""
    if isinstance(hint, str):
        raise ConfigError(f"unresolved type hint {hint!r} for {path}")
    if dataclasses.is_dataclass(hint):
        return _build(_selected_class(hint, value, path), value, path)
    origin = _origin(hint)
    if origin is Union:
        args = typing.get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{path} cannot be null")
        errors = []
        # Try str last: "5" for an `int | str` field means the number 5.
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _coerce(value, arg, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{path}={value!r} fits none of the types {_type_name(hint)}")
    if value is None:
        raise ConfigError(f"{path} cannot be null; give a {_type_name(hint)}")
    if hint is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path} must be a number, got {value!r}")
    if hint is str:
        # YAML reads `precision: 32` as a number; the field is text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path} must be text, got {value!r}")
    raise ConfigError(f"{path}: unsupported field type {_type_name(hint)}")


_NULLS = ("none", "null", "~")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _parse_text(text: str, hint: Any, path: str) -> Any:
    """Type a command-line value by the field it sets."""
    origin = _origin(hint)
    if origin is Union:
        args = typing.get_args(hint)
        if type(None) in args and text.lower() in _NULLS:
            return None
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _parse_text(text, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}={text!r} fits none of the types {_type_name(hint)}")
    if hint is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{path}={text!r} must be true or false")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{path}={text!r} must be an integer") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{path}={text!r} must be a number") from None
    if hint is str:
        return text
    if origin in (list, tuple, dict) or hint is Any or dataclasses.is_dataclass(hint):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}={text!r} is not valid YAML: {e}") from None
        if origin in (list, tuple):
            if isinstance(value, str):  # a,b,c
                value = [yaml.safe_load(v) for v in value.split(",")]
            elif not isinstance(value, list):  # one item
                value = [value]
        return value
    raise ConfigError(f"{path}: unsupported field type {_type_name(hint)}")


def _unknown_key(path: str, valid: list[str]) -> ConfigError:
    section, _, key = path.rpartition(".")
    moved = MOVED_KEYS.get(path)
    if moved is not None:
        return ConfigError(f"config key {path!r} is now {moved!r} (it belongs to the {moved.split('.')[0]} section)")
    close = [SYNONYMS[key]] if SYNONYMS.get(key) in valid else difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {_join(section, close[0])}?)" if close else ""
    return ConfigError(
        f"unknown config key {path!r}{hint}; valid keys of {section or 'the top level'}: "
        f"{', '.join(valid)}"
    )


def _origin(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is types.UnionType:
        return Union
    return origin


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = _join(prefix, k)
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v


def _positive(obj: Any, section: str, name: str) -> None:
    value = getattr(obj, name)
    if value is None or value <= 0:
        raise ConfigError(f"{_join(section, name)}={value} must be positive")


def _probability(obj: Any, section: str, name: str) -> None:
    value = getattr(obj, name)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{_join(section, name)}={value} must be in [0, 1]")


def _choice(obj: Any, section: str, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in choices:
        raise ConfigError(f"{_join(section, name)}={value!r} is unknown; choose one of {', '.join(choices)}")


__all__ = ["RunConfig", "DataConfig", "ImageDataConfig", "OptimConfig", "TrainerConfig", "HostConfig",
           "TimmViTConfig", "TaskConfig", "ClassificationConfig", "BlockConfig", "ConfigError", "load_config", "load_run_config", "load_preset_dict", "find_preset",
           "configs_dir", "apply_overrides", "parse_override", "VARIANTS", "threads_for"]
