"""Rewrites of a traced graph (shapes known) into the form the module tree is read from.

- `single_outputs`: a leaf module whose result is a tuple read at one index (`nn.MultiheadAttention`'s
  `x, _ = attn(x, x, x, need_weights=False)`) is one node giving that item.
- `mark_params`: a node computed from parameters alone (`class_token.expand(n, -1, -1)`) is part of the
  parameter its reader uses, not a layer.
- `fuse_runs`: a run of calls that no op computes alone but one op computes together (ViT's
  `x.reshape(n, d, h * w).permute(0, 2, 1)` is `to_tokens`) is one call of that op's function.
"""

from __future__ import annotations

import operator
from typing import Any

PARAM = "archspec_param"
"""node.meta key: the node is computed from parameters or buffers alone."""
ITEM = "archspec_item"
"""node.meta key of a leaf call whose result is item `k` of what the module returns."""


def is_param(node: Any) -> bool:
    return node.op == "get_attr" or bool(node.meta.get(PARAM))


def single_outputs(graph: Any) -> None:
    """A leaf module returning a tuple of which one item is read becomes a node giving that item; the
    items nothing reads are dropped. The call keeps its arguments: `invocation` replays it."""
    for node in list(graph.nodes):
        if node.op != "call_module" or not node.users:
            continue
        users = list(node.users)
        if not all(u.op == "call_function" and u.target is operator.getitem and isinstance(u.args[1], int)
                   for u in users):
            continue
        read = [u for u in users if u.users]
        if len(read) != 1:
            continue
        for u in users:
            if u is not read[0]:
                graph.erase_node(u)
        item = read[0]
        node.meta = {**node.meta, "tensor_meta": item.meta.get("tensor_meta"), ITEM: item.args[1]}
        item.replace_all_uses_with(node)
        graph.erase_node(item)


def invocation(node: Any) -> Any:
    """How the graph calls a leaf module where that is not `module(x)`: a function `(module, x)` replaying the
    call with `x` for every input (`attn(x, x, x, need_weights=False)[0]`); None for a plain call."""
    item = node.meta.get(ITEM)
    if len(node.args) == 1 and not node.kwargs and item is None:
        return None

    return Invocation(node.args, node.kwargs, item)


class Invocation:
    """A leaf module's call as the graph makes it, every input `x`; `key` tells two equal calls apart."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any], item: int | None):
        import torch.fx as fx

        self.args, self.kwargs, self.item = args, kwargs, item
        self.key = repr(fx.node.map_arg((args, kwargs), lambda n: "x")) + f"[{item}]"

    def __call__(self, module: Any, x: Any) -> Any:
        import torch.fx as fx

        args, kwargs = fx.node.map_arg((self.args, self.kwargs), lambda n: x)
        out = module(*args, **kwargs)
        return out if self.item is None else out[self.item]


def mark_params(graph: Any) -> None:
    """Mark every call whose inputs are all parameters, buffers or such calls (no path from the input)."""
    for node in graph.nodes:
        if node.op in ("call_function", "call_method") and node.all_input_nodes and all(
                is_param(a) for a in node.all_input_nodes):
            node.meta[PARAM] = True


def param_reads(node: Any) -> tuple[Any, dict[Any, Any]]:
    """The one parameter (`get_attr` node) the node's parameter arguments are computed from, and for each such
    argument a function of the parameter's value giving it; (None, {}) where they read several."""
    import torch.fx as fx

    roots: set[Any] = set()

    def walk(n: Any) -> None:
        if n.op == "get_attr":
            roots.add(n)
        else:
            for a in n.all_input_nodes:
                walk(a)

    args = [a for a in node.all_input_nodes if is_param(a)]
    for a in args:
        walk(a)
    if len(roots) != 1:
        return None, {}
    root = next(iter(roots))

    def value(n: Any, p: Any) -> Any:
        if n is root:
            return p
        a, kw = fx.node.map_arg((n.args, n.kwargs), lambda m: value(m, p))
        return getattr(a[0], n.target)(*a[1:], **kw) if n.op == "call_method" else n.target(*a, **kw)

    return root, {a: (lambda p, a=a: value(a, p)) for a in args}


