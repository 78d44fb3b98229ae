"""Write the imported network as spec text: templates under `blocks:`, the body, heads and `expect:`.

Layers become the zoo's idioms: an op or a template call on one line, an nn.Sequential a list (runs of
equal calls as `{repeat: N, splice: [CALL]}`, which keeps the numbering), branches of one input that are
concatenated a `concat:` construct, an item that does not read the item before it `{from: X, body: ...}`.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..ops.registry import REGISTRY
from .leaves import OpCall
from .templates import MISSING, Library, Template, _literal
from .trace import Body, Inst, Item, Tree

Valuer = Callable[[int], str]
"""Slot index → the text written there."""

FLOW_WIDTH = 110
PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def op_call(call: OpCall, value: Valuer, offset: int) -> str:
    """`conv(64, 3, s=2, p=1, bias=false)`: required attributes by position, the others where not default."""
    fields = REGISTRY[call.op].attrs.model_fields
    args = []
    for k, (name, _) in enumerate(call.values):
        text = value(offset + k)
        f = fields[name]
        if f.is_required():
            args.append(text)
        elif text != _literal(f.default):
            args.append(f"{name}={text}")
    return f"{call.op}({', '.join(args)})" if args else call.op


def template_call(t: Template, value: Valuer, offset: int) -> str:
    args = []
    for p in t.params:
        text = value(offset + p.column)
        if p.default is MISSING:
            args.append(text)
        elif text != _literal(p.default):
            args.append(f"{p.name}={text}")
    return f"{t.name}({', '.join(args)})" if args else t.name


class Writer:
    def __init__(self, lib: Library):
        self.lib = lib

    def layer(self, layer: Any, value: Valuer, offset: int) -> Any:
        """The YAML value of a layer: a call string, a list, or a mapping."""
        if isinstance(layer, OpCall):
            return op_call(layer, value, offset)
        if isinstance(layer, Inst):
            t = self.lib.template_of(layer)
            if t is not None:
                return template_call(t, value, offset)
            return self.body(layer.body, value, offset)
        return self.body(layer, value, offset)

    def body(self, body: Body, value: Valuer, offset: int, when: dict[str, str] | None = None) -> Any:
        out: list[tuple[Item, Any]] = []
        for item in body.items:
            v = self.item(item, value, offset)
            if when and item.name in when:
                v = {"when": when[item.name], **v} if isinstance(v, dict) and ("body" in v or "concat" in v) \
                    else {"when": when[item.name], "body": v}
            out.append((item, v))
            offset += self.lib.size(item.layer)
        if body.kind == "list":
            return _repeats([v for _, v in out])
        numbered = _numbered(out)
        if numbered is not None and body.kind == "map":
            return numbered
        mapping = dict(_named(i.name, v, {x.name for x in body.items}) for i, v in out)
        return {"concat": mapping} if body.kind == "concat" else mapping

    def item(self, item: Item, value: Valuer, offset: int) -> Any:
        if item.args is not None:
            args = [a if PLAIN.fullmatch(a) else f"'{a}'" for a in item.args]
            return f"{item.layer.op}({', '.join(args)})"  # type: ignore[union-attr]
        v = self.layer(item.layer, value, offset)
        if item.src is None:
            return v
        src: Any = item.src[0] if len(item.src) == 1 else list(item.src)
        if isinstance(v, dict) and set(v) <= {"concat"}:
            return {"from": src, **v}
        return {"from": src, "body": v}

    def template(self, t: Template) -> dict[str, Any]:
        first = t.instances[0]
        value: Valuer = lambda i: t.text[i]  # noqa: E731
        base = self.lib.size(first.body)
        when = {name: t.text[base + k] for k, name in enumerate(self.lib.optional(self.lib.key(first)))}
        body = self.body(first.body, value, 0, when)
        out: dict[str, Any] = {"doc": f"{first.cls.__module__}.{first.cls.__qualname__}"}
        if t.params:
            out["params"] = [p.name if p.default is MISSING else f"{p.name}={_literal(p.default)}" for p in t.params]
        if isinstance(body, dict) and set(body) == {"concat"}:
            out["concat"] = body["concat"]
        else:
            out["body"] = body
        return out


def _named(name: str, value: Any, taken: set[str]) -> tuple[str, Any]:
    """A key for a module name that is no plain name (RegNet's `block1-0`): a plain one, the name by `name:`."""
    if PLAIN.fullmatch(name):
        return name, value
    key = re.sub(r"[^A-Za-z0-9_]", "_", name)
    key = key if re.match(r"[A-Za-z_]", key) else f"n{key}"
    while key in taken:
        key += "_"
    if isinstance(value, dict) and "body" not in value and set(value) & {"concat", "add"}:
        return key, {"name": name, **value}
    if isinstance(value, dict) and "body" in value:
        return key, {"name": name, **value}
    return key, {"name": name, "body": value}


def _numbered(out: list[tuple[Item, Any]]) -> dict[str, Any] | None:
    """A map of one call under numbered names (DenseNet's `denselayer1` ... `denselayer6`) as a repeat that names
    its copies: `{repeat: 6, start: 1, names: "denselayer{i}", body: dense_layer}`; None for any other map."""
    parts = [re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*?)(0|[1-9]\d*)", item.name) for item, _ in out]
    if len(out) < 2 or any(m is None or i.src is not None or i.args is not None for m, (i, _) in zip(parts, out,
                                                                                                  strict=True)):
        return None
    prefixes = {m.group(1) for m in parts if m}
    numbers = [int(m.group(2)) for m in parts if m]
    call = out[0][1]
    if len(prefixes) != 1 or numbers != list(range(numbers[0], numbers[0] + len(out))) or not isinstance(call, str) \
            or any(v != call for _, v in out):
        return None
    start = {"start": numbers[0]} if numbers[0] else {}
    return {"repeat": len(out), **start, "names": prefixes.pop() + "{i}", "body": call}


def _repeats(values: list[Any]) -> list[Any]:
    """Runs of one call written once: `{repeat: 3, splice: ["block(64)"]}` (the copies keep their numbers)."""
    out: list[Any] = []
    k = 0
    while k < len(values):
        run = 1
        while k + run < len(values) and isinstance(values[k], str) and values[k + run] == values[k]:
            run += 1
        out.append({"repeat": run, "splice": [values[k]]} if run > 1 else values[k])
        k += run
    return out


def spec_text(tree: Tree, lib: Library, name: str, input_shape: tuple[int, ...], params: int, doc: str) -> str:
    w = Writer(lib)
    root_slots = lib.slots(tree.root)
    value: Valuer = lambda i: _literal(root_slots[i])  # noqa: E731
    lines = ["# Written by `archspec import`: the module's names are the layers' names, so its state_dict loads.",
             "archspec: 1", f"name: {name}", f"doc: {_quote(doc)}", f"input: {_flow(list(input_shape))}"]
    ordered = [t for t in lib.templates.values()]
    if ordered:
        lines += ["", "blocks:"]
        for t in ordered:
            lines += _block(t.name, w.template(t), 1)
    lines += ["", "body:"] if isinstance(w.layer(tree.root.body, value, 0), dict) else ["", "body:"]
    lines += _value(w.body(tree.root.body, value, 0), 1)
    if tree.heads:
        lines += ["", "heads:"]
        for h in tree.heads:
            slots = lib.slots(h.layer) if isinstance(h.layer, Inst) else [v for _, v in h.layer.values] \
                if isinstance(h.layer, OpCall) else []
            hv: Valuer = lambda i, s=slots: _literal(s[i])  # type: ignore[misc]  # noqa: E731
            head = {"from": h.src, "train_only": True, "body": w.layer(h.layer, hv, 0)}
            lines += _block(h.name, head, 1)
    lines += ["", "expect:", f"  params: {params}", f"  output: {_flow(list(tree.output))}"]
    if tree.head_outputs:
        outs = ", ".join(f"{k}: {_flow(list(v))}" for k, v in tree.head_outputs.items())
        lines.append(f"  outputs: {{{outs}}}")
    return "\n".join(lines) + "\n"


# a small YAML writer: block style, flow style where a value fits on its line --------------------------
def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NOT_TEXT = re.compile(r"[-+]?(\d[\d_]*\.?\d*([eE][-+]?\d+)?|\.\d+|\.inf|\.nan)|true|false|null|~|yes|no|on|off|",
                       re.IGNORECASE)
"""Strings YAML would read as something else: numbers, booleans, null, the empty string."""


def _scalar(v: Any, flow: bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if isinstance(v, str) and _NOT_TEXT.fullmatch(s):  # a module named `0` (an iterated ModuleList's item)
        return _quote(s)
    if flow and any(c in s for c in ",[]{}:#") or s[:1] in "!&*?|>%@`'\"{[" or ": " in s or " #" in s:
        return _quote(s)
    return s


def _flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v, True)


def _block(key: str, v: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if not isinstance(v, (dict, list)):
        return [f"{pad}{key}: {_scalar(v, False)}"]
    flow = _flow(v)
    if len(pad) + len(key) + 2 + len(flow) <= FLOW_WIDTH and _shallow(v):
        return [f"{pad}{key}: {flow}"]
    return [f"{pad}{key}:"] + _value(v, depth + 1)


def _shallow(v: Any) -> bool:
    """Flow style only for a value without nested mappings of mappings (kept readable on one line)."""
    items = v.values() if isinstance(v, dict) else v
    return all(not isinstance(x, dict) or all(not isinstance(y, (dict, list)) or y == [] or
                                              all(not isinstance(z, (dict, list)) for z in y)
                                              for y in x.values()) for x in items)


def _value(v: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(v, dict):
        return [line for k, x in v.items() for line in _block(str(k), x, depth)]
    if isinstance(v, list):
        out = []
        for x in v:
            if isinstance(x, (dict, list)):
                flow = _flow(x)
                if len(pad) + 2 + len(flow) <= FLOW_WIDTH and _shallow(x if isinstance(x, dict) else {"_": x}):
                    out.append(f"{pad}- {flow}")
                else:
                    inner = _value(x, depth + 1)
                    out.append(f"{pad}- {inner[0].lstrip()}")
                    out += inner[1:]
            else:
                out.append(f"{pad}- {_scalar(x, False)}")
        return out
    return [f"{pad}{_scalar(v, False)}"]
