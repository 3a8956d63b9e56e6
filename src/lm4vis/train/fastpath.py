"""``trainer.fast``: the fast path where this machine has it, and a plain fallback where not.

The fast path is bf16 autocast with the frozen LM layers held in bf16, and `torch.compile`.
Each part needs something of the machine:

- **bf16** needs native bf16 arithmetic: a GPU that supports it, or a CPU with AVX512-BF16 or
  AMX. Elsewhere (an AVX2-only CPU), bf16 is emulated and slower than fp32, so fp32 is kept.
- **compile** needs a C++ compiler on a CPU, as inductor does; without one the run stays eager.
  On a CPU without native bf16 the run stays eager too: compiling fp32 measured 5% faster per
  step at ViT-S shapes (README, the block's speed: 1136 vs 1193 ms) and 7% at the image demo's
  (28 vs 30 s an epoch, frozen-lm, one thread), less than the compile itself costs a demo (15 s
  for the block's graphs; minutes for a whole slot host with an empty inductor cache). Without
  ``trainer.fast``, ``trainer.compile=true`` compiles anyway.
- ``trainer.fast_compile: false`` keeps a run eager where it could compile: the demo presets set
  it, because on 2 CPU cores compiling costs more than it saves at their size (an AMD EPYC with
  AVX512-BF16, the 3D VQA demo's frozen-lm run: 10 s an epoch compiled, 12 s eager, after 40 s
  of compiling from a warm inductor cache and 266 s from an empty one).
- ``trainer.fast_autocast: false`` keeps the host in fp32 and holds only the LM layers in bf16:
  the VQA and 3D VQA demos set it, whose hosts are 64-96 wide, where autocast's casts cost more
  than bf16 matmuls save (the 3D VQA demo's frozen-lm run, one thread: 9 s an epoch against 11
  s with autocast; the baseline 6 against 8).

Every preset under ``configs/`` sets ``trainer.fast: true``. ``LM4VIS_FAST=0`` in the
environment turns it off for a process (fp32, eager), so that a result does not depend on which
kind of CPU ran it; the test suite sets it, and tests/train/test_fastpath.py checks the fast path
itself on simulated machines.

`resolve_fast_path` turns ``trainer.fast: true`` into the concrete ``trainer.precision``,
``block.dtype`` and ``trainer.compile`` of this machine, inside `prepare_config`, so the saved
config says what ran. `fast_path_notes` gives the one line a fallback is reported with; the
run summary records precision, compiled and threads.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

#: Set to 0 (or false, off, no) to turn ``trainer.fast`` off in this process.
ENV_FAST = "LM4VIS_FAST"

FAST_PRECISION = "bf16-mixed"
FAST_BLOCK_DTYPE = "bf16"


def native_bf16(accelerator: str = "auto") -> tuple[bool, str]:
    """(does this machine do bf16 natively, what it has), for the accelerator a run uses."""
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        ok = torch.cuda.is_bf16_supported()
        return ok, f"GPU {torch.cuda.get_device_name(0)}" + ("" if ok else " without bf16")
    cpu = torch.cpu
    if getattr(cpu, "_is_amx_tile_supported", lambda: False)():
        return True, "CPU with AMX"
    if getattr(cpu, "_is_avx512_bf16_supported", lambda: False)():
        return True, "CPU with AVX512-BF16"
    return False, f"CPU with {torch.backends.cpu.get_cpu_capability()} only (bf16 would be emulated)"


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would use on a CPU, or None."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and (path := shutil.which(name)):
            return path
    return None


def fast_path_choice(accelerator: str = "auto", compile: bool = True, autocast: bool = True) -> dict[str, Any]:
    """What ``trainer.fast`` gives on this machine: ``precision``, ``block_dtype``, ``compile``
    and ``notes`` (one per part that fell back). ``compile=False`` (``trainer.fast_compile``)
    keeps the run eager where it could compile; ``autocast=False`` (``trainer.fast_autocast``)
    keeps the host in fp32 and only the LM layers in bf16."""
    import torch

    if fast_disabled():
        return {"precision": "32", "block_dtype": None, "compile": False, "hardware": "machine",
                "notes": [f"{ENV_FAST}={os.environ[ENV_FAST]} in the environment: fp32 and eager kept"]}
    bf16, what = native_bf16(accelerator)
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    compiler = None if on_gpu else cpp_compiler()
    notes = []
    if not bf16:
        notes.append(f"no native bf16 on this {what}: fp32 kept")
    can_compile = on_gpu or compiler is not None
    if not can_compile:
        notes.append("no C++ compiler (g++, c++ or clang++; or $CXX) for torch.compile: eager kept")
    elif not (bf16 or on_gpu):
        can_compile = False
        notes.append("eager kept: compiled fp32 was 5-7% faster per step on such a CPU, less than the "
                     "compile costs a demo (trainer.compile=true without trainer.fast compiles anyway)")
    elif not compile:
        can_compile = False
        notes.append("eager kept: trainer.fast_compile is false (compiling costs a run of this size more "
                     "than it saves)")
    if bf16 and not autocast:
        notes.append("host in fp32: trainer.fast_autocast is false (bf16 autocast's casts cost a host this "
                     "narrow more than its matmuls save)")
    return {"precision": FAST_PRECISION if bf16 and autocast else "32",
            "block_dtype": FAST_BLOCK_DTYPE if bf16 else None,
            "compile": can_compile, "hardware": what, "notes": notes}


def fast_disabled() -> bool:
    """Whether ``LM4VIS_FAST`` turns the fast path off in this process."""
    value = os.environ.get(ENV_FAST)
    if value is None:
        return False
    if value.strip().lower() in ("0", "false", "off", "no"):
        return True
    if value.strip().lower() in ("1", "true", "on", "yes", ""):
        return False
    raise ValueError(f"{ENV_FAST}={value!r}: set it to 0 (off) or 1 (on), or unset it")


def _choice(cfg: Any) -> dict[str, Any]:
    """`fast_path_choice` for a config's accelerator and its ``trainer.fast_*`` settings."""
    t = cfg.trainer
    return fast_path_choice(t.accelerator, compile=t.fast_compile, autocast=t.fast_autocast)


def resolve_fast_path(cfg: Any) -> Any:
    """``cfg`` with ``trainer.fast`` made concrete for this machine (unchanged when it is off)."""
    if not cfg.trainer.fast:
        return cfg
    choice = _choice(cfg)
    return cfg.replace({"trainer.precision": choice["precision"], "block.dtype": choice["block_dtype"],
                        "trainer.compile": choice["compile"], "trainer.fast": True})


def fast_path_notes(cfg: Any) -> str | None:
    """The one line a run with ``trainer.fast`` logs: what it took and what fell back."""
    if not cfg.trainer.fast:
        return None
    choice = _choice(cfg)
    took = [f"precision {choice['precision']}", f"LM layers in {choice['block_dtype'] or 'fp32'}",
            "torch.compile" if choice["compile"] else "eager"]
    fell = f"; {'; '.join(choice['notes'])}" if choice["notes"] else ""
    return f"trainer.fast on a {choice['hardware']}: {', '.join(took)}{fell}"


__all__ = ["ENV_FAST", "native_bf16", "cpp_compiler", "fast_disabled", "fast_path_choice", "resolve_fast_path",
           "fast_path_notes"]
