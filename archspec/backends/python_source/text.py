"""Small pieces of Python text: calls wrapped to the line length, attribute paths, names."""

from __future__ import annotations

from typing import Any

from ...ops.source import call
from .exprs import is_attr

__all__ = ["aliases", "assign", "attr", "call", "def_", "describe", "return_last", "unique"]

MAX_LINE = 120

def describe(keys: list[str]) -> str:
    return "the main output tensor" if keys == ["main"] else "the dict {" + ", ".join(repr(k) for k in keys) + "}"


def return_last(lines: list[str], out_var: str) -> list[str]:
    if lines and lines[-1].startswith(f"{out_var} = "):
        return lines[:-1] + ["return " + lines[-1][len(out_var) + 3:]]
    return lines + [f"return {out_var}"]


def unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def aliases(model: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        for choice in getattr(alias, "choices", []):
            if isinstance(choice, str):
                out[choice] = name
    return out


def attr(base: str, name: str) -> str:
    if is_attr(name):
        return f"{base}.{name}"
    return f'{base}.get_submodule("{name}")'


def assign(base: str, name: str, expr: str) -> str:
    if is_attr(name):
        return f"{base}.{name} = {expr}"
    return f'{base}.add_module("{name}", {expr})'


def def_(head: str, params: list[str], ret: str) -> str:
    one = f"{head}({', '.join(params)}) -> {ret}:"
    if len(one) <= MAX_LINE:
        return one
    inner = ",\n".join("        " + p for p in params)
    return f"{head}(\n{inner},\n    ) -> {ret}:"
