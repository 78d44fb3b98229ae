"""The docs stay true: every error code is documented, and the README's commands work."""

from __future__ import annotations

import re
from pathlib import Path

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
