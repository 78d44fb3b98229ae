"""From a torch leaf module, or a function call in a traced graph, to the op call that computes it.

Nothing here knows any op by name: the facts come from the op registry. A module's op is the one whose
`torch_modules` names its class; the op's attributes are read from the module's attributes of the same
names (an attribute's aliases in the op's model: `kernel_size` for `k`, `out_channels` for `out`), and
the op's own emitter is asked to build the module again, which must give the same module back. A
function (`torch.cat`, `operator.add`, `F.relu`) maps to the op whose emitter calls it, or to the module
of the same name in `torch.nn` (`F.max_pool2d` is `nn.MaxPool2d` written as a call).
"""

from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

from ..ops.registry import (
    REGISTRY,
    ChannelsLast,
    FunctionCall,
    NoAttrs,
    Op,
    ParamCall,
    Shape,
    Tokens,
    channels_last,
    field_aliases,
    tokens,
)


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


def module_op(module: Any, ins: list[Shape], invoke: Callable[[Any, Any], Any] | None = None) -> OpCall:
    """The op call that computes `module` (a leaf) on inputs of shapes `ins`; `Unmapped` if none does.

    `invoke(module, x)` is how the model calls it where that is not `module(x)` (`nn.MultiheadAttention`'s
    `attn(x, x, x, need_weights=False)[0]`): the op's module must then compute the same as that call."""
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
        first = None
        for variant in _flag_variants(op, call, module):
            problem = _difference(op, variant, module, ins, invoke)
            if problem is None:
                return variant
            first = first or problem
        problems.append(f"{op.name}({_short(call)}) {first}")
    raise Unmapped(f"{_describe(module)} is not reproduced by any op: " + "; ".join(problems))


def _flag_variants(op: Op, call: OpCall, module: Any) -> list[OpCall]:
    """The call as read, then with every combination of the op's flags and choices (a `Literal`) that the module
    does not name (torchvision's ShiftedWindowAttentionV2 has no `v2` attribute, its MaxViT attention no `mode`):
    the one whose module computes the same is it."""
    import itertools
    import typing

    def choices(f: Any) -> tuple[Any, ...]:
        if f.annotation is bool:
            return (False, True)
        return typing.get_args(f.annotation) if typing.get_origin(f.annotation) is typing.Literal else ()

    fields = op.attrs.model_fields
    unnamed = [n for n, f in fields.items() if choices(f)
               and not any(hasattr(module, a) for a in [n, *field_aliases(n, f)])]
    out = [call]
    for values in itertools.product(*(choices(fields[n]) for n in unnamed)):
        given = dict(call.values) | dict(zip(unnamed, values, strict=True))
        variant = OpCall(op.name, tuple((n, given[n]) for n in fields))
        if variant not in out:
            out.append(variant)
    return out


def _describe(module: Any) -> str:
    """`Conv2d(3, 8, kernel_size=(3, 3))`: the module's own one-line repr where it writes one
    (StochasticDepth's names its mode), else its class and `extra_repr`."""
    text = repr(module)
    return text if "\n" not in text else f"{type(module).__name__}({module.extra_repr()})"


def fused_op(module: Any, ins: list[Shape]) -> OpCall:
    """The op of a module that subclasses an op's module and adds children run after it (timm's
    BatchNormAct2d is a BatchNorm2d): read and checked as its base class, on its own weights only."""
    for base in type(module).__mro__[1:]:
        for op in candidate_ops(base.__name__):
            try:
                call = _read_attrs(op, module)
            except (ValueError, TypeError):
                continue
            out = emitted(op, call, ins)
            own = {k: tuple(v.shape) for k, v in [*module.named_parameters(recurse=False),
                                                   *module.named_buffers(recurse=False)] if v is not None}
            names = [n for n in getattr(type(out), "__constants__", []) if n != "inplace"]
            if (isinstance(module, type(out)) and own == {k: tuple(v.shape) for k, v in out.state_dict().items()}
                    and all(_same_value(getattr(out, n, None), getattr(module, n, None)) for n in names)):
                return call
    raise Unmapped(f"no op of the language computes {type(module).__name__}'s own part")


