"""The docs stay true: every error code is documented, and the README's commands work."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"""(?:\.error|\.warning|Diagnostic|ShapeError|ExprError|_Refused)\(\s*["']([a-z]+(?:-[a-z]+)*)["']"""
                  r"""|code(?:: str)? ?= ?["']([a-z]+(?:-[a-z]+)*)["']|error\[([a-z]+(?:-[a-z]+)*)\]""")


def used_codes() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "archspec").rglob("*.py"):
        for match in CODE.finditer(path.read_text()):
            codes.add(next(g for g in match.groups() if g))
    return codes


def test_every_error_code_is_documented():
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", (ROOT / "docs" / "errors.md").read_text(), re.M))
    used = used_codes()
    assert len(used) > 30
    assert used - documented == set(), "codes missing from docs/errors.md"
    assert documented - used == set(), "docs/errors.md lists codes nothing raises"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMING = re.compile(r"\d+(?:\.\d+)? ?(?:ms|s)\b")


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """Every `$ archspec ...` line in a fenced block of the docs, with the output shown under it."""
    found: list[tuple[str, str, list[str]]] = []
    for path in DOCS:
        fenced, output = False, None
        for line in path.read_text().splitlines():
            if line.startswith("```"):
                fenced, output = not fenced, None
            elif fenced and line.startswith("$ archspec "):
                output = []
                found.append((path.name, line[2:], output))
            elif output is not None and line.strip():
                output.append(line)
    return found


def _normal(line: str) -> str:
    return TIMING.sub("<time>", line.rstrip())


@pytest.mark.parametrize("doc, command, shown", documented_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_documented_commands_print_what_the_docs_show(doc, command, shown, tmp_path):
    """Run the command in a scratch folder that has the specs; every line the docs show must appear, in order."""
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    (tmp_path / "docs" / "img").mkdir(parents=True)
    args = shlex.split(command)[1:]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # stdout and stderr interleaved as on a terminal
    out = subprocess.run([sys.executable, "-m", "archspec", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=600, env=env)
    actual = [_normal(line) for line in out.stdout.splitlines()]
    assert "Traceback" not in out.stdout and actual, f"{doc}: `{command}` printed:\n{out.stdout}"
    position = 0
    for line in map(_normal, shown):
        if line == "...":  # the docs left the rest of the output out
            continue
        assert line in actual[position:], f"{doc}: `{command}` no longer prints:\n{line}\n\nit prints:\n" + "\n".join(
            actual)
        position = actual.index(line, position) + 1
