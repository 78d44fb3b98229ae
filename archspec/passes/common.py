"""Small helpers shared by the passes: finding modules behind fx nodes, rewiring nodes, keeping meta."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn


def module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    """The module a `call_module` node calls, or None for any other node."""
    return gm.get_submodule(str(node.target)) if node.op == "call_module" else None


def calls(gm: fx.GraphModule, node: fx.Node, *types: type) -> bool:
    """Whether `node` calls a module of one of `types`."""
    return isinstance(module(gm, node), types)


def sole_user(node: fx.Node) -> fx.Node | None:
    """The one node that reads `node`'s output, if exactly one does."""
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    """A ReLU, written as a function or as a module."""
    if node.op == "call_function":
        return node.target in (torch.relu, torch.nn.functional.relu) and not node.kwargs.get("inplace", False)
    return calls(gm, node, nn.ReLU)


def paths(node: fx.Node) -> list[str]:
    """The spec node paths whose work `node` does (more than one after a fusion)."""
    meta = node.meta.get("archspec", {})
    return list(meta.get("paths", [meta["path"]] if "path" in meta else []))


def absorb(into: fx.Node, *others: fx.Node) -> None:
    """Record that `into` now also does the work of `others` (for profiles and error messages)."""
    meta = into.meta.setdefault("archspec", {})
    merged = paths(into)
    for other in others:
        merged += [p for p in paths(other) if p not in merged]
    meta["paths"] = merged


def bypass(graph: fx.Graph, node: fx.Node, replacement: fx.Node) -> None:
    """Let every reader of `node` read `replacement` instead, and delete `node`."""
    node.replace_all_uses_with(replacement)
    graph.erase_node(node)


def set_module(gm: fx.GraphModule, target: str, new: nn.Module) -> None:
    """Put `new` at the dotted path `target`, replacing what was there."""
    owner, _, leaf = target.rpartition(".")
    setattr(gm.get_submodule(owner) if owner else gm, leaf, new)


def add_module(gm: fx.GraphModule, target: str, new: nn.Module) -> str:
    """Install `new` under a fresh name derived from `target`; return the name used."""
    name, n = target, 1
    while _exists(gm, name):
        n += 1
        name = f"{target}_{n}"
    owner, _, leaf = name.rpartition(".")
    (gm.get_submodule(owner) if owner else gm).add_module(leaf, new)
    return name


def _exists(gm: fx.GraphModule, target: str) -> bool:
    try:
        gm.get_submodule(target)
    except AttributeError:
        return False
    return True


def conv_input_shapes(gm: fx.GraphModule, example: torch.Tensor) -> dict[str, torch.Size]:
    """Input shape of every Conv2d call, from one forward pass over `example`."""
    gm.recompile()  # the graph may have changed since the code was generated
    seen: dict[str, torch.Size] = {}

    def record(name: str) -> Any:
        def hook(_module: nn.Module, ins: tuple) -> None:  # returning a value would replace the inputs
            seen.setdefault(name, ins[0].shape)
        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in gm.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            gm(example)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def device_of(gm: nn.Module) -> torch.device:
    """Where the module's parameters live (CPU for a module without any)."""
    tensor: Any = next(gm.parameters(), None)
    if tensor is None:
        tensor = next(gm.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


INPUT_META = "archspec_example_input"
"""Key of `GraphModule.meta` holding the shape (batch included) of the input a pass may run once."""


def example_input(gm: fx.GraphModule) -> torch.Tensor:
    """A zero batch of the input shape `optimize` recorded, on the module's device."""
    return torch.zeros(gm.meta[INPUT_META], device=device_of(gm))


class Repacked:
    """A module holding a tensor packed for a kernel (`self.packed`, made by `_pack` from its plain tensors).

    Packed tensors are opaque (no storage torch can save), so the packed one is left out when pickling and
    made again by `_pack` when unpickling. Put it before `nn.Module` among the bases.
    """

    def _pack(self) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("packed", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pack()
