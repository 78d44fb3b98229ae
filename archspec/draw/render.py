"""Turn a `View` into graphviz source, and write it as .dot, .svg, .png or .pdf."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Literal

import graphviz

from ..files import atomic_output, same_file
from ..infer import TypedGraph
from . import style
from .view import Cluster, DrawError, View, build_view

FORMATS = (".svg", ".png", ".pdf", ".dot")
PNG_DPI = "144"
NO_DOT = "graphviz's `dot` program is not installed; install it (apt-get install graphviz) or write a .dot file"

RankDir = Literal["TB", "LR"]


def to_dot(typed: TypedGraph, depth: int | None = None, heads: bool = True, rankdir: RankDir = "TB",
           focus: str | None = None) -> graphviz.Digraph:
    """The diagram of `typed` as a `graphviz.Digraph` (no file written, no `dot` run)."""
    if rankdir not in ("TB", "LR"):
        raise DrawError(f"rankdir must be TB or LR, not {rankdir!r}")
    view = build_view(typed, depth=depth, heads=heads, focus=focus)
    g = graphviz.Digraph(name=typed.net.name, comment=f"archspec draw: {view.title}")
    g.attr("graph", rankdir=rankdir, fontname=style.FONT, fontsize=str(style.FONT_SIZE + 2), labelloc="t",
           label=style.graph_label(view), nodesep="0.25", ranksep="0.12", newrank="true",
           bgcolor="white")
    g.attr("node", fontname=style.FONT, fontsize=str(style.FONT_SIZE), margin="0.1,0.03", height="0.3")
    g.attr("edge", fontname=style.FONT, fontsize=str(style.SMALL), fontcolor=style.MUTED, color=style.INK,
           arrowsize="0.6")
    _add_items(g, view, view.top)
    for e in view.edges:
        g.edge(e.tail, e.head, label=f" {e.label} " if e.label else None, style="dashed" if e.dashed else None)
    return g


def _add_items(g: graphviz.Digraph, view: View, items: list[str | Cluster]) -> None:
    for item in items:
        if isinstance(item, Cluster):
            with g.subgraph(name=item.id) as sub:
                sub.attr(label=style.cluster_label(item.title, item.note), labeljust="l", color=style.MUTED,
                         fontsize=str(style.FONT_SIZE), style="rounded,dashed" if item.dashed else "rounded",
                         **{"class": "block"})
                _add_items(sub, view, item.items)
        else:
            g.node(item, **style.box_attrs(view.boxes[item]))


def render(typed: TypedGraph, output: str | os.PathLike[str], depth: int | None = None, heads: bool = True,
           rankdir: RankDir = "TB", focus: str | None = None) -> Path:
    """Draw `typed` to `output` (.svg, .png, .pdf, or .dot which needs no graphviz binary).

    `depth` is the number of levels of blocks drawn: 1 draws each top-level
    block as one box, 2 opens those and draws the blocks inside them as boxes,
    None draws every op. `heads=False` leaves out the heads; `focus` draws one
    block or head only. The file is written atomically (temporary file, rename).
    """
    target = Path(output)
    fmt = _check_target(target, typed)
    g = to_dot(typed, depth=depth, heads=heads, rankdir=rankdir, focus=focus)
    data = g.source.encode() if fmt == "dot" else _run_dot(g, fmt)
    with atomic_output(target) as tmp:
        Path(tmp).write_bytes(data)
    return target


def _check_target(target: Path, typed: TypedGraph) -> str:
    if target.suffix.lower() not in FORMATS:
        raise DrawError(f"unknown format '{target.suffix or target.name}'; write .svg, .png, .pdf or .dot")
    if same_file(target, typed.net.file):
        raise DrawError("refusing to overwrite the spec file itself")
    return target.suffix.lower()[1:]


def _run_dot(g: graphviz.Digraph, fmt: str) -> bytes:
    if fmt == "png":
        g = g.copy()
        g.attr("graph", dpi=PNG_DPI)
    try:
        return g.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DrawError(NO_DOT) from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()
        raise DrawError(f"graphviz's `dot` failed: {detail or exc}") from None