def fuse_runs(graph: Any, mapped: Any) -> None:
    """Each call `mapped(node)` says no op computes alone, with the calls of one input around it (each the only
    reader of the one before, in the same module), is tried as a run: the longest run containing it that an
    op of no attributes computes (on inputs of the traced shape) becomes one call of that op's function."""
    for node in list(graph.nodes):
        if getattr(node, "_erased", False) or not _one_input_call(node) or mapped(node):
            continue
        run = _run_around(node)
        k = run.index(node)
        spans = sorted(((i, j) for i in range(k + 1) for j in range(k + 1, len(run) + 1) if j - i >= 2),
                       key=lambda s: s[0] - s[1])
        for i, j in spans:
            fn = _op_function(run[i:j])
            if fn is not None:
                _replace(graph, run[i:j], fn)
                break


def _inputs(node: Any) -> list[Any]:
    return list(dict.fromkeys(a for a in node.all_input_nodes if not is_param(a)))


def _one_input_call(node: Any) -> bool:
    return node.op in ("call_function", "call_method") and not is_param(node) and len(_inputs(node)) == 1 and (
        not any(is_param(a) for a in node.all_input_nodes)) and "tensor_meta" in node.meta


def _stack(node: Any) -> list[str]:
    return [p for p, _ in node.meta.get("nn_module_stack", {}).values()]


def _run_around(node: Any) -> list[Any]:
    run = [node]
    while True:
        prev = _inputs(run[0])[0]
        if not _one_input_call(prev) or len(prev.users) != 1 or _stack(prev) != _stack(node):
            break
        run.insert(0, prev)
    while len(run[-1].users) == 1:
        nxt = next(iter(run[-1].users))
        if not _one_input_call(nxt) or _stack(nxt) != _stack(node):
            break
        run.append(nxt)
    return run


def _op_function(run: list[Any]) -> Any:
    """The `FunctionCall` of the op of no attributes that computes the run, on a random input of its shape."""
    import torch
    import torch.fx as fx

    from ..ops.registry import REGISTRY, FunctionCall, NoAttrs

    meta = _inputs(run[0])[0].meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        return None
    torch.manual_seed(0)
    x = torch.randn(*meta.shape)
    values = {_inputs(run[0])[0]: x}
    try:
        for n in run:
            a, kw = fx.node.map_arg((n.args, n.kwargs), lambda m: values[m])
            values[n] = getattr(a[0], n.target)(*a[1:], **kw) if n.op == "call_method" else n.target(*a, **kw)
    except Exception:  # noqa: BLE001 - a run that does not even run here is left as it is
        return None
    want = values[run[-1]]
    for op in REGISTRY.values():
        if op.attrs is not NoAttrs or op.arity not in (1, None):
            continue
        try:
            out = op.emit(NoAttrs(), [tuple(meta.shape[1:])])
            got = out.fn(x, *out.args, **out.kwargs) if isinstance(out, FunctionCall) and not out.pack else None
        except Exception:  # noqa: BLE001 - an op that refuses this input is not the one
            continue
        if isinstance(got, torch.Tensor) and got.shape == want.shape and torch.equal(got, want):
            return out
    return None


def _replace(graph: Any, run: list[Any], fc: Any) -> None:
    first, last = run[0], run[-1]
    with graph.inserting_after(last):
        new = graph.call_function(fc.fn, (_inputs(first)[0], *fc.args), dict(fc.kwargs))
    new.meta = {**last.meta, "stack_trace": first.meta.get("stack_trace")}
    last.replace_all_uses_with(new)
    for n in reversed(run):
        graph.erase_node(n)
