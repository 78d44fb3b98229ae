"""Diagnostics: every fault in a spec is data with a stable code and a location.

A stage never raises on the first fault it sees: it records a `Diagnostic` in a
`Diagnostics` collector and carries on where it can, so that a user sees all
the faults of a file at once. `SpecError` is raised between stages when the
collector holds errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal

Severity = Literal["error", "warning"]

@dataclass(frozen=True)
class Location:
    """A position in a source file; line and col are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, cols: int) -> Location:
        return Location(self.file, self.line, self.col + cols)


@dataclass
class Diagnostic:
    """One fault: what, where, expected vs found, and how to fix it."""

    code: str
    message: str
    loc: Location | None = None
    path: str | None = None
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    notes: list[tuple[Location, str]] = field(default_factory=list)
    severity: Severity = "error"
    span: int = 1
    also: list[str] = field(default_factory=list)
    """Other node paths where the very same fault happens (one template line used many times)."""

    def headline(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        path = f" {self.path}:" if self.path else ""
        return f"{where}{self.severity}[{self.code}]{path} {self.message}"

    def render(self, sources: dict[str, str] | None = None) -> str:
        """Compiler-style text: headline, the source line with a caret, details."""
        lines = [self.headline()]
        excerpt = _excerpt(self.loc, self.span, sources)
        lines += excerpt
        if self.expected is not None:
            lines.append(f"  = expected: {self.expected}")
        if self.found is not None:
            lines.append(f"  = found:    {self.found}")
        for loc, text in self.notes:
            lines.append(f"  = note: {loc}: {text}")
        if self.also:
            shown = ", ".join(self.also[:5]) + (", ..." if len(self.also) > 5 else "")
            places = "place" if len(self.also) == 1 else "places"
            lines.append(f"  = note: the same in {len(self.also)} more {places}: {shown}")
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.loc.file if self.loc else None,
            "line": self.loc.line if self.loc else None,
            "col": self.loc.col if self.loc else None,
            "path": self.path,
            "expected": self.expected,
            "found": self.found,
            "hint": self.hint,
            "notes": [{"location": str(loc), "text": text} for loc, text in self.notes],
            "also": list(self.also),
        }


def _excerpt(loc: Location | None, span: int, sources: dict[str, str] | None) -> list[str]:
    if loc is None or not sources or loc.file not in sources:
        return []
    text_lines = sources[loc.file].splitlines()
    if not 1 <= loc.line <= len(text_lines):
        return []
    text = text_lines[loc.line - 1]
    gutter = " " * len(str(loc.line))
    caret = " " * (loc.col - 1) + "^" * max(1, span)
    return [f"{gutter} |", f"{loc.line} | {text}", f"{gutter} | {caret}"]


class Diagnostics:
    """Collects the diagnostics of one compilation."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def add(self, diag: Diagnostic) -> Diagnostic:
        """Record `diag`; the same fault at the same place again only adds its path to the first one."""
        key = (diag.code, diag.loc, diag.message, diag.expected, diag.found)
        for seen in self.items:
            if diag.path and seen.path and (seen.code, seen.loc, seen.message, seen.expected, seen.found) == key:
                if diag.path != seen.path and diag.path not in seen.also:
                    seen.also.append(diag.path)
                return seen
        self.items.append(diag)
        return diag

    def error(self, code: str, message: str, **kw) -> Diagnostic:
        return self.add(Diagnostic(code, message, **kw))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def raise_if_errors(self, sources: dict[str, str] | None = None) -> None:
        if self.errors:
            raise SpecError(self.items, sources)


class SpecError(Exception):
    """Raised when a spec has errors; carries every diagnostic found so far."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = sources or {}
        super().__init__(self.render())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def render(self) -> str:
        body = "\n\n".join(d.render(self.sources) for d in self.diagnostics)
        n = len(self.errors)
        return f"{body}\n\n{n} error{'s' if n != 1 else ''}"


def did_you_mean(name: str, candidates: list[str] | set[str] | dict) -> str | None:
    """A 'did you mean ...?' hint from the closest candidate names, or None."""
    import difflib

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
