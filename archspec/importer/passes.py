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
    if GROUPED in node.meta:
        return node.meta[GROUPED]
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


GROUPED = "archspec_grouped"
"""node.meta key of a leaf module run on groups of positions formed around it: its `Grouped` invocation."""
_MADE = "archspec_made_permute"
"""node.meta key of a permute `ungroup_partitions` wrote."""
CALL = "archspec_call"
"""node.meta key of a call a pass wrote: the `OpCall` it is."""
_RESHAPES = {"reshape", "view", "permute", "transpose", "swapaxes", "flatten", "unflatten", "contiguous"}


def ungroup_partitions(gm: Any) -> None:
    """A leaf module that computes an op with a `grouping` (MaxViT's attention) on N×G×T×C groups that a
    partition formed from an N×C×H×W map and a departition undoes, with calls between that act on each position
    alone (layer norm, linear, activation, add, drop_path), is read on the channels-last map instead: the
    partition becomes `permute(0, 2, 3, 1)`, the departition `permute(0, 3, 1, 2)`, the calls between run on
    N×H×W×C, and the module is called through `Grouped` (group, module, ungroup), which is the op's own
    computation. The partition's and departition's reshapes are checked against the op's on an index map."""
    from .leaves import _read_attrs, candidate_ops

    for node in list(gm.graph.nodes):
        if node.op != "call_module" or GROUPED in node.meta:
            continue
        module = gm.get_submodule(node.target)
        ops = [op for op in candidate_ops(type(module).__name__) if op.grouping is not None]
        if not ops:
            continue
        try:
            call = _read_attrs(ops[0], module)
        except (ValueError, TypeError):
            continue
        _ungroup(gm.graph, node, ops[0], call)
    _cancel_permutes(gm.graph)


def _is_reshape(node: Any) -> bool:
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return node.op in ("call_method", "call_function") and name in _RESHAPES and len(_inputs(node)) == 1 and (
        not any(is_param(a) for a in node.all_input_nodes))


