"""`archspec check`: validate specs, infer shapes and evaluate their `expect:` blocks.

Torch-free by design, so that checking every spec of a repository in CI is fast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Diagnostic, SpecError
from .expect import check_expect
from .infer import TypedGraph
from .load import load_file
from .pipeline import compile, paused_gc
from .report import overview
from .validate import is_library, validate, validate_library


@dataclass
class CheckResult:
    """The outcome of checking one spec file."""

    file: str
    name: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    typed: TypedGraph | None = None
    seconds: float = 0.0
    smallest_input: tuple[int, int] | None = None
    smallest_inference: tuple[int, int] | None = None
    deep_checked: dict[str, int] | None = None
    """With `check --deep`: how many nodes torch confirmed, per mode."""
    library_blocks: int | None = None
    """For a library file (blocks and vars only, to be imported): how many blocks it defines."""

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.file, "name": self.name, "ok": self.ok,
                                "seconds": round(self.seconds, 4),
                                "diagnostics": [d.to_json() for d in self.diagnostics]}
        if self.typed is not None:
            data.update({k: v for k, v in overview(self.typed).items() if k not in data and k != "file"})
        if self.smallest_input is not None:
            data["min_input"] = list(self.smallest_input)
        if self.smallest_inference is not None:
            data["min_input_inference"] = list(self.smallest_inference)
        if self.library_blocks is not None:
            data["library_blocks"] = self.library_blocks
        if self.deep_checked is not None:
            data["deep_checked"] = dict(self.deep_checked)
        return data


def check_file(path: str | Path, overrides: dict[str, Any] | None = None,
               want_min_input: bool = False) -> CheckResult:
    """Check one spec; never raises for a fault in the spec itself."""
    start = time.perf_counter()
    result = CheckResult(file=str(path))
    try:
        with paused_gc():
            source = load_file(path)
            if is_library(source):
                result.sources = {source.file: source.text}
                result.library_blocks = len(validate_library(source))
                result.seconds = time.perf_counter() - start
                return result
            spec = validate(source, overrides or {})
            result.name, result.sources = spec.name, spec.sources
            result.typed = compile(spec)
            result.diagnostics += check_expect(result.typed)
            if want_min_input:
                result.smallest_input = result.typed.smallest_input()
                result.smallest_inference = result.typed.smallest_input(inference=True)
    except SpecError as exc:
        result.diagnostics += exc.diagnostics
        result.sources.update(exc.sources)
    result.seconds = time.perf_counter() - start
    return result


def collect(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Every `*.yaml`/`*.yml` file named or found under the given folders, sorted; and the missing paths."""
    found: list[Path] = []
    missing: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file())
        elif p.is_file():
            found.append(p)
        else:
            missing.append(str(p))
    unique = list(dict.fromkeys(found))
    return unique, missing
