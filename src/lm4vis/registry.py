"""Registered parts: hosts, tasks and datasets, in the style of timm's ``register_model``.

A config names its parts (``host.kind``, ``task.name``, ``data.name``) and each registered part
brings its own typed config dataclass, so ``host.num_points=1024`` is typed by the class the
config selected and an unknown key is an error listing that class's keys. The engine, the CLI
and the reports learn nothing about a part beyond what it declares here.

A part is registered with its config class and a builder. Built-in parts give the builder as a
``"module:attribute"`` string, imported on first use, so that resolving and checking a config
never imports torch; a user's part passes the callable itself::

    import lm4vis

    @lm4vis.register_host("my-host", config=MyHostConfig)
    def build_my_host(cfg: MyHostConfig, info) -> nn.Module: ...

and names its module in the config (``plugins: [my_module]``) or on the command line
(``--plugin my_module``).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: Modules that register the built-in parts of each kind; imported on the first lookup.
_BUILTINS: dict[str, tuple[str, ...]] = {
    "host": ("lm4vis.hosts.configs", "lm4vis.hosts.pointbert_config", "lm4vis.hosts.videomae_config",
             "lm4vis.hosts.scene_vqa_config", "lm4vis.hosts.dual_encoder_config",
             "lm4vis.hosts.fusion_vqa_config"),
    "task": ("lm4vis.tasks.configs", "lm4vis.tasks.scene_qa_config", "lm4vis.tasks.retrieval_config",
             "lm4vis.tasks.vqa_config"),
    "dataset": ("lm4vis.data.configs", "lm4vis.data.points_config", "lm4vis.data.video_config",
                "lm4vis.data.vqa3d_config", "lm4vis.data.captions_config", "lm4vis.data.vqa_config"),
}


class RegistryError(ValueError):
    """An unknown part or a clashing registration; the message names the fix."""


def resolve(ref: Any) -> Any:
    """``"package.module:attr"`` -> the attribute (imported now); anything else as is."""
    if not isinstance(ref, str):
        return ref
    module, sep, attr = ref.partition(":")
    if not sep:
        raise RegistryError(f"{ref!r} is not of the form 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Part:
    """One registered part.

    Args:
        kind: ``host``, ``task`` or ``dataset``.
        name: what a config calls it (``timm-vit``, ``classification``, ``fashion-mnist``).
        config: its config dataclass.
        builder: callable (or ``"module:attr"``) that builds it; the signature is the kind's:
            hosts ``(cfg, info) -> nn.Module``, tasks ``(cfg, info) -> Task``, datasets
            ``(run_cfg) -> DataSource``.
        extras: further declarations, callables or ``"module:attr"`` strings (a host's
            ``layout`` and ``stages``, and ``analysis`` where `lm4vis analyze` should not score
            pseudo-masks; a dataset's ``description``).
    """

    kind: str
    name: str
    config: type
    builder: Callable[..., Any] | str
    extras: dict[str, Any] = field(default_factory=dict)

    def build(self, *args: Any, **kwargs: Any) -> Any:
        return resolve(self.builder)(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        """A declared extra, imported if it was given by reference."""
        value = self.extras.get(key, default)
        return resolve(value) if isinstance(value, str) and ":" in value else value


class Registry:
    """The parts of one kind.

    Args:
        kind: ``host``, ``task`` or ``dataset``.
        key: the config key that names a part of this kind (``host.kind``, ...).
    """

    def __init__(self, kind: str, key: str) -> None:
        self.kind, self.key = kind, key
        self._parts: dict[str, Part] = {}
        self._loaded = False

    def register(self, name: str, *, config: type, builder: Callable[..., Any] | str | None = None,
                 **extras: Any) -> Any:
        """Register a part; with no ``builder``, returns a decorator for the builder.

        Args:
            name: the name configs use.
            config: the part's config dataclass (a subclass of the kind's base config).
            builder: the builder, or None to use this as a decorator.
            **extras: declarations the engine reads (see `Part`).
        """
        import dataclasses

        if not dataclasses.is_dataclass(config):
            raise RegistryError(f"{self.kind} {name!r}: config must be a dataclass, got {config!r}")

        def add(fn: Callable[..., Any] | str) -> Any:
            old = self._parts.get(name)
            if old is not None and (old.builder, old.config) != (fn, config):
                raise RegistryError(
                    f"a {self.kind} named {name!r} is already registered (by {_origin(old.builder)}); "
                    "choose another name"
                )
            self._parts[name] = Part(self.kind, name, config, fn, dict(extras))
            return fn

        return add if builder is None else add(builder)

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in _BUILTINS[self.kind]:
                importlib.import_module(module)

    def get(self, name: str) -> Part:
        """The part registered as ``name``; unknown names list the known ones."""
        self._load_builtins()
        if name not in self._parts:
            known = sorted(self._parts)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise RegistryError(
                f"{self.key}={name!r} is not a registered {self.kind}{hint}; registered: "
                f"{', '.join(known)}. A part of your own is registered with "
                f"lm4vis.register_{self.kind} in a module named by --plugin MODULE or plugins: [MODULE]"
            )
        return self._parts[name]

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._parts)

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._parts


def _origin(builder: Any) -> str:
    if isinstance(builder, str):
        return builder
    return f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', builder)}"


HOSTS = Registry("host", "host.kind")
TASKS = Registry("task", "task.name")
DATASETS = Registry("dataset", "data.name")

register_host = HOSTS.register
register_task = TASKS.register
register_dataset = DATASETS.register


def load_plugins(modules: Iterable[str]) -> None:
    """Import the modules that register a user's parts.

    Args:
        modules: importable module names: on ``sys.path``, or a ``.py`` file in the working
            directory (which is searched, as ``python -m`` would).
    """
    import os
    import sys

    modules = list(modules)
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    for name in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name.split(".")[0] and e.name != name:
                raise
            raise RegistryError(
                f"plugin module {name!r} was not found; it must be importable (run from its folder "
                "or add that folder to PYTHONPATH)"
            ) from None


__all__ = ["Part", "Registry", "RegistryError", "HOSTS", "TASKS", "DATASETS", "register_host",
           "register_task", "register_dataset", "load_plugins", "resolve"]
