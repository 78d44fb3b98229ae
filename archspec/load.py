"""Stage 1, load: YAML text -> plain Python data plus the location of every node.

PyYAML's safe composer builds the node tree; we walk it ourselves so that we can
refuse what a spec never needs (aliases, merge keys, non-standard tags,
duplicate keys) and record `file:line:col` for every mapping key and value.
Where PyYAML has libyaml, its C parser feeds the composer the events (ten times
faster than the pure-Python scanner, which took most of the time of a load); a
text it steps aside from or does not load without a fault is loaded again by
the pure-Python loader, whose messages and marks the diagnostics report.
Locations live in a side table keyed by the path of the value, e.g.
`("body", "inception3a")`, which is exactly the shape of a pydantic error `loc`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from .errors import Diagnostics, Location, SpecError

MAX_BYTES = 2_000_000
MAX_DEPTH = 64

YamlPath = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}


@dataclass
class Source:
    """A loaded spec file: its data and where every piece of it was written."""

    file: str
    text: str
    data: Any
    locs: dict[YamlPath, Location] = field(default_factory=dict)
    key_locs: dict[YamlPath, Location] = field(default_factory=dict)
    quoted: dict[YamlPath, bool] = field(default_factory=dict)
    flow: set[YamlPath] = field(default_factory=set)
    """Paths of collections written in flow style, `[a, b]` or `{a: b}`, where every comma splits an item."""

    def in_flow(self, path: YamlPath) -> bool:
        """Whether the value at `path` sits inside a flow collection."""
        return any(tuple(path[:i]) in self.flow for i in range(len(path)))

    def loc(self, path: YamlPath) -> Location:
        """Location of the value at `path`, or of its nearest written ancestor."""
        path = tuple(path)
        while path not in self.locs and path:
            path = path[:-1]
        return self.locs.get(path, Location(self.file, 1, 1))

    def key_loc(self, path: YamlPath) -> Location:
        """Location of the mapping key that names `path` (the value's if none)."""
        return self.key_locs.get(tuple(path)) or self.loc(path)

    def loc_in(self, path: YamlPath, offset: int) -> Location:
        """Location of character `offset` inside the scalar at `path`."""
        base = self.loc(path)
        if tuple(path) not in self.locs:
            return base
        return base.shifted(offset + (1 if self.quoted.get(tuple(path)) else 0))


class _Refused(Exception):
    def __init__(self, code: str, message: str, mark: Any, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.mark, self.hint = code, message, mark, hint


class _RefuseAliases:
    """Refuses aliases at composition time (no alias bombs); mixed into a loader before its composer."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            event = self.peek_event()  # type: ignore[attr-defined]
            raise _Refused(
                "yaml-alias",
                f"YAML aliases (*{event.anchor}) are not allowed in a spec",
                event.start_mark,
                "define a block under `blocks:` and call it where you need the repeat",
            )
        return super().compose_node(parent, index)  # type: ignore[misc]


class _Loader(_RefuseAliases, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader: the reference, whose error messages and marks are reported."""


class _Diverges(Exception):
    """libyaml may read this text otherwise than PyYAML does: load it with PyYAML."""


try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    _FastLoader: type | None = None
else:
    class _CLoader(_RefuseAliases, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's parser under PyYAML's own composer, so composition (aliases, anchors, depth) is unchanged.

        (`yaml.CSafeLoader` composes in C too, recursively: a deep enough nesting crashes the process.)
        It raises `_Diverges` at what the two parsers are known to read differently, or may: tabs (libyaml
        takes some for spaces where PyYAML refuses them), a byte-order mark inside the text (libyaml counts
        it as a column), tags (libyaml resolves `!` otherwise), empty values (placed elsewhere), block
        scalars (libyaml takes `|-#` as a header) and plain scalars in `[...]` or `{...}` that hold `?`
        (PyYAML ends them there) or `:` (each parser has its own rules for it there). Specs need none of
        these; `tests/test_load.py` compares the two loaders on mutants of every spec.
        """

        def __init__(self, stream: str):
            if "\t" in stream or "\ufeff" in stream:
                raise _Diverges
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.flow_depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                return super().compose_node(parent, index)  # refused
            if event.tag is not None or (isinstance(event, yaml.ScalarEvent) and _odd_scalar(event, self.flow_depth)):
                raise _Diverges
            if not isinstance(event, yaml.CollectionStartEvent) or not event.flow_style:
                return super().compose_node(parent, index)
            self.flow_depth += 1
            node = super().compose_node(parent, index)
            self.flow_depth -= 1
            return node

    _FastLoader = _CLoader


def _odd_scalar(event: yaml.ScalarEvent, in_flow: int) -> bool:
    """A scalar that libyaml may read otherwise than PyYAML does (see `_CLoader`)."""
    if event.style:  # quoted, '...' or "...", or a block scalar, | or >
        return event.style not in ("'", '"')
    return not event.value or bool(in_flow and ("?" in event.value or ":" in event.value))


def load_file(path: str | Path, display: str | None = None) -> Source:
    """Read and load a spec file; raises SpecError with a location on any fault."""
    name = display or str(path)
    raw = _read_spec_bytes(Path(path), name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        diags = Diagnostics()
        diags.error("yaml-encoding", f"spec file is not UTF-8 ({exc.reason} at byte {exc.start})",
                    loc=Location(name, 1, 1))
        raise SpecError(diags.items) from None
    return load_text(text, name)


def _read_spec_bytes(path: Path, name: str) -> bytes:
    """The bytes of a regular file of at most MAX_BYTES, read without blocking on, or exhausting, anything else.

    A FIFO, a device (`/dev/zero`) or a folder is refused before it is read: it is opened non-blocking (a
    FIFO without a writer would hang a plain open) and checked again once open, against a swap in between;
    and at most MAX_BYTES + 1 bytes are ever read.
    """
    diags = Diagnostics()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            _not_regular(path, name, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                _not_regular(path, name, mode)
            raw = f.read(MAX_BYTES + 1)
            size = max(len(raw), os.fstat(f.fileno()).st_size)
    except OSError as exc:
        diags.error("file-not-found", f"cannot read spec file: {exc.strerror or exc}", found=str(path))
        raise SpecError(diags.items) from None
    if len(raw) > MAX_BYTES:
        diags.error("file-too-large", "spec file is too large", loc=Location(name, 1, 1),
                    expected=f"at most {MAX_BYTES:,} bytes", found=f"{size:,} bytes")
        raise SpecError(diags.items)
    return raw


def _not_regular(path: Path, name: str, mode: int) -> None:
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    diags = Diagnostics()
    diags.error("not-a-file", f"the spec is {kind}, not a file", loc=Location(name, 1, 1), found=str(path),
                hint="a spec is read from a regular .yaml file; save the text to one first")
    raise SpecError(diags.items)


def load_text(text: str, file: str = "<spec>") -> Source:
    """Load spec text; raises SpecError with a location on any fault."""
    if _FastLoader is not None:
        try:
            return _load(text, file, _FastLoader)
        except Exception:  # noqa: BLE001 - whatever the fault, the pure-Python loader finds it again and reports it
            pass
    diags = Diagnostics()
    try:
        return _load(text, file, _Loader)
    except _Refused as exc:
        diags.error(exc.code, exc.message, loc=_loc(file, exc.mark), hint=exc.hint)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = exc.problem or exc.context or "invalid YAML"
        hint = None
        if "mapping values are not allowed" in msg:
            hint = "a plain scalar cannot contain ': '; write keyword arguments as k=v, e.g. conv(64, 3, s=2)"
        diags.error("yaml-syntax", f"invalid YAML: {msg}", loc=_in_text(text, _loc(file, mark)), hint=hint)
    except yaml.YAMLError as exc:
        diags.error("yaml-syntax", f"invalid YAML: {exc}", loc=Location(file, 1, 1))
    except RecursionError:
        diags.error("yaml-too-deep", "YAML nesting is too deep", loc=Location(file, 1, 1))
    raise SpecError(diags.items, {file: text})


def _load(text: str, file: str, loader_class: type) -> Source:
    source = Source(file=file, text=text, data=None)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    source.data = _Walker(source, loader).value(node, (), 0) if node is not None else None
    return source


def _in_text(text: str, loc: Location) -> Location:
    """`loc`, or the end of the last line if it lies past it (PyYAML marks the stream's end a line further)."""
    lines = text.splitlines() or [""]
    if loc.line <= len(lines):
        return loc
    return Location(loc.file, len(lines), len(lines[-1]) + 1)


def _loc(file: str, mark: Any) -> Location:
    if mark is None:
        return Location(file, 1, 1)
    return Location(file, mark.line + 1, mark.column + 1)


class _Walker:
    def __init__(self, source: Source, loader: Any):
        self.source = source
        self.loader = loader

    def value(self, node: yaml.Node, path: YamlPath, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Refused("yaml-too-deep", f"YAML nesting deeper than {MAX_DEPTH} levels", node.start_mark)
        self.source.locs[path] = _loc(self.source.file, node.start_mark)
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _TAG + "map")
            if node.flow_style:
                self.source.flow.add(path)
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _TAG + "seq")
            if node.flow_style:
                self.source.flow.add(path)
            return [self.value(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def mapping(self, node: yaml.MappingNode, path: YamlPath, depth: int) -> dict:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                raise _Refused("yaml-merge-key", "YAML merge keys (<<) are not allowed in a spec",
                               key_node.start_mark, "use a block with parameters instead")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("yaml-key", "mapping keys must be plain names", key_node.start_mark)
            key = self.scalar(key_node)
            if isinstance(key, bool) or key is None or isinstance(key, float):
                raise _Refused("yaml-key", f"mapping key {key_node.value!r} must be a name",
                               key_node.start_mark, "quote it if it is meant as text")
            key = str(key)
            if key in out:
                first = self.source.key_locs[path + (key,)]
                raise _Refused("duplicate-key", f"duplicate key '{key}' (first written at {first})",
                               key_node.start_mark, "every name in a mapping must be unique; rename one of them")
            self.source.key_locs[path + (key,)] = _loc(self.source.file, key_node.start_mark)
            out[key] = self.value(value_node, path + (key,), depth + 1)
        return out

    def scalar(self, node: yaml.Node, path: YamlPath | None = None) -> Any:
        """A scalar's value; for a value (not a key), remember whether it was quoted."""
        self._check_tag(node, None)
        if path is not None:
            self.source.quoted[path] = node.style in ("'", '"')
        return self.loader.construct_object(node, deep=True)

    def _check_tag(self, node: yaml.Node, expected: str | None) -> None:
        ok = node.tag == expected if expected else node.tag in _SCALAR_TAGS
        if not ok:
            tag = node.tag.replace(_TAG, "!!")
            hint = "quote the value to make it a string" if expected is None else None
            raise _Refused("yaml-tag", f"YAML tag {tag} is not allowed in a spec", node.start_mark, hint)
