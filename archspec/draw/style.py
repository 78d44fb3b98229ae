"""How boxes look: one fill colour per op kind, HTML-like labels, and the legend."""

from __future__ import annotations

from html import escape

from .view import Box, View

FONT = "Helvetica"
FONT_SIZE = 12
SMALL = 10
INK = "#333333"
MUTED = "#666666"

FILL: dict[str, str] = {
    "conv": "#c6dbef",
    "norm": "#c7e9c0",
    "act": "#fdf3b8",
    "pool": "#fcc5c0",
    "merge": "#dadaeb",
    "linear": "#fdd0a2",
    "attention": "#f2c4de",
    "reshape": "#e5e5e5",
    "regularize": "#d0ece7",
    "tokens": "#e7d4e8",
    "other": "#ffffff",
    "block": "#f4f4f0",
    "input": "#4d4d4d",
    "output": "#4d4d4d",
}
"""Fill per op kind (`Op.kind`), plus collapsed blocks and the input/output markers."""

LEGEND_NAMES = {"block": "block (collapsed)"}


def box_attrs(box: Box) -> dict[str, str]:
    """graphviz node attributes for `box`; `class` (op, block, input, output, split) tags the SVG element."""
    if box.kind == "split":
        spine = {"group": "spine"} if box.spine else {}
        return {"shape": "point", "width": "0.06", "color": INK, "class": "split", "label": "", **spine}
    marker = box.kind in ("input", "output")
    style = ["filled", "rounded"] + (["dashed"] if box.dashed else [])
    attrs = {
        "label": _label(box, marker),
        "shape": "box",
        "style": ",".join(style),
        "fillcolor": FILL.get(box.kind, FILL["other"]),
        "color": INK,
        "tooltip": box.tooltip,
        "class": box.kind if box.kind in ("block", "input", "output") else f"op {box.kind}",
    }
    if box.kind == "block":
        attrs["penwidth"] = "1.6"
    if box.spine:
        attrs["group"] = "spine"
    if marker and box.dashed:
        attrs["fillcolor"], attrs["color"] = "#ffffff", INK
    return attrs


def _label(box: Box, marker: bool) -> str:
    """Ops: their description, as plain text. Blocks: bold name, the call under it, and a small line of shape and
    params. Markers: a bold title over small lines, white on dark (dark on white if training only).

    Name and call are rows of their own: on one row, SVG renderers other than graphviz's own measure the bold
    name differently and run the two together (`conv1cbr(...)`).
    """
    ink = "#ffffff" if marker and not box.dashed else INK
    if box.kind not in ("block", "input", "output"):
        return box.title
    rows, rest = [f'<font color="{ink}"><b>{escape(box.title)}</b></font>'], list(box.lines)
    if box.kind == "block" and rest:
        call = rest.pop(0)
        rows += [f'<font color="{ink}">{escape(call)}</font>'] if call else []
    rows += [f'<font color="{ink}" point-size="{SMALL}">{escape(line)}</font>' for line in rest]
    return ('<<table border="0" cellborder="0" cellpadding="0" cellspacing="2">'
            + "".join(f"<tr><td>{row}</td></tr>" for row in rows) + "</table>>")


def cluster_label(title: str, note: str) -> str:
    """A left-aligned title over a small grey note."""
    return ('<<table border="0" cellpadding="0" cellspacing="1">'
            f'<tr><td align="left"><b>{escape(title)}</b></td></tr>'
            f'<tr><td align="left"><font point-size="{SMALL}" color="{MUTED}">{escape(note)}</font></td></tr>'
            '</table>>')


def graph_label(view: View) -> str:
    """The diagram's title, a note under it, and a legend: one coloured cell per box kind used."""
    used = {b.kind for b in view.boxes.values()}
    names = [(k, LEGEND_NAMES.get(k, k)) for k in FILL if k in used and k not in ("input", "output")]
    cells = [f'<td bgcolor="{FILL[k]}"><font point-size="{SMALL + 1}">{escape(name)}</font></td>'
             for k, name in names]
    if any(b.dashed for b in view.boxes.values()):
        cells.append(f'<td style="dashed"><font point-size="{SMALL + 1}">training only</font></td>')
    legend = (f'<table border="0" cellborder="1" cellspacing="3" cellpadding="3" color="{MUTED}">'
              f'<tr>{"".join(cells)}</tr></table>')
    note = (f'<tr><td><font point-size="{SMALL}" color="{MUTED}">{escape(view.note)}</font></td></tr>'
            if view.note else "")
    return (f'<<table border="0" cellpadding="1" cellspacing="2"><tr><td><b>{escape(view.title)}</b></td></tr>'
            f'{note}<tr><td>{legend}</td></tr></table>>')
