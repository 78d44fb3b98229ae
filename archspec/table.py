"""A table of exact numbers and how to show it: JSON, CSV and Markdown here, the terminal in the CLI.

Used by `archspec summary` and `archspec diff`. Torch-free.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Callable


def _text(v: Any) -> str:
    return "" if v is None else str(v)


@dataclass(frozen=True)
class Column:
    """A column: `key` in the raw rows, `title` shown, `fmt` from raw value to display text."""

    key: str
    title: str
    fmt: Callable[[Any], str] = _text
    numeric: bool = False


@dataclass
class Table:
    """Raw rows (exact numbers) plus how to show them. Rows may carry keys beyond the columns."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    total_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    indent_key: str | None = None
    """A row key holding a nesting level, for terminals that indent the first column."""

    def cells(self, row: dict[str, Any]) -> list[str]:
        """Display text of a row, one string per column."""
        return [c.fmt(row[c.key]) if row.get(c.key) is not None else "" for c in self.columns]

    def to_json(self) -> dict[str, Any]:
        return {**self.meta, "columns": [{"key": c.key, "title": c.title} for c in self.columns],
                "rows": [_jsonable(r) for r in self.rows], "totals": [_jsonable(r) for r in self.total_rows],
                "notes": self.notes}

    def to_csv(self) -> str:
        """Every data key of every row, exact numbers; total rows last."""
        rows = [_jsonable(r) for r in self.rows + self.total_rows]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, keys, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_cell(r.get(k)) for k in keys})
        return out.getvalue()

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", "", _md_row([c.title for c in self.columns]),
                 _md_row(["---:" if c.numeric else "---" for c in self.columns])]
        lines += [_md_row(self.cells(r)) for r in self.rows]
        lines += [_md_row([f"**{t}**" if t else "" for t in self.cells(r)]) for r in self.total_rows]
        return "\n".join(lines + [""] + [f"- {n}" for n in self.notes]) + "\n"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in row.items() if not k.startswith("_")}


def _csv_cell(v: Any) -> Any:
    if isinstance(v, list):
        return "x".join(str(d) for d in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else v


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_bytes(n: int) -> str:
    return f"{n:,} B ({n / 2**20:.1f} MiB)"
