"""From a torch leaf module, or a function call in a traced graph, to the op call that computes it.

Nothing here knows any op by name: the facts come from the op registry. A module's op is the one whose
`torch_modules` names its class; the op's attributes are read from the module's attributes of the same
names (an attribute's aliases in the op's model: `kernel_size` for `k`, `out_channels` for `out`), and
the op's own emitter is asked to build the module again, which must give the same module back. A
function (`torch.cat`, `operator.add`, `F.relu`) maps to the op whose emitter calls it, or to the module
of the same name in `torch.nn` (`F.max_pool2d` is `nn.MaxPool2d` written as a call).
"""

from __future__ import annotations

import inspect
import operator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

from ..ops.registry import REGISTRY, FunctionCall, NoAttrs, Op, Shape, field_aliases


@dataclass(frozen=True)
class OpCall:
    """One primitive op with all its attribute values, in the op's positional order."""

    op: str
    values: tuple[tuple[str, Any], ...]

    def defaults(self) -> dict[str, Any]:
        fields = REGISTRY[self.op].attrs.model_fields
        return {n: f.default for n, f in fields.items() if not f.is_required()}


class Unmapped(Exception):
    """No op of the language computes this module or call; the message says what is missing."""


def module_op(module: Any, ins: list[Shape]) -> OpCall:
    """The op call that computes `module` (a leaf) on inputs of shapes `ins`; `Unmapped` if none does."""
    cls = type(module).__name__
    ops = candidate_ops(cls)
    if not ops:
        raise Unmapped(f"no op of the language computes {type(module).__module__}.{cls}")
    problems = []
    for op in ops:
        try:
            call = _read_attrs(op, module)
        except (ValueError, TypeError) as exc:
            problems.append(f"{op.name}: {str(exc).splitlines()[0]}")
            continue
        if _same_module(op, call, module, ins):
            return call
        problems.append(f"{op.name}({_short(call)}) builds {_emitted_repr(op, call, ins)}")
    raise Unmapped(f"{cls}({module.extra_repr()}) is not reproduced by any op: " + "; ".join(problems))


def candidate_ops(cls_name: str) -> list[Op]:
    """Ops whose `torch_modules` name this class: an exact name first, then the longest prefix."""
    exact = [op for op in REGISTRY.values() if cls_name in op.torch_modules]
    if exact:
        return exact
    scored = [(max(len(f) for f in op.torch_modules if cls_name.startswith(f)), op)
              for op in REGISTRY.values() if any(cls_name.startswith(f) for f in op.torch_modules)]
    return [op for _, op in sorted(scored, key=lambda s: -s[0])]


def _read_attrs(op: Op, source: Any) -> OpCall:
    given: dict[str, Any] = {}
    for name, field in op.attrs.model_fields.items():
        for alias in [name, *field_aliases(name, field)]:
            if hasattr(source, alias):
                given[name] = _plain(getattr(source, alias))
                break
    attrs = op.attrs.model_validate(given)
    return OpCall(op.name, tuple((n, getattr(attrs, n)) for n in op.attrs.model_fields))


def _plain(value: Any) -> Any:
    """A module attribute as an op attribute: a tensor or None (a bias) is whether there is one."""
    if value is None or type(value).__name__ in ("Parameter", "Tensor"):
        return value is not None
    if isinstance(value, list):
        return tuple(value)
    return value


def emitted(op: Op, call: OpCall, ins: list[Shape]) -> Any:
    return op.emit(op.attrs.model_validate(dict(call.values)), ins)


