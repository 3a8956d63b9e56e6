"""Lazy package attributes (PEP 562), so that ``import lm4vis`` and the config layer stay light.

Resolving a config, rejecting a typo and printing ``--help`` must not wait for torch (about 3 s
to import here) or Lightning; a package lists what it exports and from which submodule, and the
submodule is imported on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` from ``{name: ".submodule"}``.

    Args:
        package: the package's ``__name__``.
        exports: attribute name -> relative module that defines it.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        # Not cached on the package: an export may share its name with a submodule
        # (`lm4vis.train.compare`), which the import system binds there itself.
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
