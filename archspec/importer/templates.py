"""Recover block templates: module instances of one class and one structure become one template.

Every instance is reduced to a *skeleton* (its layers' names, ops, wiring and the templates of its
children) and a vector of *slots* (every op attribute value, its children's slots included). Instances
of one class with equal skeletons share a template. For each value the template body writes, the
instances' slot columns decide how: equal everywhere, a literal; equal to the instance's input width
everywhere, `$in.c`; otherwise a parameter, one per distinct column, named after the attribute (or the
layer's path where names would repeat). A parameter whose most common value is the attribute's own
default gets that default, so calls leave it out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..ops.registry import REGISTRY
from .leaves import OpCall
from .trace import Body, Inst

MISSING: Any = object()
Use = tuple[int, tuple[str, ...], str, Any]


@dataclass
class Param:
    name: str
    column: int
    default: Any = MISSING


@dataclass
class Template:
    name: str
    instances: list[Inst]
    params: list[Param] = field(default_factory=list)
    text: dict[int, str] = field(default_factory=dict)
    """Slot index → what the body writes there: a literal, `$param` or `$in.c`."""


def snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s)
    return re.sub(r"[^a-z0-9_]", "_", s.lower()).strip("_") or "block"


class Library:
    """Every template of one imported module, and the slots and skeletons of every instance."""

    def __init__(self, root: Inst, extra: list[Any] = ()):  # type: ignore[assignment]
        self._keys: dict[int, Any] = {}
        self._slots: dict[int, list[Any]] = {}
        self.groups: dict[Any, list[Inst]] = {}
        for layer in [root, *extra]:
            self._walk_layer(layer)
        self.templates: dict[Any, Template] = {}
        taken = set(REGISTRY)
        counts: Counter[str] = Counter()
        for key, insts in self.groups.items():
            if len(insts) < 2:
                continue
            base = snake(insts[0].cls.__name__)
            counts[base] += 1
            name = base if counts[base] == 1 else f"{base}_{counts[base]}"
            while name in taken:
                name += "_block"
            taken.add(name)
            self.templates[key] = Template(name, insts)
        for key in self.templates:
            self._finalize(key)

    # skeletons and slots -------------------------------------------------------------------------
    def key(self, inst: Inst) -> Any:
        return self._keys[id(inst)]

    def slots(self, inst: Inst) -> list[Any]:
        return self._slots[id(inst)]

    def template_of(self, inst: Inst) -> Template | None:
        return self.templates.get(self.key(inst))

    def _walk_layer(self, layer: Any) -> tuple[Any, list[Any]]:
        if isinstance(layer, OpCall):
            return ("op", layer.op, tuple(n for n, _ in layer.values)), [v for _, v in layer.values]
        if isinstance(layer, Inst):
            if id(layer) not in self._keys:
                skel, slots = self._walk_body(layer.body)
                key = (layer.cls.__module__, layer.cls.__qualname__, skel)
                self._keys[id(layer)], self._slots[id(layer)] = key, slots
                self.groups.setdefault(key, []).append(layer)
            return ("inst", self._keys[id(layer)]), self._slots[id(layer)]
        return self._walk_body(layer)

    def _walk_body(self, body: Body) -> tuple[Any, list[Any]]:
        skel: list[Any] = [body.kind]
        slots: list[Any] = []
        for item in body.items:
            s, v = self._walk_layer(item.layer)
            skel.append((item.name, tuple(item.src or ()), tuple(item.args or ()), s))
            slots.extend(v)
        return tuple(skel), slots

    # parameters ----------------------------------------------------------------------------------
    def uses(self, layer: Any, offset: int = 0, path: tuple[str, ...] = ()) -> list[Use]:
        """(slot index, layer path, attribute name or `.`parameter of a template call, its default) of each
        value the body writes."""
        out: list[Use] = []
        if isinstance(layer, OpCall):
            fields = REGISTRY[layer.op].attrs.model_fields
            for k, (name, _) in enumerate(layer.values):
                f = fields[name]
                out.append((offset + k, path, name, MISSING if f.is_required() else f.default))
            return out
        if isinstance(layer, Inst):
            t = self.template_of(layer)
            if t is not None:
                return [(offset + p.column, path, "." + p.name if k else ".", p.default)
                        for k, p in enumerate(t.params)]
            layer = layer.body
        for item in layer.items:
            out += self.uses(item.layer, offset, (*path, item.name))
            offset += self.size(item.layer)
        return out

    def size(self, layer: Any) -> int:
        if isinstance(layer, OpCall):
            return len(layer.values)
        if isinstance(layer, Inst):
            return len(self.slots(layer))
        return sum(self.size(i.layer) for i in layer.items)

    def _finalize(self, key: Any) -> None:
        t = self.templates[key]
        if t.text or t.params:
            return
        first = t.instances[0]
        for item in first.body.items:  # children first: their parameters are this template's values
            self._finalize_children(item.layer)
        uses = self.uses(first.body)
        columns: dict[tuple[Any, ...], Param] = {}
        named: list[tuple[Param, tuple[str, ...], str]] = []
        refs: dict[int, Param] = {}
        for index, path, attr, default in uses:
            column = tuple(self.slots(i)[index] for i in t.instances)
            if len(set(map(_hashable, column))) == 1:
                t.text[index] = _literal(column[0])
            elif all(v == i.in_c and not isinstance(v, bool) for v, i in zip(column, t.instances, strict=True)):
                t.text[index] = "$in.c"
            elif column in columns:
                refs[index] = columns[column]
            else:
                common, _ = Counter(map(_hashable, column)).most_common(1)[0]
                p = Param("", index, default if default is not MISSING and _hashable(default) == common else MISSING)
                columns[column] = refs[index] = p
                named.append((p, path, attr))
        _name_params(named)
        for index, p in refs.items():
            t.text[index] = "$" + p.name
        required = [p for p, _, _ in named if p.default is MISSING]
        t.params = required + [p for p, _, _ in named if p.default is not MISSING]

    def _finalize_children(self, layer: Any) -> None:
        if isinstance(layer, Inst):
            if self.key(layer) in self.templates:
                self._finalize(self.key(layer))
            else:
                for item in layer.body.items:
                    self._finalize_children(item.layer)
        elif isinstance(layer, Body):
            for item in layer.items:
                self._finalize_children(item.layer)


def _name_params(named: list[tuple[Param, tuple[str, ...], str]]) -> None:
    """A parameter is called after its op attribute (`out`, `k`) where that is unique, else after its layer's
    path; one passed on to a template's call after the layer (its first parameter) or layer and parameter."""
    counts = Counter(attr for _, _, attr in named)
    taken: set[str] = set()
    for p, path, attr in named:
        if attr.startswith("."):
            name = "_".join((*path, attr[1:])) if attr != "." else "_".join(path)
        elif counts[attr] == 1 or not path:
            name = attr
        else:
            name = "_".join(path) if attr == "out" else "_".join((*path, attr))
        name = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not re.match(r"[A-Za-z]", name):
            name = f"{attr}{name}"
        base, k = name, 2
        while name in taken or name in ("in", "i"):
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        p.name = name


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _literal(v: Any) -> str:
    from ..ops.registry import spec_value

    if isinstance(v, float) and v == int(v) and abs(v) < 1e15:
        return repr(v)
    return spec_value(v)