def _same_module(op: Op, call: OpCall, module: Any, ins: list[Shape]) -> bool:
    out = emitted(op, call, ins)
    if isinstance(out, FunctionCall):  # a stateless module (nn.ReLU) the backend writes as a call
        return not list(module.parameters(recurse=False)) and _function_matches(out, type(module))
    if type(out) is not type(module):
        return False
    names = [n for n in getattr(type(module), "__constants__", []) if n != "inplace"]  # in place: the same result
    same = all(_same_value(getattr(out, n, None), getattr(module, n, None)) for n in names)
    shapes = {k: tuple(v.shape) for k, v in out.state_dict().items()}
    return same and shapes == {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _same_value(a: Any, b: Any) -> bool:
    """Equal hyperparameters, an int equal to the pair of it (`3` and `(3, 3)`)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        ta = tuple(a) if isinstance(a, (list, tuple)) else (a, a)
        tb = tuple(b) if isinstance(b, (list, tuple)) else (b, b)
        return ta == tb
    return a == b


def _function_matches(fc: FunctionCall, cls: type) -> bool:
    """Whether the function the backend calls is the functional form of module class `cls`."""
    return _module_of_function(fc.fn) is cls


def _emitted_repr(op: Op, call: OpCall, ins: list[Shape]) -> str:
    out = emitted(op, call, ins)
    return f"{type(out).__name__}({out.extra_repr()})" if hasattr(out, "extra_repr") else repr(out)


def _short(call: OpCall) -> str:
    return ", ".join(f"{n}={v}" for n, v in call.values)


def _module_of_function(fn: Callable[..., Any]) -> type | None:
    """`torch.nn.MaxPool2d` for `F.max_pool2d`, `nn.ReLU` for `torch.relu`: the module of the same name."""
    from torch import nn

    key = getattr(fn, "__name__", "").replace("_", "").lower()
    if not key:
        return None
    for name in dir(nn):
        obj = getattr(nn, name)
        if isinstance(obj, type) and issubclass(obj, nn.Module) and name.lower() == key:
            return obj
    return None


def _stateless_functions() -> dict[Any, str]:
    """Each function the emitters of attribute-free ops call, to the op: `torch.cat` → concat."""
    table: dict[Any, str] = {}
    for op in REGISTRY.values():
        if op.attrs is not NoAttrs:
            continue
        shapes: list[list[Shape]] = [[(1, 1, 1), (1, 1, 1)], [(1, 1, 1)]]
        for ins in shapes:
            try:
                out = op.emit(NoAttrs(), ins)
            except Exception:  # noqa: BLE001 - an emitter that needs real shapes maps nothing here
                continue
            if isinstance(out, FunctionCall) and getattr(out.fn, "__name__", "") not in ("", "<lambda>"):
                table.setdefault(out.fn, op.name)
    return table


def function_op(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ins: list[Shape]) -> OpCall:
    """The op call computing `fn(*args, **kwargs)`, tensors among `args` being its inputs; `Unmapped` if none."""
    import torch

    fn = _CANONICAL.get(fn, fn)
    table = _stateless_functions()
    if fn in table:
        op = REGISTRY[table[fn]]
        _check_constants(op, fn, args, kwargs, ins)
        return OpCall(op.name, ())
    module = _module_of_function(fn) if not isinstance(fn, str) else None
    if module is None and isinstance(fn, str):  # a method: x.flatten(1), x.relu()
        target = getattr(torch, fn, None)
        if target is not None:
            return function_op(target, args, kwargs, ins)
    if module is None:
        raise Unmapped(f"no op of the language computes {_fn_name(fn)}")
    bound = _bind(fn, args, kwargs)
    ops = candidate_ops(module.__name__)
    for op in ops:
        try:
            call = _read_attrs(op, SimpleNamespace(**bound))
        except (ValueError, TypeError):
            continue
        out = emitted(op, call, ins)
        if isinstance(out, FunctionCall) or type(out) is module:
            return call
    raise Unmapped(f"no op of the language computes {_fn_name(fn)}")


def _bind(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, the module's spelling (`ceil_mode`, `kernel_size`), inputs left out."""
    try:
        sig = inspect.signature(fn)
        if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):  # torch's boolean dispatch
            import torch.nn.functional as F

            sig = inspect.signature(getattr(F, "_" + fn.__name__))
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        named = dict(bound.arguments)
    except (TypeError, ValueError, AttributeError):
        named = dict(kwargs)
    out = {k: v for k, v in named.items() if not _is_node(v)}
    if out.get("stride") in (None, (), []):
        out.pop("stride", None)  # F.max_pool2d's stride=None means the kernel size, as the module's default
    return out


def _check_constants(op: Op, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ins: list[Shape]) -> None:
    """An attribute-free op reproduces the call only with the arguments its emitter gives (cat's dim=1)."""
    out = op.emit(NoAttrs(), ins)
    if not isinstance(out, FunctionCall):
        return
    consts = [a for a in args if not _is_node(a) and not isinstance(a, (list, tuple))]
    given = dict(kwargs)
    expected = dict(out.kwargs)
    rank = len(ins[0]) + 1 if ins else 0
    for key, want in expected.items():
        have = given.pop(key, consts.pop(0) if consts else want)
        if isinstance(have, int) and isinstance(want, int) and have < 0:
            have += rank
        if have != want:
            raise Unmapped(f"{_fn_name(fn)} with {key}={have}: the op {op.name} computes {key}={want} only")
    given = {k: v for k, v in given.items() if k not in ("inplace", "end_dim") or v not in (False, True, -1)}
    if consts or given:
        raise Unmapped(f"{_fn_name(fn)} with arguments {consts or given}: the op {op.name} takes none")


def _is_node(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_is_node(v) for v in value)
    return type(value).__name__ == "Node"


def _fn_name(fn: Any) -> str:
    if isinstance(fn, str):
        return f"the tensor method .{fn}()"
    mod = getattr(fn, "__module__", None) or ""
    return f"{mod}.{getattr(fn, '__name__', fn)}" if mod else str(getattr(fn, "__name__", fn))


def _canonical() -> dict[Any, Any]:
    """Spellings of one function: `torch.add` is `+`, `F.relu` is `torch.relu`."""
    import torch
    import torch.nn.functional as F

    return {torch.add: operator.add, torch.mul: operator.mul, F.relu: torch.relu, torch.sigmoid: torch.sigmoid,
            F.sigmoid: torch.sigmoid, F.tanh: torch.tanh, torch.concat: torch.cat, torch.concatenate: torch.cat,
            operator.iadd: operator.add, operator.imul: operator.mul}


class _Lazy(dict):
    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        if not self:
            self.update(_canonical())
        try:
            return super().get(key, default)
        except TypeError:  # an unhashable target
            return default


_CANONICAL = _Lazy()