def candidate_ops(cls_name: str) -> list[Op]:
    """Ops whose `torch_modules` name this class: an exact name first, then the longest prefix."""
    exact = [op for op in REGISTRY.values() if cls_name in op.torch_modules]
    if exact:
        return exact
    scored = [(max(len(f) for f in op.torch_modules if cls_name.startswith(f)), op)
              for op in REGISTRY.values() if any(cls_name.startswith(f) for f in op.torch_modules)]
    return [op for _, op in sorted(scored, key=lambda s: -s[0])]


def is_leaf(module: Any) -> bool:
    """Whether the tracer stops at this module: one an op computes, named by an op's `torch_modules` exactly
    (`nn.MultiheadAttention`, children and all) or by a prefix where it has no children (`Conv2d`)."""
    name = type(module).__name__
    if any(name in op.torch_modules for op in REGISTRY.values()):
        return True
    return not list(module.children()) and bool(candidate_ops(name))


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


def _difference(op: Op, call: OpCall, module: Any, ins: list[Shape],
                invoke: Callable[[Any, Any], Any] | None = None) -> str | None:
    """How the module the op's emitter builds differs from `module`; None if it is the same module.

    A module of the op's own class must have the same constants and weight shapes. One of another class
    (torchvision's LayerNorm2d, StochasticDepth) must also compute the same, given the same weights."""
    from torch import nn

    out = emitted(op, call, ins)
    built = f"builds {_emitted_repr(op, call, ins)}"
    if isinstance(out, FunctionCall):  # a stateless module (nn.ReLU, Permute) the backend writes as a call
        if list(module.parameters(recurse=False)):
            return built
        return None if _function_matches(out, type(module)) else _behaviour_difference(out, module, ins)
    if not isinstance(out, nn.Module):
        return built
    names = [n for n in getattr(type(module), "__constants__", []) if n != "inplace"]  # in place: the same result
    same = all(_same_value(getattr(out, n, None), getattr(module, n, None)) for n in names)
    shapes = {k: tuple(v.shape) for k, v in out.state_dict().items()}
    if not same or shapes != {k: tuple(v.shape) for k, v in module.state_dict().items()}:
        return built
    if type(out) is type(module) and invoke is None:
        return None
    key = (_configuration(module), _configuration(out), repr(ins), getattr(invoke, "key", None))
    if key not in _CHECKED:  # a module equal in class, settings and input to one compared computes the same
        _CHECKED[key] = _behaviour_difference(out, module, ins, invoke)
    return _CHECKED[key]


_CHECKED: dict[Any, str | None] = {}
"""The comparisons made (`_behaviour_difference` replaces the weights by random ones, so its answer depends only
on the module's configuration): each of ViT-H's 32 attention modules is compared once."""


