"""The whole file: which templates become classes (each checked against every use), header and imports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...errors import Diagnostic, SpecError
from ...expr import Expr, Lit, Var
from ...infer import TypedGraph
from ...ir import INPUT, Scope
from ...ops import REGISTRY
from ...spec import BlockDef
from .body import Body, ClassInfo, channels
from .exprs import RESERVED, camel, pyname
from .text import fit_lines


class Emitter:
    def __init__(self, typed: TypedGraph):
        self.typed = typed
        self.net = typed.net
        self.spec = typed.net.spec
        self.inputs = typed.graph.inputs
        self.index = {n: i for i, n in enumerate(typed.order)}
        self.var_env: dict[str, Expr] = {k: Lit(0, v) for k, v in self.spec.vars.items()}
        self.instances: dict[str, list[Scope]] = {}
        for scope in self.net.scopes.values():
            if scope.block is not None:
                self.instances.setdefault(scope.block, []).append(scope)
        self.subtree: dict[str, list[str]] = {}
        for name in typed.order:
            if name == INPUT:
                continue
            self.subtree.setdefault("", []).append(name)
            parts = name.split("/")
            for i in range(1, len(parts) + 1):
                self.subtree.setdefault("/".join(parts[:i]), []).append(name)
        self.scope_tree: dict[str, list[str]] = {}
        for path in self.net.scopes:
            parts = path.split("/") if path else []
            for i in range(len(parts)):
                self.scope_tree.setdefault("/".join(parts[:i]), []).append(path)
        self._opaque: dict[str, bool] = {}
        self.classes: dict[str, ClassInfo | None] = {}
        self.class_order: list[str] = []
        self.why_inline: dict[str, str] = {}
        self.taken = {"Network"}
        self.helpers: dict[str, None] = {}
        """Top-level definitions the source forms asked for, in the order first asked."""

    # -- facts about the graph ---------------------------------------------------
    def nodes_of(self, path: str) -> list[str]:
        return self.subtree.get(path, [])

    def external(self, nodes: list[str]) -> list[str]:
        inside = set(nodes)
        seen: list[str] = []
        for n in nodes:
            for s in self.inputs[n]:
                if s not in inside and s not in seen:
                    seen.append(s)
        return seen

    def opaque(self, scope: Scope) -> bool:
        """Whether a scope can be one module call: one input, and only its output read from outside."""
        if scope.path not in self._opaque:
            self._opaque[scope.path] = self._is_opaque(scope)
        return self._opaque[scope.path]

    def _is_opaque(self, scope: Scope) -> bool:
        nodes = self.nodes_of(scope.path)
        if not nodes or scope.output is None or len(self.external(nodes)) != 1 or isinstance(scope.input, list):
            return False
        inside = set(nodes)
        g = self.typed.graph.g
        return all(n == scope.output or all(s in inside for s in g.successors(n)) for n in nodes)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.typed.shape(name)

    # -- classes -----------------------------------------------------------------
    def class_for(self, block: str) -> ClassInfo | None:
        if block in self.classes:
            return self.classes[block]
        self.classes[block] = None
        cls = self._build_class(block)
        self.classes[block] = cls
        if cls is not None:
            self.class_order.append(block)
        return cls

    def _build_class(self, block_name: str) -> ClassInfo | None:
        block = self.spec.blocks[block_name]
        insts = self.instances[block_name]
        rep = insts[0]
        ins = [self.external(self.nodes_of(s.path)) for s in insts]
        if any(len(i) != 1 for i in ins):
            self.why_inline[block_name] = "a use reads several inputs"
            return None
        names = {p.name: pyname(p.name) for p in block.params}
        in_name = next(n for n in ("in_ch", "in_channels", "in_ch_") if n not in names.values())
        in_expr = self._in_channels(block, insts, [channels(self.shape(i[0])) for i in ins], names, in_name)
        env = {**self.var_env, **{p: Var(0, py) for p, py in names.items()}}
        body = Body(self, rep, env, in_expr)
        body.walk(block.layer, "", env)
        if not body.build():
            self.why_inline[block_name] = body.failure
            return None
        sig = self.signature(rep)
        for inst, src in zip(insts[1:], ins[1:], strict=True):
            values = {names[p]: v for p, v in (inst.args or {}).items()}
            values[in_name] = channels(self.shape(src[0]))
            if self.signature(inst) != sig or not body.holds(inst.path, values):
                self.why_inline[block_name] = (f"its uses differ in structure ('{rep.path}' and '{inst.path}') "
                                               "in a way its parameters cannot express")
                return None
        ctor = body.ctor()
        in_ch = in_name if in_name in body.ctor_names.used else None
        cls = ClassInfo(self.class_name(block_name), block, [(p.name, names[p.name]) for p in block.params], in_ch,
                     in_name, body.ch[rep.output or ""])
        cls.code, cls.refs = body.class_code(cls, ctor, self.param_types(block, insts)), body.refs
        return cls

    def _in_channels(self, block: BlockDef, insts: list[Scope], chans: list[int | None], names: dict[str, str],
                     in_name: str) -> Expr:
        """How the class writes its input's channel count: `in_name` (a constructor argument) where it varies
        between uses; where it does not, in a block whose output is as wide as its input, the one parameter
        that carries that width in every use (a transformer block's `hidden_dim`, so `nn.LayerNorm(hidden_dim)`
        reads as written by hand; a width that merely equals some argument stays a number), else the number."""
        if len(set(chans)) > 1:
            return Var(0, in_name)
        if any(inst.output is None or channels(self.shape(inst.output)) != chans[0] for inst in insts):
            return Lit(0, chans[0])
        carried = [p.name for p in block.params
                   if all((inst.args or {}).get(p.name) == c for inst, c in zip(insts, chans, strict=True))]
        return Var(0, names[carried[0]]) if len(carried) == 1 else Lit(0, chans[0])

    def class_name(self, block_name: str) -> str:
        name = base = camel(block_name)
        i = 2
        while name in self.taken or name in RESERVED:
            name, i = f"{base}{i}", i + 1
        self.taken.add(name)
        return name

    def param_types(self, block: BlockDef, insts: list[Scope]) -> dict[str, str]:
        types: dict[str, str] = {}
        for p in block.params:
            seen = {type_name(s.args.get(p.name)) for s in insts if s.args is not None}
            if "float" in seen:
                seen.discard("int")
            types[p.name] = " | ".join(sorted(seen))
        return types

    def signature(self, scope: Scope) -> tuple:
        """The structure of a scope's subtree, with names relative to it."""
        nodes = self.nodes_of(scope.path)
        prefix = scope.path + "/" if scope.path else ""
        inside = set(nodes)

        def rel(n: str) -> str:
            return "" if n == scope.path else n[len(prefix):] if n in inside else "<in>"

        sig: list[tuple] = []
        for n in nodes:
            node = self.net.nodes[n]
            sig.append((rel(n), node.op, tuple(rel(s) for s in self.inputs[n]),
                        tuple(len(self.shape(s)) for s in self.inputs[n])))
        for path in self.scope_tree.get(scope.path, []):
            s = self.net.scopes[path]
            if path != scope.path:
                sig.append((path[len(prefix):], s.kind, s.block, s.repeat,
                            self.opaque(s) if s.block is not None else None))
        return tuple(sig)

    # -- the file ----------------------------------------------------------------
    def refuse_ops_without_source(self) -> None:
        """A located error for each op without a Python-source form, at its first use (the others listed)."""
        from ...plugins import owner_of

        uses: dict[str, list[str]] = {}
        for name in self.typed.order:
            node = self.net.nodes.get(name)
            if name != INPUT and node is not None and REGISTRY[node.op].source is None:
                uses.setdefault(node.op, []).append(name)
        faults = []
        for op, paths in uses.items():
            owner = owner_of(op)
            where = f"plugin '{owner}'" if owner is not None else "its registration"
            faults.append(Diagnostic("no-python-source", f"op '{op}' has no Python-source form, so the network "
                                     "cannot be written as a .py file", loc=self.net.nodes[paths[0]].loc,
                                     path=paths[0], also=paths[1:],
                                     hint=f"write it as .pt, .pt2 or .onnx, or give the op a `source` in {where}"))
        if faults:
            raise SpecError(faults, self.net.sources)

    def run(self) -> str:
        self.refuse_ops_without_source()
        root = Body(self, self.net.scopes[""], dict(self.var_env), Lit(0, self.typed.input_shape[0]))
        root.walk(self.spec.body, "", self.var_env)
        for head in self.net.heads.values():
            root.walk(head.layer, head.name, self.var_env)
        if not root.build():
            raise RuntimeError(f"archspec cannot write this network as Python source: {root.failure}")
        if not root.holds("", {}):
            raise RuntimeError("archspec wrote a network whose sizes disagree with the spec (a bug)")
        name = self.class_name(self.net.name + "_net" if camel(self.net.name) in self.taken else self.net.name)
        top = root.network_code(name)
        used = self.used_classes(root.refs)
        code = [self.classes[b].code for b in used] + [top]  # type: ignore[union-attr]
        text = "\n".join(code)
        helpers = [h for h in self.helpers if re.search(rf"\b{_defined(h)}\(", text)]
        parts = [self.header(name) + "\n\n" + imports("\n".join([*helpers, text]))] + helpers
        return fit_lines("\n\n\n".join(parts + code)) + "\n"

    def used_classes(self, refs: set[str]) -> list[str]:
        by_name = {c.name: b for b, c in self.classes.items() if c is not None}
        todo, used = [by_name[r] for r in refs], set()
        while todo:
            b = todo.pop()
            if b not in used:
                used.add(b)
                todo += [by_name[r] for r in self.classes[b].refs]  # type: ignore[union-attr]
        return [b for b in self.class_order if b in used]

    def header(self, name: str) -> str:
        net, typed = self.net, self.typed
        shape = "×".join(str(d) for d in typed.input_shape)
        params, inference = typed.total("params"), typed.total("params", inference=True)
        count = f"{params:,}" + (f" ({inference:,} without the training-only heads)" if inference != params else "")
        lines = [f'"""{self.spec.doc or net.name}', "",
                 f"Generated by archspec from {Path(net.file).name} (network `{net.name}`), needs only torch.",
                 f"Input: N×{shape}. Parameters: {count}."]
        if self.spec.overrides:
            lines.append("Variables set: " + ", ".join(f"{k}={v!r}" for k, v in self.spec.overrides.items()) + ".")
        lines += [f"`{name}().state_dict()` has the keys of the archspec module, so weights load both ways "
                  "with strict=True.", '"""']
        return "\n".join(lines)


def _defined(helper: str) -> str:
    """The name a helper definition defines."""
    found = re.match(r"(?:def|class) (\w+)", helper)
    assert found is not None, f"a helper must be one def or class: {helper[:40]!r}"
    return found.group(1)


def imports(code: str) -> str:
    """The imports the generated code uses, and no others."""
    lines = ["from __future__ import annotations", ""]
    if re.search(r"\bmath\.\w+\(", code):
        lines.append("import math")
    if re.search(r"\bOrderedDict\(", code):
        lines.append("from collections import OrderedDict")
    if lines[-1] != "":
        lines.append("")
    lines.append("import torch")
    if re.search(r"\bF\.\w+\(", code):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    return "\n".join(lines)


def type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (list, tuple)):
        return "tuple[int, int]" if len(v) == 2 and all(isinstance(i, int) for i in v) else "tuple"
    if v is None:
        return "None"
    return type(v).__name__
