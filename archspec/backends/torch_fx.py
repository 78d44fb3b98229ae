"""Torch backend: typed graph -> `ArchModule`, a `torch.fx.GraphModule`.

The module tree follows the spec's names ('/' becomes '.'), so `state_dict()`
keys are the spec's node paths, e.g. `inception3a.branch2.0.conv.weight`.
Two fx graphs are generated over that one tree: the inference graph (the
module's own `graph` and `.code`) and, when the spec has training-only heads,
a training graph that also computes them. `forward` picks by `self.training`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from typing import Any

import torch
from torch import fx, nn

from ..errors import Diagnostic, SpecError
from ..expand import expand
from ..graph import build_graph
from ..infer import TypedGraph, infer
from ..ir import INPUT
from ..load import load_text
from ..ops import IDENTITY, REGISTRY, FunctionCall, ParamCall
from ..validate import validate


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(device: Any) -> torch.device | None:
    """Check that `device` exists here; raise DeviceError with the reason if not."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"'{device}' is not a device name ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' was asked for, but CUDA is not available on this machine "
                              "(use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{device}' was asked for, but this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device '{device}' was asked for, but MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise DeviceError(f"device type '{dev.type}' is not supported (cpu, cuda, mps or meta)")
    return dev


def build_module(typed: TypedGraph, device: Any = None) -> ArchModule:
    """Instantiate every op's module on `device` and generate the fx graphs."""
    dev = resolve_device(device)
    with torch.device(dev) if dev is not None else contextlib.nullcontext():
        root, emitted = _instantiate(typed)
    net = typed.net
    train_only = any(h.train_only for h in net.heads.values())
    eval_graph = _fx_graph(typed, emitted, training=False)
    train_graph = _fx_graph(typed, emitted, training=True) if train_only else None
    return ArchModule(root, eval_graph, train_graph, typed)


def _instantiate(typed: TypedGraph) -> tuple[nn.Module, dict[str, Any]]:
    net = typed.net
    root = nn.Module()
    emitted: dict[str, Any] = {}
    for name in typed.order:
        if name == INPUT:
            continue
        node = net.nodes[name]
        ins = [typed.shape(s) for s in typed.graph.inputs[name]]
        result = REGISTRY[node.op].emit(node.attrs, ins)
        if isinstance(result, nn.Module):
            _install(root, node.module_path, result, node)
        elif isinstance(result, ParamCall):
            _install(root, node.module_path, result.param, node)
        emitted[name] = result
    return root, emitted


def _install(root: nn.Module, path: str, module: nn.Module | nn.Parameter, node: Any) -> None:
    """Put a node's module (or its learned tensor, a `ParamCall`'s) at its path, making the scopes above it."""
    *parents, leaf = path.split(".")
    owner = root
    for part in parents:
        child = owner._modules.get(part)
        if child is None:
            child = nn.Module()
            owner.add_module(part, child)
        owner = child
    if leaf in owner._modules or leaf in owner._parameters:
        raise SpecError([Diagnostic("duplicate-name", f"two modules would be named '{path}'", loc=node.loc,
                                    path=node.name)])
    if isinstance(module, nn.Parameter):
        owner.register_parameter(leaf, module)
    else:
        owner.add_module(leaf, module)


def _fx_graph(typed: TypedGraph, emitted: dict[str, Any], training: bool) -> fx.Graph:
    net = typed.net
    graph = fx.Graph()
    env: dict[str, fx.Node] = {INPUT: graph.placeholder("x")}
    names = typed.order if training else typed.graph.eval_nodes()
    for name in names:
        if name == INPUT:
            continue
        node = net.nodes[name]
        args = [env[s] for s in typed.graph.inputs[name]]
        result = emitted[name]
        if result is IDENTITY:
            env[name] = args[0]
            continue
        fx_name = name.replace("/", "_")
        if isinstance(result, FunctionCall):
            fn_args = ((args,) if result.pack else tuple(args)) + result.args
            n = graph.create_node("call_function", result.fn, fn_args, dict(result.kwargs), name=fx_name)
        elif isinstance(result, ParamCall):
            param = graph.get_attr(node.module_path)
            n = graph.create_node("call_function", result.fn, (*args, param), name=fx_name)
        else:
            n = graph.create_node("call_module", node.module_path, tuple(args), {}, name=fx_name)
        n.meta["archspec"] = {"path": name, "op": node.op, "loc": str(node.loc), "origin": str(node.origin),
                              "shape": typed.shape(name)}
        env[name] = n
    keys = net.output_names(training)
    if keys == ["main"]:
        graph.output(env[net.outputs["main"]])
    else:
        graph.output({k: env[net.outputs[k]] for k in keys})
    graph.lint()
    return graph


