"""Plugins: ops of your own, registered without editing archspec.

A plugin is a Python module that, when imported, calls `archspec.ops.register(Op(...))` for each op
it provides, exactly as archspec's own op files do (docs/plugins.md). archspec imports plugins from
two places only: the entry points of installed packages in the group `archspec.ops`, and modules
named explicitly (`archspec --plugin mypkg.ops`, `ARCHSPEC_PLUGINS`, `archspec.load_plugins`).
A spec never names code to import: checking an untrusted spec runs archspec and the plugins its
user chose to install or name, nothing else.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import keyword
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .ops.registry import REGISTRY, Attrs, DuplicateOpError, Op

GROUP = "archspec.ops"
"""The entry-point group installed plugins declare: `[project.entry-points."archspec.ops"]`."""

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_OP_NAME = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin: the module (or `module:function`) imported, where it was named, the ops it added."""

    name: str
    origin: str
    ops: tuple[str, ...]


class PluginError(Exception):
    """A plugin that cannot be loaded; names the plugin, where it was named, and why."""

    def __init__(self, plugin: str, origin: str, message: str, hint: str | None = None, *, code: str):
        super().__init__(f"plugin '{plugin}' ({origin}): {message}")
        self.code, self.plugin, self.origin, self.message, self.hint = code, plugin, origin, message, hint

    def render(self) -> str:
        text = f"error[{self.code}]: {self}"
        return text + (f"\n  = hint: {self.hint}" if self.hint else "")


_LOADED: dict[str, Plugin] = {}
"""Plugins loaded in this process, by name: loading one again is a no-op."""


def load_plugins(*modules: str, entry_points: bool = True, origin: str = "load_plugins") -> list[Plugin]:
    """Register the ops of installed plugins (entry points `archspec.ops`) and of the named modules.

    `modules` are dotted module names as Python imports them (`"mypkg.ops"`); `origin` says where they
    were named, for error messages (the CLI gives `--plugin` or `ARCHSPEC_PLUGINS`). Loading is
    idempotent: a plugin already loaded in this process is not imported again. Raises
    `PluginError` for a plugin that fails to import, registers no op, registers an invalid op,
    or takes a name that a built-in op or another plugin has; its ops are then unregistered.
    """
    found: list[Plugin] = []
    if entry_points:
        for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: (e.value, e.name)):
            dist = getattr(ep, "dist", None)
            where = f"entry point '{ep.name}' of {dist.name if dist is not None else 'an installed package'}"
            found.append(_load(ep.value, where, ep.load))
    for name in modules:
        found.append(_load(name, origin, partial(_import, name)))
    return found


class _BadName(Exception):
    """A plugin named by something that is not a dotted module name (a file path, say)."""


def _import(name: str) -> object:
    if not _MODULE_NAME.fullmatch(name):
        raise _BadName(name)
    return importlib.import_module(name)


def _load(name: str, origin: str, load: Callable[[], object]) -> Plugin:
    if name in _LOADED:
        return _LOADED[name]
    module = name.partition(":")[0]
    was_imported = module in sys.modules
    before = set(REGISTRY)
    try:
        obj = load()
        if callable(obj) and not isinstance(obj, types.ModuleType):
            obj()  # an entry point `pkg.ops:register` names a function that registers the ops
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            _unregister(set(REGISTRY) - before)
            raise
        failure = _failure(name, origin, exc)  # before unregistering: it asks who registered a name
        _unregister(set(REGISTRY) - before)
        raise failure from None
    added = [n for n in REGISTRY if n not in before]
    if not added and was_imported:  # imported before (by the user's own code): its ops are those defined in it
        added = [n for n, op in REGISTRY.items() if _defined_in(op, module)]
    for op_name in added:
        problem = _invalid(REGISTRY[op_name])
        if problem:
            _unregister(set(added))
            raise PluginError(name, origin, f"op '{op_name}' {problem}", code="plugin-bad-op",
                              hint="see docs/plugins.md for what an Op needs")
    if not added:
        raise PluginError(name, origin, "importing it registered no op", code="plugin-no-ops",
                          hint="a plugin module calls archspec.ops.register(Op(...)) for each op when imported")
    plugin = Plugin(name, origin, tuple(added))
    _LOADED[name] = plugin
    return plugin


def _failure(name: str, origin: str, exc: BaseException) -> PluginError:
    if isinstance(exc, _BadName):
        return PluginError(name, origin, "is not a module name", code="plugin-import-failed",
                           hint="name the module as Python imports it (mypkg.ops), not its file; put the folder "
                                "that holds the package on PYTHONPATH, or install the package")
    module = name.partition(":")[0]
    if isinstance(exc, DuplicateOpError):
        owner = owner_of(exc.name)
        own = owner is not None and (owner == module or owner.startswith(module + "."))
        taken = ("a built-in op of archspec" if owner is None else "registered twice by it" if own
                 else f"already registered by plugin '{owner}'")
        return PluginError(name, origin, f"registers op '{exc.name}', which is {taken}", code="plugin-op-conflict",
                           hint="a plugin adds ops under new names; it cannot replace an op" if owner is None
                           else "load only one of the two plugins, or rename one of the ops")
    if isinstance(exc, ModuleNotFoundError) and exc.name and (module + ".").startswith(exc.name + "."):
        return PluginError(name, origin, f"no module named '{exc.name}'", code="plugin-import-failed",
                           hint="install the plugin's package, or put the folder that holds it on PYTHONPATH")
    if isinstance(exc, SystemExit):
        return PluginError(name, origin, f"called sys.exit({exc.code!r}) while importing", code="plugin-import-failed")
    return PluginError(name, origin, f"failed to import: {type(exc).__name__}: {exc}", code="plugin-import-failed",
                       hint="the error is in the plugin's own code (or a package it imports)")


def _invalid(op: object) -> str | None:
    """Why a registered op cannot work, or None."""
    if not isinstance(op, Op):
        return "is not an archspec.ops.Op"
    if not _OP_NAME.fullmatch(op.name) or keyword.iskeyword(op.name):
        return "has a name a spec cannot call: use letters, digits and _"
    if not (isinstance(op.attrs, type) and issubclass(op.attrs, Attrs)):
        return "has attrs that are not a subclass of archspec.ops.Attrs"
    if not (callable(op.infer) and callable(op.emit)):
        return "needs callable `infer` and `emit`"
    return None


def _defined_in(op: Op, module: str) -> bool:
    """Whether the op's emitter (or shape rule) is defined in `module` or a module inside it."""
    return any(where == module or where.startswith(module + ".") for where in _modules_of(op))


def _modules_of(op: Op) -> list[str]:
    return [m for m in (getattr(op.emit, "__module__", None), getattr(op.infer, "__module__", None)) if m]


def _unregister(names: set[str]) -> None:
    for n in names:
        REGISTRY.pop(n, None)


def owner_of(op_name: str) -> str | None:
    """The plugin that registered `op_name`, or None for a built-in op (or a name nobody registered)."""
    loaded = next((p.name for p in _LOADED.values() if op_name in p.ops), None)
    if loaded is not None:
        return loaded
    op = REGISTRY.get(op_name)
    modules = _modules_of(op) if isinstance(op, Op) else []
    return None if not modules or modules[0].startswith("archspec.") else modules[0]