def _configuration(m: Any) -> str:
    """What a module's outputs depend on besides its weights' values: its class, its own plain attributes
    (`dims`, `p`, `mode`, `eps`: torchvision's Permute writes no `extra_repr`) and its weights' shapes; or a
    call's function and constants."""
    if isinstance(m, FunctionCall):
        return f"{m.fn.__module__}.{m.fn.__qualname__}{m.args!r}{m.kwargs!r}{m.pack}"
    plain = {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
    tensors = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    return f"{m!r}{type(m).__module__}.{type(m).__qualname__}{plain!r}{tensors!r}"


def _behaviour_difference(out: Any, module: Any, ins: list[Shape],
                          invoke: Callable[[Any, Any], Any] | None = None) -> str | None:
    """Whether `out`, given `module`'s weights (random ones where it has none yet: a module on the meta
    device), gives `module`'s outputs on random inputs, in eval and in training mode from one seed."""
    import copy

    import torch

    name = getattr(out.fn, "__name__", "a call") if isinstance(out, FunctionCall) else type(out).__name__
    if len(ins) != 1:
        return f"builds {name}, another class, whose results are not compared on {len(ins)} inputs"
    source = copy.deepcopy(module).to_empty(device="cpu")
    torch.manual_seed(0)
    fixed = module.state_dict() if _on_cpu(module) else {} if isinstance(out, FunctionCall) else out.state_dict()
    with torch.no_grad():
        for key, t in source.state_dict(keep_vars=True).items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5)  # positive: a running variance stays one
            elif key in fixed and t.shape == fixed[key].shape:
                t.copy_(fixed[key])  # an index (Swin's relative_position_index): the module's own, else the op's
    if isinstance(out, FunctionCall):
        mine = _Called(out)
    else:
        mine = copy.deepcopy(out).to_empty(device="cpu")
        mine.load_state_dict(source.state_dict(), strict=True)
    import math

    # the real shape where it is cheap; a grouped call's side keeps its groups whole
    shape = ins[0] if math.prod(ins[0]) <= 1 << 16 else _small(ins, getattr(invoke, "side", 12))[0]
    if tokens(shape) and shape[0] > 16:
        shape = Tokens((16, shape[1]))  # sixteen tokens: attention over 197 costs L² for nothing more
    x = torch.randn(16, *shape)  # sixteen samples, four seeds: a random mask that differs shows
    first = None
    for mode, seeds in (("eval", [1]), ("training", [1, 2, 3, 4])):
        source.train(mode == "training")
        mine.train(mode == "training")
        for seed in seeds:
            with torch.no_grad():
                torch.manual_seed(seed)
                want = invoke(source, x.clone()) if invoke else source(x.clone())
                torch.manual_seed(seed)
                got = mine(x.clone())
            if not (isinstance(got, torch.Tensor) and isinstance(want, torch.Tensor) and got.shape == want.shape
                    and _rounding_apart(got, want)):
                return f"builds {name}, which gives other outputs in {mode} mode"
            if first is None:
                first = want
            elif seed == 1 and torch.equal(want, first):
                break  # the module draws nothing at random in training either: one comparison says it
    return None


def _rounding_apart(got: Any, want: Any) -> bool:
    """Equal, or apart by float rounding alone (at most 1e-5 of the largest value): the op's module may sum in
    another order (Swin's attention through `F.scaled_dot_product_attention`, torchvision's through softmax)."""
    import torch

    if torch.equal(got, want):
        return True
    scale = float(want.abs().max()) if want.numel() else 0.0
    return bool(torch.isfinite(got).all()) and float((got - want).abs().max()) <= 1e-5 * max(scale, 1.0)


def _on_cpu(module: Any) -> bool:
    return all(t.device.type == "cpu" for t in module.state_dict().values())


class _Called:
    """A stateless op's call, run as a module is (`train` is accepted and changes nothing)."""

    def __init__(self, fc: FunctionCall):
        self.fc = fc

    def train(self, mode: bool = True) -> _Called:
        return self

    def __call__(self, x: Any) -> Any:
        return _run_emitted(self.fc, [x])


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


@functools.cache
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


@functools.cache
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
    """The op call computing `fn(*args, **kwargs)`, graph nodes among `args` being its inputs of shapes `ins`;
    `Unmapped` if none does. A candidate is kept only if it gives the call's very result on random inputs."""
    for op, call in _function_candidates(fn, args, kwargs, ins):
        if _same_result(fn, args, kwargs, op, call, ins):
            return call
    for op, call in _other_candidates(args, kwargs, ins):
        if _same_result(fn, args, kwargs, op, call, ins):
            return call
    raise Unmapped(f"no op of the language computes {_fn_name(fn)}" + _consts_text(args, kwargs))