class ArchModule(fx.GraphModule):
    """The emitted network: a `torch.fx.GraphModule` whose submodules carry the spec's names.

    `forward(x)` takes a batch `N×C×H×W` (the spec's `input` with a batch
    dimension). In eval mode it returns the main output tensor, e.g. `N×1000`
    logits; if the spec has heads that are not training-only, a dict of all
    outputs instead. In training mode, when the spec has training-only heads,
    it returns a dict `{"main": ..., "<head>": ...}` in spec order, and
    `loss_weights` gives each output's weight (1.0 for "main").

    `.code` is the inference graph's code; `.train_code` that of the training graph.
    """

    typed: TypedGraph
    """The analysed graph the module was built from (shapes, counts, the spec)."""

    def __init__(self, root: nn.Module, graph: fx.Graph, train_graph: fx.Graph | None, typed: TypedGraph):
        super().__init__(root, graph, class_name=_class_name(typed.net.name))
        self._modules.clear()
        self._modules.update(root._modules)  # every module, in spec order, heads included
        train = fx.GraphModule(root, train_graph) if train_graph is not None else None
        if train is not None:
            train._modules = self._modules  # one module tree shared by both graphs
        object.__setattr__(self, "_train_module", train)
        object.__setattr__(self, "typed", typed)
        self.loss_weights: dict[str, float] = typed.net.loss_weights()
        self.spec_name: str = typed.net.name

    def recompile(self) -> Any:
        code = super().recompile()
        cls = type(self)
        cls._forward_eval = cls.forward  # type: ignore[attr-defined]
        cls.forward = _dispatcher()  # type: ignore[method-assign]
        return code

    @property
    def train_code(self) -> str:
        train = self.__dict__.get("_train_module")
        return train.code if train is not None else self.code

    @property
    def train_graph(self) -> fx.Graph:
        train = self.__dict__.get("_train_module")
        return train.graph if train is not None else self.graph

    def __deepcopy__(self, memo: dict[int, Any]) -> ArchModule:
        return self._copy(lambda m: copy.deepcopy(m, memo))

    def __copy__(self) -> ArchModule:
        """A new module over the same submodules (and so the same parameters)."""
        return self._copy(lambda m: m)

    def _copy(self, child: Any) -> ArchModule:
        root = nn.Module()
        for name, param in self._parameters.items():  # a learned tensor of a top-level node (`layer_scale`)
            root.register_parameter(name, child(param))
        for name, module in self._modules.items():
            root.add_module(name, child(module))
        train = self.__dict__.get("_train_module")
        res = ArchModule(root, copy.deepcopy(self.graph), copy.deepcopy(train.graph) if train is not None else None,
                         self.typed)
        return res.train(self.training)

    def __reduce__(self) -> Any:
        spec = self.typed.net.spec
        return (_rebuild, (spec.source.text, spec.file, dict(spec.overrides), self.state_dict(), self.training))


_DISPATCH = """
def forward(self, x):
    train = self.__dict__.get("_train_module")
    if self.training and train is not None:
        return train.forward(x)
    return self._forward_eval(x)
"""


def _dispatcher() -> Any:
    """A `forward` that picks the training or inference graph, with a code object of its own.

    torch.compile caches compiled frames per code object: a dispatcher shared by
    every ArchModule would make a second compiled network of another input size
    recompile the first one's frame with dynamic shapes (slower kernels).
    """
    namespace: dict[str, Any] = {}
    filename = f"<archspec forward {next(_DISPATCHERS)}>"  # distinct, as torch's profile-guided caches key on it
    exec(compile(_DISPATCH, filename, "exec"), namespace)  # constant source, not user input
    return namespace["forward"]


_DISPATCHERS = itertools.count()


def _rebuild(text: str, file: str, overrides: dict, state: dict, training: bool) -> ArchModule:
    """Unpickle: recompile the spec text through the torch-free stages (the ones below this backend)."""
    typed = infer(build_graph(expand(validate(load_text(text, file), overrides))))
    device = next((t.device for t in state.values() if isinstance(t, torch.Tensor)), None)
    module = build_module(typed, device=device if device is not None and device.type != "cpu" else None)
    module.load_state_dict(state, strict=True)
    return module.train(training)


def _class_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name)
    return cleaned[:1].upper() + cleaned[1:] if cleaned else "Network"
