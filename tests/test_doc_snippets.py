"""Every ```python block of README.md and docs/*.md runs, so the docs cannot rot.

The blocks of one file run in order in one namespace (a later block may use what an
earlier one defined), in a fresh process whose working folder has `specs/` linked in,
as if the reader had pasted them into Python at the repository's root. A block that is
not meant to run says so on the line before its fence:

    <!-- not run -->          never run (keep these rare)
    <!-- needs: dot -->       run only where graphviz's `dot` program is installed
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*(not run|needs: dot)\s*-->$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    code: str
    marker: str | None


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, with the line of their first code line."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, marker = i + 1, None
            previous = lines[i - 1].strip() if i else ""
            if match := MARKER.match(previous):
                marker = match.group(1)
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            blocks.append(Block(path.relative_to(ROOT).as_posix(), start + 1, "\n".join(lines[start:end]), marker))
            i = end
        i += 1
    return blocks


def runnable(blocks: list[Block]) -> list[Block]:
    has_dot = shutil.which("dot") is not None
    return [b for b in blocks if b.marker is None or (b.marker == "needs: dot" and has_dot)]


RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for block in json.loads(sys.argv[1]):
    print(f"--- {block['doc']}:{block['line']}", flush=True)
    exec(compile("\\n" * (block["line"] - 1) + block["code"], block["doc"], "exec"), namespace)
"""

FILES = [p for p in DOCS if python_blocks(p)]


def test_the_docs_have_python_blocks_and_few_exceptions():
    blocks = [b for p in DOCS for b in python_blocks(p)]
    assert len(blocks) >= 5
    assert sum(b.marker == "not run" for b in blocks) <= 2, "keep blocks that do not run rare"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run(path: Path, tmp_path: Path):
    blocks = runnable(python_blocks(path))
    if not blocks:
        pytest.skip("every block of this file is marked as not to run here")
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    payload = json.dumps([{"doc": b.doc, "line": b.line, "code": b.code} for b in blocks])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", RUNNER, payload], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, f"a python block of {path.name} failed:\n{out.stdout}\n{out.stderr}"