def param_op(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ins: list[Shape], param: Any,
             node: Any, reads: dict[Any, Callable[[Any], Any]] | None = None) -> OpCall:
    """The op that owns a learned tensor of the module it sits in (its emitter gives a `ParamCall`, as
    `layer_scale`) and computes `fn(*args, **kwargs)`, the argument `node` reading that tensor, `param`, and
    the other graph nodes being inputs of shapes `ins`; `Unmapped` if none does. `reads` gives, for each
    argument computed from the tensor alone, how (ViT's `class_token.expand(n, -1, -1)`); by default `node`
    is the tensor itself. A number the op takes is the value the tensor holds everywhere (its initial value)
    where it does, else the op's default."""
    fn = _CANONICAL.get(fn, fn)
    reads = reads if reads is not None else {node: lambda p: p}
    for op in REGISTRY.values():
        try:
            out = op.emit(op.attrs.model_validate({}), ins)
        except Exception:  # noqa: BLE001 - an op with required attributes, or one that refuses these shapes
            continue
        if (isinstance(out, ParamCall) and tuple(out.param.shape) == tuple(param.shape)
                and _same_param_result(fn, args, kwargs, out, ins, reads)):
            return _read_attrs(op, SimpleNamespace(**_initial(op, param)))
    raise Unmapped(f"{_fn_name(fn)} of the tensor {node.target} of shape {tuple(param.shape)}: no op of the language "
                   "owns such a tensor and computes this call")


def _same_param_result(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: ParamCall, ins: list[Shape],
                       reads: dict[Any, Callable[[Any], Any]]) -> bool:
    import torch
    import torch.fx as fx

    torch.manual_seed(0)
    xs = [torch.randn(2, *s) for s in _small(ins)]
    p = torch.randn(*out.param.shape)
    feed = iter(xs)
    try:
        a, kw = fx.node.map_arg((args, kwargs), lambda n: reads[n](p) if n in reads else next(feed))  # type: ignore
        want, got = fn(*a, **kw), out.fn(*xs, p)
    except Exception:  # noqa: BLE001 - a candidate that cannot even run is not the op
        return False
    return isinstance(got, torch.Tensor) and got.shape == want.shape and torch.equal(got, want)


def _initial(op: Op, param: Any) -> dict[str, Any]:
    """The op's one number as the value `param` holds everywhere, written as the shortest decimal that gives
    that float32 (1e-06, not 9.99999997e-07); nothing where the op takes no one number or the tensor varies."""
    import torch

    fields = list(op.attrs.model_fields.items())
    if len(fields) != 1 or fields[0][1].annotation is not float or param.device.type == "meta" or not param.numel():
        return {}
    first = param.detach().flatten()[0]
    if not bool((param == first).all()):
        return {}
    value = float(first)
    for digits in range(1, 18):
        short = float(f"{value:.{digits}g}")
        if torch.tensor(short, dtype=param.dtype) == first:
            return {fields[0][0]: short}
    return {fields[0][0]: value}


def _function_candidates(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], ins: list[Shape]
                         ) -> list[tuple[Op, OpCall]]:
    """Ops that may compute the call: the op whose emitter calls the function (with a constant of the call
    as its one attribute: `x * 0.17` is `scale(0.17)`), or the op of the module of the function's name."""
    import torch

    if isinstance(fn, str):  # a tensor method: x.flatten(1), x.relu()
        target = getattr(torch, fn, None)
        return _function_candidates(target, args, kwargs, ins) if target is not None else []
    fn = _CANONICAL.get(fn, fn)
    out: list[tuple[Op, OpCall]] = []
    own = getattr(fn, "__name__", None)
    if own in REGISTRY and (getattr(fn, "__module__", None) or "torch").split(".")[0] not in (
            "torch", "_operator", "operator", "builtins"):  # own function (`operator.mul` is named `mul` too)
        try:
            out.append((REGISTRY[own], _read_attrs(REGISTRY[own], SimpleNamespace(**_bind(fn, args, kwargs)))))
        except (ValueError, TypeError):
            pass
    consts = [a for a in [*args, *kwargs.values()] if isinstance(a, (int, float)) and not isinstance(a, bool)]
    for op in REGISTRY.values():
        fields = list(op.attrs.model_fields)
        if len(fields) == 1 and len(consts) == 1 and _emits_call_with(op, fn, fields[0], ins):
            try:
                out.append((op, _read_attrs(op, SimpleNamespace(**{fields[0]: consts[0]}))))
            except (ValueError, TypeError):
                pass
    name = _stateless_functions().get(fn)
    if name is not None:  # a merge of one input (`x * 1.0`) only where nothing else fits: scale(1.0) reads better
        if REGISTRY[name].arity is not None or len(ins) > 1:
            out.append((REGISTRY[name], OpCall(name, ())))
    module = _module_of_function(fn)
    if module is not None:
        bound = _bind(fn, args, kwargs)
        for op in candidate_ops(module.__name__):
            try:
                out.append((op, _read_attrs(op, SimpleNamespace(**bound))))
            except (ValueError, TypeError):
                continue
    if name is not None and REGISTRY[name].arity is None and len(ins) < 2:
        out.append((REGISTRY[name], OpCall(name, ())))
    return out


