"""Standalone PyTorch source: typed graph -> a readable `.py` file that needs only `torch`.

Every block template of the spec becomes an `nn.Module` class (CamelCase of its
name) whose constructor takes the template's parameters, plus `in_ch` where the
input channel count varies between its uses; nested templates are nested
classes. Constructor arguments are the spec's expressions over those
parameters (`Cbr(c3r, c3, 3, p=1)`), and `forward` is written out from the
graph. The network itself is one more class, returning what `ArchModule`
returns in each mode, with the same `state_dict` keys.

A class is written from one use of its template and then checked against
every other use: same structure, and every argument and channel count it
computes equals what `infer` found there. A template that fails (uses of
different structure, such as different `repeat:` counts, or a use whose inner
nodes are read from outside) is written out inline at each use instead, with
a comment saying why. The emitted file is deterministic: same graph, same text.
"""

from __future__ import annotations

from ...infer import TypedGraph
from .emitter import Emitter


def emit_python(typed: TypedGraph) -> str:
    """The network as standalone PyTorch source: one class per block template and one for the network."""
    return Emitter(typed).run()


__all__ = ["emit_python"]
