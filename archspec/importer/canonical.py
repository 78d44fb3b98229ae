"""Each op call under the name the language gives it: `global_avgpool`, not `adaptive_avgpool(1)`.

An op may be another op's call under a name of its own, building the same module (`Op.same_as` in the
registry). A module is read back as the op whose `torch_modules` names its class, so `AdaptiveAvgPool2d(1)`
comes out as `adaptive_avgpool(1)`; the hand-written zoo writes `global_avgpool`, and so does the importer,
after this pass over the module tree.
"""

from __future__ import annotations

from typing import Any

from ..ops.registry import REGISTRY, named_call
from .leaves import OpCall
from .trace import Body, Inst, Tree


def canonical_calls(tree: Tree) -> None:
    """Rename, in place, every op call of `tree` that another op is a name for."""
    for head in tree.heads:
        head.layer = _layer(head.layer)
    _body(tree.root.body)


def _layer(layer: Any) -> Any:
    if isinstance(layer, OpCall):
        return _call(layer)
    _body(layer.body if isinstance(layer, Inst) else layer)
    return layer


def _body(body: Body) -> None:
    for item in body.items:
        item.layer = _layer(item.layer)


def _call(call: OpCall) -> OpCall:
    op = REGISTRY.get(call.op)
    if op is None:
        return call
    name = named_call(call.op, op.attrs.model_validate(dict(call.values)))
    if name is None:
        return call
    named = REGISTRY[name].attrs.model_validate({})
    return OpCall(name, tuple((n, getattr(named, n)) for n in REGISTRY[name].attrs.model_fields))
