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


def fit_lines(source: str) -> str:
    """Source with every line longer than MAX_LINE broken inside its widest brackets, one item a line.

    Lines are written whole (a Sequential of a whole DenseNet stage is one expression); breaking them
    after the fact, by Python's own tokenizer, keeps the writers simple and never splits a string.
    """
    import io
    import tokenize

    lines = source.split("\n")
    if all(len(line) <= MAX_LINE for line in lines):
        return source
    inside: set[int] = set()  # lines of multi-line strings and of statements spread over lines: left as written
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.end[0] > tok.start[0]:
            inside.update(range(tok.start[0], tok.end[0] + 1))
        elif tok.type == tokenize.NL:
            inside.add(tok.start[0])
    return "\n".join(_fit(line) if len(line) > MAX_LINE and n not in inside and not line.lstrip().startswith("#")
                     else line for n, line in enumerate(lines, 1))


def _fit(line: str) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    pair = _widest_pair(line)
    if pair is None:
        return line
    start, end = pair
    items = _split_items(line[start + 1:end])
    if not items:
        return line
    inner = indent + "    "
    body = "\n".join(_fit_item(inner + item + ",") for item in items)
    return f"{line[:start + 1]}\n{body}\n{indent}{line[end:]}"


def _fit_item(line: str) -> str:
    return _fit(line) if len(line) > MAX_LINE else line


def _widest_pair(line: str) -> tuple[int, int] | None:
    """Offsets of the outermost bracket pair that encloses the most text, or None."""
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    shift = len(line) - len(line.lstrip())
    stack: list[int] = []
    best: tuple[int, int] | None = None
    for tok in tokens:
        if tok.type != tokenize.OP:
            continue
        pos = tok.start[1] + shift
        if tok.string in "([{":
            stack.append(pos)
        elif tok.string in ")]}" and stack:
            open_ = stack.pop()
            if not stack and (best is None or pos - open_ > best[1] - best[0]):
                best = (open_, pos)
    return best


def _split_items(text: str) -> list[str]:
    """The comma-separated items of a bracket's contents (commas inside nested brackets or strings kept)."""
    import io
    import tokenize

    tokens = list(tokenize.generate_tokens(io.StringIO(text + "\n").readline))
    cuts, depth = [], 0
    for tok in tokens:
        if tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == "," and depth == 0:
                cuts.append(tok.start[1])
    items, last = [], 0
    for cut in cuts:
        items.append(text[last:cut].strip())
        last = cut + 1
    tail = text[last:].strip()
    if tail:
        items.append(tail)
    return items