def _other_candidates(args: tuple[Any, ...], kwargs: dict[str, Any], ins: list[Shape]) -> list[tuple[Op, OpCall]]:
    """Where no op calls the function itself: every op of no attributes, and every op of one number given one
    of the call's constants, wherever it sits (`x[:, 0]` is `select_token(0)`); each is kept only if it gives
    the call's result (`_same_result`)."""
    from torch.fx.node import map_aggregate

    consts: list[Any] = []
    map_aggregate((args, kwargs), lambda v: consts.append(v) if isinstance(v, (int, float))
                  and not isinstance(v, bool) else None)
    out: list[tuple[Op, OpCall]] = []
    for op in REGISTRY.values():
        if op.arity is not None and op.arity != len(ins):
            continue
        fields = list(op.attrs.model_fields.items())
        if not fields:
            out.append((op, OpCall(op.name, ())))
        elif len(fields) == 1 and fields[0][1].annotation in (int, float):
            for c in dict.fromkeys(consts):
                try:
                    out.append((op, _read_attrs(op, SimpleNamespace(**{fields[0][0]: c}))))
                except (ValueError, TypeError):
                    continue
    return out


def _emits_call_with(op: Op, fn: Any, field: str, ins: list[Shape]) -> bool:
    """Whether the op's emitter calls `fn` with its one attribute as a constant argument."""
    try:
        out = op.emit(op.attrs.model_validate({field: 0.5}), ins)
    except Exception:  # noqa: BLE001 - an attribute that is not a number, an emitter needing other shapes
        return False
    return isinstance(out, FunctionCall) and out.fn is fn and out.args == (0.5,)


def _same_result(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], op: Op, call: OpCall,
                 ins: list[Shape]) -> bool:
    """Whether the op's emitted form gives the call's result on random inputs of the call's shapes."""
    import torch
    import torch.fx as fx

    torch.manual_seed(0)
    xs = [torch.randn(2, *s) for s in _small(ins)]
    try:
        feed = iter([x.clone() for x in xs])
        a, kw = fx.node.map_arg((args, kwargs), lambda n: next(feed))  # type: ignore[arg-type,return-value]
        want = getattr(a[0], fn)(*a[1:], **kw) if isinstance(fn, str) else fn(*a, **kw)
        out = emitted(op, call, ins)
        got = _run_emitted(out, [x.clone() for x in xs])
    except Exception:  # noqa: BLE001 - a candidate that cannot even run is not the op
        return False
    return isinstance(got, torch.Tensor) and isinstance(want, torch.Tensor) and got.shape == want.shape and (
        torch.equal(got, want) or torch.allclose(got, want, rtol=1e-6, atol=1e-6))


def _small(ins: list[Shape], side: int = 12) -> list[Shape]:
    """The shapes for a numeric check: C×H×W inputs of one H×W cut to at most side×side (the check stays cheap)."""
    if ins and all(len(s) == 3 and not channels_last(s) for s in ins) and len({s[1:] for s in ins}) == 1:
        return [(s[0], min(s[1], side), min(s[2], side)) for s in ins]
    if ins and all(channels_last(s) for s in ins) and len({s[:2] for s in ins}) == 1:  # H×W×C
        return [ChannelsLast((min(s[0], side), min(s[1], side), s[2])) for s in ins]
    return ins


def _run_emitted(out: Any, xs: list[Any]) -> Any:
    if isinstance(out, FunctionCall):
        inputs = [xs] if out.pack else xs
        return out.fn(*inputs, *out.args, **out.kwargs)
    return out.eval()(*xs)


def _consts_text(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    consts = [repr(a) for a in args if not _is_node(a)] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f" with arguments {', '.join(consts)}" if consts else ""


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
