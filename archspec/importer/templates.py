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
        self.canon: dict[Any, tuple[Any, frozenset[str]]] = {}
        """A skeleton that is another one less some layers, to that one and the layers it lacks."""
        for _ in range(8):  # merges of children change their parents' skeletons: again until nothing merges
            self._keys: dict[int, Any] = {}
            self._slots: dict[int, list[Any]] = {}
            self._absent: dict[int, frozenset[str]] = {}
            self.sizes: dict[Any, int] = {}
            self.groups: dict[Any, list[Inst]] = {}
            for layer in [root, *extra]:
                self._walk_layer(layer)
            merges = _merges(self.groups)
            if set(merges) <= set(self.canon):
                break
            self.canon.update(merges)
        for insts in self.groups.values():  # a whole instance first: the template body is written from it
            insts.sort(key=lambda i: len(self._absent.get(id(i), ())))
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
        for key in self.templates:  # children's templates first: a parent's rows take the values they gave
            for layer in [root, *extra]:
                self._refresh(layer)
            self._finalize(key)
        for layer in [root, *extra]:
            self._refresh(layer)

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
                absent: frozenset[str] = frozenset()
                if key in self.canon:
                    big, absent = self.canon[key]
                    slots = self._align(slots, big, absent)
                    key = big
                optional = self.optional(key)
                slots = slots + [name not in absent for name in optional]
                self._keys[id(layer)], self._slots[id(layer)], self._absent[id(layer)] = key, slots, absent
                self.sizes[key] = len(slots)
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

    def optional(self, key: Any) -> list[str]:
        """The layers of a template that some of its instances lack (each a `when:` on a flag parameter)."""
        return sorted({n for big, absent in self.canon.values() if big == key for n in absent})

    def _align(self, slots: list[Any], big: Any, absent: frozenset[str]) -> list[Any]:
        """An instance's slots laid out as those of the whole skeleton `big`, its absent layers' slots unknown."""
        out: list[Any] = []
        pos = 0
        for name, _, _, sub in big[2][1:]:
            size = self._skel_size(sub)
            if name in absent:
                out += [UNKNOWN] * size
            else:
                out += slots[pos:pos + size]
                pos += size
        return out

    def _skel_size(self, skel: Any) -> int:
        if skel[0] == "op":
            return len(skel[2])
        if skel[0] == "inst":
            return self.sizes[skel[1]]
        return sum(self._skel_size(item[3]) for item in skel[1:])

    def _refresh(self, layer: Any) -> list[Any]:
        """The layer's slots again from its children's, once the templates have given the slots of absent
        layers values: a slot still unknown takes the child's value (an instance's slots copy its children's)."""
        if isinstance(layer, OpCall):
            return [v for _, v in layer.values]
        if isinstance(layer, Inst):
            old = self._slots[id(layer)]
            new = [v for item in layer.body.items for v in self._refresh(item.layer)]
            absent = self._absent.get(id(layer), frozenset())
            if absent:
                new = self._align(new, self._keys[id(layer)], absent)
            old[:len(new)] = [o if o is not UNKNOWN else n for o, n in zip(old, new, strict=False)]
            return old
        return [v for item in layer.items for v in self._refresh(item.layer)]

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

    def absent(self, inst: Inst) -> frozenset[str]:
        return self._absent.get(id(inst), frozenset())

    def _finalize(self, key: Any) -> None:
        t = self.templates[key]
        if t.text or t.params:
            return
        first = t.instances[0]
        for item in first.body.items:  # children first: their parameters are this template's values
            self._finalize_children(item.layer)
        uses = self.uses(first.body)
        base = self.size(first.body)
        for k, name in enumerate(self.optional(key)):  # a flag defaults to what most instances have
            flags = [self.slots(i)[base + k] for i in t.instances]
            uses.append((base + k, (), name, Counter(flags).most_common(1)[0][0]))
        _fill_unknown([self.slots(i) for i in t.instances], [u[0] for u in uses])
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


UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
"""The value of a slot of a layer an instance lacks: any value will do."""


def _fill_unknown(rows: list[list[Any]], indices: list[int]) -> None:
    """Give the unknown slots of absent layers values: those of a column that agrees wherever both are known
    (so that one parameter serves both), else the column's most common value."""
    known = [i for i in indices if all(r[i] is not UNKNOWN for r in rows)]
    for i in indices:
        if all(r[i] is not UNKNOWN for r in rows):
            continue
        twin = next((j for j in known if all(r[i] is UNKNOWN or _hashable(r[i]) == _hashable(r[j]) for r in rows)),
                    None)
        values = [r[i] for r in rows if r[i] is not UNKNOWN]
        common = Counter(map(_hashable, values)).most_common(1)[0][0] if values else 0
        for r in rows:
            if r[i] is UNKNOWN:
                r[i] = r[twin] if twin is not None else common


def _merges(groups: dict[Any, list[Inst]]) -> dict[Any, tuple[Any, frozenset[str]]]:
    """For each class with several skeletons, those that are a larger one of the class less some layers."""
    by_class: dict[tuple[str, str], list[Any]] = {}
    for key in groups:
        by_class.setdefault(key[:2], []).append(key)
    out: dict[Any, tuple[Any, frozenset[str]]] = {}
    for keys in by_class.values():
        keys.sort(key=lambda k: -len(k[2]))
        for small in keys[1:]:
            for big in keys:
                absent = _lacks(big[2], small[2]) if big is not small and big not in out else None
                if absent:
                    out[small] = (big, absent)
                    break
    return out


def _lacks(big: Any, small: Any) -> frozenset[str] | None:
    """The layers `small` lacks, if it is `big` with them absent (`when:` false: a reference to an absent
    layer reads what it reads); else None."""
    if big[0] != "map" or small[0] != "map" or len(small) >= len(big):
        return None
    absent: set[str] = set()
    reads: dict[str, str] = {}
    prev = "input"
    rest = list(small[1:])
    for name, src, args, sub in big[1:]:
        if rest and rest[0][0] == name:
            s_name, s_src, s_args, s_sub = rest.pop(0)
            want_src = tuple(reads.get(x, x) for x in src)
            want_args = tuple(reads.get(x, x) for x in args)
            if (s_src, s_args, s_sub) != (want_src, want_args, sub) and not (
                    not src and s_src == (reads.get(prev, prev),) and prev in reads):
                return None
        else:
            last = name == big[-1][0]
            if (args or last) and not (last and prev in args):  # an absent merge passes on the layer before it
                return None
            absent.add(name)
            reads[name] = reads.get(src[0], src[0]) if len(src) == 1 else reads.get(prev, prev)
        prev = name
    return frozenset(absent) if not rest and absent else None


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _literal(v: Any) -> str:
    from ..ops.registry import spec_value

    if isinstance(v, float) and v == int(v) and abs(v) < 1e15:
        return repr(v)
    return spec_value(v)
