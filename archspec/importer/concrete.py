"""A torch.fx tracer whose proxies know their concrete shapes (run alongside on the meta device).

fx's symbolic proxies know nothing of the tensors they stand for, so a forward that reads a shape
(`n, c, h, w = x.shape`, `x.dim()`, `torch._assert(h == self.image_size, ...)`) either cannot be traced
or leaves a graph of shape arithmetic no spec writes. Here every call recorded in the graph is also run
on meta tensors (no memory, no arithmetic), so each proxy carries the tensor it stands for, and a value
that is no tensor (a shape, a size, a dtype, a number computed from them) is given back as the constant
it is: the graph keeps only the tensor computation, and shape checks pass or fail while tracing.

The graph is traced for one input shape, batch included: a reshape to `(n, 768, 196)` keeps the batch
size it was traced with. The importer reads such calls back into ops that take any batch, checking them
on inputs of that batch size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch.fx.node import map_aggregate


class MetaFailed(Exception):
    """A call recorded while tracing does not run on the tensors it is given (meta tensors of the traced
    shapes): the input shape does not fit, or the call needs values (`.item()`) that tracing lacks."""

    def __init__(self, what: str, exc: Exception):
        super().__init__(f"{what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


class ShapedProxy(fx.Proxy):
    """A proxy that carries `value`, what its node computes on meta tensors of the traced shapes."""

    value: Any = None

    def __getattr__(self, k: str) -> Any:
        if k in ("value", "node", "tracer") or k.startswith("__"):
            raise AttributeError(k)
        if k == "device":
            return self.tracer.device  # type: ignore[attr-defined]
        found = getattr(self.value, k, None)
        if found is not None and not callable(found) and is_static(found):
            return found  # .shape, .ndim, .dtype: constants of the trace
        return fx.proxy.Attribute(self, k)  # a method call (`x.size()`, `x.flatten(1)`): recorded as one

    def __len__(self) -> int:
        if isinstance(self.value, (torch.Tensor, tuple, list)):
            return len(self.value)
        return super().__len__()


def is_static(value: Any) -> bool:
    """Whether `value` holds no tensor: a shape, a number, a dtype, or tuples of them."""
    found = []
    map_aggregate(value, lambda v: found.append(v) if isinstance(v, torch.Tensor) else None)
    return not found


class ConcreteTracer(fx.Tracer):
    """fx's tracer, each node also run on meta tensors; `inputs` are the forward's inputs by name (meta
    tensors), `device` what a forward reading `x.device` is given (the module's own device, so tensors it
    makes there are the constants it would make)."""

    def __init__(self, inputs: dict[str, torch.Tensor], device: torch.device, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inputs, self.device = inputs, device

    _plain = False
    """While a call runs on meta tensors: attributes read are the module's own, not proxies."""

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        return attr_val if self._plain else super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m: Any, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._plain:
            return forward(*args, **kwargs)  # a child of a leaf, run on meta tensors with it: nothing recorded
        self._forward = forward  # a leaf's own forward, run unpatched on meta tensors
        return super().call_module(m, forward, args, kwargs)

    def _filter_traceback_frames(self, user_stack_summary: Any) -> Any:
        """fx's frames of the user's code, less this tracer's own (a node's stack trace ends at the user's line)."""
        import traceback

        kept = super()._filter_traceback_frames(user_stack_summary)
        return traceback.StackSummary.from_list([f for f in kept if f.filename != __file__])

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return ShapedProxy(node, self)

    def create_proxy(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                     name: str | None = None, type_expr: Any | None = None, proxy_factory_fn: Any = None) -> Any:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if kind == "output" or not isinstance(proxy, ShapedProxy):
            return proxy
        self._plain = True
        try:
            value = self._run(kind, target, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure is this call's, on these shapes
            raise MetaFailed(proxy.node.format_node() or proxy.node.name, exc) from None
        finally:
            self._plain = False
        if kind in ("call_function", "call_method") and is_static(value):
            self.graph.erase_node(proxy.node)  # a shape or a number: the constant it is, not a node
            return value
        proxy.value = value
        return proxy

    def _run(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a, kw = _values(args), _values(kwargs)
        if kind == "placeholder":
            return self.inputs.get(target, a[0] if a else None)  # a defaulted argument: its default
        if kind == "get_attr":
            return _meta(_attr(self.root, target))
        if kind == "call_function":
            return target(*a, **kw)
        if kind == "call_method":
            return getattr(a[0], target)(*a[1:], **kw)
        if kind == "call_module":
            from torch.nn.utils.stateless import _reparametrize_module

            module = self.root.get_submodule(target)
            state = {k: _meta(v) for k, v in module.state_dict(keep_vars=True).items()}
            with _reparametrize_module(module, state):
                return self._forward(*a, **kw)
        return None


def _attr(root: Any, target: str) -> Any:
    out = root
    for atom in target.split("."):
        out = getattr(out, atom)
    return out


def _meta(v: Any) -> Any:
    return v.to("meta") if isinstance(v, torch.Tensor) else v


def _values(args: Any) -> Any:
    """The arguments of a call as the meta run takes them: a proxy's value, a tensor constant on meta."""
    return map_aggregate(args, lambda v: v.value if isinstance(v, ShapedProxy) else _meta(v))