def _shape_of(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if hasattr(meta, "shape") else None


def _replay(chain: list[Any], x: Any) -> Any:
    import torch.fx as fx

    values = {_inputs(chain[0])[0]: x}
    for n in chain:
        a, kw = fx.node.map_arg((n.args, n.kwargs), lambda m: values[m])
        values[n] = getattr(a[0], n.target)(*a[1:], **kw) if n.op == "call_method" else n.target(*a, **kw)
    return values[chain[-1]]


def _ungroup(graph: Any, node: Any, op: Any, call: Any) -> None:
    import torch

    from .leaves import OpCall

    # the partition: the reshapes ending where the one-input calls before the module begin
    p_end = node
    while not _is_reshape(p_end):
        ins = _inputs(p_end)
        if len(ins) != 1 or p_end.op == "placeholder":
            return
        p_end = ins[0]
    chain = [p_end]
    while _is_reshape(_inputs(chain[0])[0]) and len(_inputs(chain[0])[0].users) == 1:
        chain.insert(0, _inputs(chain[0])[0])
    grouped = _shape_of(p_end)
    # the longest run of reshapes ending there that starts from an N×C×H×W map (not a departition before it)
    starts = [k for k in range(len(chain)) if len(_shape_of(_inputs(chain[k])[0]) or ()) == 4]
    if not starts or grouped is None or len(grouped) != 4:
        return
    # the region: what reads the groups, up to the reshapes that undo them
    region: list[Any] = []
    todo, seen, stops = [p_end], set(), []
    while todo:
        cur = todo.pop()
        for u in cur.users:
            if u in seen:
                continue
            seen.add(u)
            if _is_reshape(u):
                stops.append(u)
            elif u.op == "output":
                return
            else:
                region.append(u)
                todo.append(u)
    if len(stops) != 1 or node not in region:
        return
    dep = [stops[0]]
    while len(dep[-1].users) == 1 and _is_reshape(next(iter(dep[-1].users))):
        dep.append(next(iter(dep[-1].users)))
    for r in region:  # each acts on each position alone: the groups' leading dimensions are kept
        s = _shape_of(r)
        if s is None or len(s) != 4 or s[:3] != grouped[:3]:
            return
    found = _grouping_of(graph, node, op, call, [chain[k:] for k in starts], dep)
    if found is None:
        return
    group, ungroup, variant, part, dep = found
    source = _inputs(part[0])[0]
    n, c, h, w = _shape_of(source)  # type: ignore[misc]
    with graph.inserting_after(source):
        to_last = graph.call_function(torch.permute, (source, [0, 2, 3, 1]))
    to_last.meta = {**p_end.meta, "tensor_meta": _with_shape(p_end, (n, h, w, c)), _MADE: True,
                    CALL: OpCall("permute", (("dims", (0, 2, 3, 1)),))}
    p_end.replace_all_uses_with(to_last)
    with graph.inserting_after(dep[-1]):
        to_first = graph.call_function(torch.permute, (_inputs(dep[0])[0], [0, 3, 1, 2]))
    to_first.meta = {**dep[-1].meta, _MADE: True, CALL: OpCall("permute", (("dims", (0, 3, 1, 2)),))}
    dep[-1].replace_all_uses_with(to_first)
    for m in [*reversed(dep), *reversed(part)]:
        graph.erase_node(m)
    for r in region:  # each has a 4-d shape (checked above)
        r.meta["tensor_meta"] = _with_shape(r, (n, h, w, r.meta["tensor_meta"].shape[-1]))
    node.meta[GROUPED] = Grouped(group, ungroup, _side(group, h, w, grouped[2]), repr(variant))


def _grouping_of(graph: Any, node: Any, op: Any, call: Any, parts: list[list[Any]], dep: list[Any]) -> Any:
    """(group, ungroup, the op call, the partition's and the departition's reshapes) of the op's grouping (its
    choices: block or grid windows) that the reshapes around the module are, on an index map; None if none is."""
    import torch

    from .leaves import _flag_variants

    module = graph.owning_module.get_submodule(node.target)
    for part in parts:
        src = _shape_of(_inputs(part[0])[0])
        ends = [k for k in range(len(dep)) if _shape_of(dep[k]) == src]
        if src is None or not ends:
            continue
        undo = dep[:ends[0] + 1]
        n, c, h, w = src
        index = torch.arange(n * c * h * w, dtype=torch.float64).reshape(n, c, h, w)
        for variant in _flag_variants(op, call, module):
            try:
                group, ungroup = op.grouping(op.attrs(**dict(variant.values)))
                formed = group(index.permute(0, 2, 3, 1))
                if torch.equal(_replay(part, index), formed) and torch.equal(_replay(undo, formed), index):
                    return group, ungroup, variant, part, undo
            except Exception:  # noqa: BLE001 - a grouping that does not fit this map is not the one
                continue
    return None


def _side(group: Any, h: int, w: int, tokens: int) -> int:
    """The side of the smallest square map from 12 up (the numeric check's) that the grouping forms into groups of
    as many tokens as here; the map's own where none is."""
    import torch

    for k in range(min(12, h, w), min(h, w) + 1):
        try:
            if group(torch.zeros(1, k, k, 1)).shape[2] == tokens:
                return k
        except RuntimeError:
            continue
    return max(h, w)


def _with_shape(node: Any, shape: tuple[int, ...]) -> Any:
    import torch

    meta = node.meta["tensor_meta"]
    return meta._replace(shape=torch.Size(shape))


class Grouped:
    """A leaf module's call on the groups formed around it: `(module, x)` groups N×H×W×C, calls, ungroups. `side`:
    the largest H and W a numeric check on a smaller map may take (the groups must still form)."""

    def __init__(self, group: Any, ungroup: Any, side: int, key: str):
        self.group, self.ungroup, self.side, self.key = group, ungroup, side, f"grouped {key}"

    def __call__(self, module: Any, x: Any) -> Any:
        return self.ungroup(module(self.group(x)), x.shape[1], x.shape[2])


def _cancel_permutes(graph: Any) -> None:
    """Two permutes this pass wrote in a row that give the input back (a departition's and the next partition's)
    are removed."""
    for node in list(graph.nodes):
        if getattr(node, "_erased", False) or not node.meta.get(_MADE):
            continue
        prev = node.args[0]
        if not (getattr(prev, "meta", {}).get(_MADE) and len(prev.users) == 1):
            continue
        a, b = _dims(prev), _dims(node)
        if a is not None and b is not None and len(a) == len(b) and [a[i] for i in b] == list(range(len(a))):
            node.replace_all_uses_with(prev.args[0])
            graph.erase_node(node)
            graph.erase_node(prev)


def _dims(node: Any) -> list[int] | None:
    dims = node.args[1] if len(node.args) == 2 and isinstance(node.args[1], (list, tuple)) else node.args[1:]
    return list(dims) if all(isinstance(d, int) for d in dims) else None
