"""`draw` backend: graphviz diagrams of a typed graph, one cluster per block instance.

    render(typed, "googlenet.svg", depth=1)            # one box per top-level block
    render(typed, "inception3a.png", focus="inception3a")

Torch-free; `.dot` output needs no graphviz binary.
"""

from __future__ import annotations

from .render import FORMATS, render, to_dot
from .view import DrawError, View, build_view

__all__ = ["FORMATS", "DrawError", "View", "build_view", "render", "to_dot"]
