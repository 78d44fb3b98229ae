"""Building blocks of the ops' Python-source forms (`Op.source`): call texts and helper definitions.

Torch-free: a helper definition is read as text from archspec/ops/modules.py,
never imported from it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from ..expr import Bin, Expr, Lit
from .registry import SourceArgs

MODULES = Path(__file__).with_name("modules.py")


def call(fn: str, args: list[str]) -> str:
    """`fn(a, b)` on one line, or one argument a line when that line would be long."""
    one = f"{fn}({', '.join(args)})"
    if len(one) <= 90 or len(args) < 2:
        return one
    inner = ",\n".join("    " + a.replace("\n", "\n    ") for a in args)
    return f"{fn}(\n{inner},\n)"


def ctor(fn: str, a: SourceArgs, first: list[str], keywords: dict[str, str] | None = None) -> str:
    """`fn(*first, kw=...)`: `first` by position, then of the optional arguments in `keywords` (field name:
    the keyword `fn` takes, e.g. `s`: `stride`) those the spec wrote, in that order."""
    given = [(kw, a.arg(f)) for f, kw in (keywords or {}).items()]
    return call(fn, first + [f"{k}={v}" for k, v in given if v is not None])


def plus(*es: Expr) -> Expr:
    """The sum of channel-count expressions."""
    out = es[0]
    for e in es[1:]:
        out = Bin(0, "+", out, e)
    return out


def times(e: Expr, k: int) -> Expr:
    return Bin(0, "*", e, Lit(0, k))


def required(a: SourceArgs, name: str) -> str:
    """The text of an argument the spec must write."""
    text = a.arg(name)
    assert text is not None, f"required argument '{name}' has no text"
    return text


@cache
def helper(name: str, file: str = MODULES.name) -> str:
    """The source of the top-level `def` or `class` `name` in `file` of archspec/ops/ (modules.py by default)."""
    path = MODULES.with_name(file)
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            segment = ast.get_source_segment(text, node)
            assert segment is not None
            return segment
    raise KeyError(f"no definition '{name}' in {path.name}")
