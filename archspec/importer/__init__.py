"""The reverse compiler: a PyTorch module in, spec text out (`archspec import`).

    text = archspec.import_module(torchvision.models.googlenet(weights=None), input=(3, 224, 224))

Stages, each one module: `trace` (torch.fx, with the modules an op computes as leaves, and every
node's shape) → `tree` (the module tree as nested layers) → `templates` (instances of one class and one
structure become one parameterised template) → `write` (the spec text). A module that cannot be
imported raises `Refused`, naming the submodule, the file and line, and what is missing.
"""

from __future__ import annotations

from typing import Any

from .canonical import canonical_calls
from .templates import Library, snake
from .trace import Refused, Tree, trace, tree
from .write import spec_text

__all__ = ["Refused", "import_module"]


def import_module(module: Any, input: tuple[int, ...] = (3, 224, 224), name: str | None = None) -> str:  # noqa: A002
    """The spec text of `module` (an `nn.Module`) for inputs of shape `input` (C, H, W; batch left out)."""
    shape = tuple(int(d) for d in input)
    was_training = module.training
    try:
        t = _tree(module.eval(), shape)
        if _unused(module, t):
            heads = _tree(module.train(), shape)
            t.heads, t.head_outputs = heads.heads, heads.head_outputs
    finally:
        module.train(was_training)
    canonical_calls(t)
    lib = Library(t.root, [h.layer for h in t.heads])
    cls = type(module)
    params = sum(p.numel() for p in module.parameters())
    text = spec_text(t, lib, name or snake(cls.__name__), shape, params,
                     f"{cls.__module__}.{cls.__qualname__}, imported")
    _same_keys(text, module)
    return text


def _same_keys(text: str, module: Any) -> None:
    """The spec's module (built on the meta device) has the source's state_dict keys and shapes, or a refusal
    naming what differs: a parameter the forward never reads, a module name the language reserves."""
    from ..pipeline import build, loads

    built = build(loads(text, file="<imported>"), device="meta")
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    if want == have:
        return
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    other = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    first = (missing or extra or other)[0]
    parts = [f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
             f"{len(extra)} not in the module ({', '.join(extra[:3])})" if extra else "",
             f"{len(other)} of another shape ({', '.join(other[:3])})" if other else ""]
    raise Refused("import-unsupported", first.rsplit(".", 1)[0], None,
                  "the spec's weights would not be the module's: " + "; ".join(p for p in parts if p),
                  hint="a submodule whose weights the forward never reads cannot be written as a layer")


def _tree(module: Any, shape: tuple[int, ...]) -> Tree:
    try:
        return tree(trace(module, shape), module)
    except Refused as exc:
        if exc.where is not None or exc.code == "import-shape":
            raise
        return tree(trace(module, shape, locate=True), module)  # again, to say where


def _unused(module: Any, t: Tree) -> bool:
    """Whether some top-level child with weights takes no part in the eval graph (an auxiliary head)."""
    used = {item.name for item in t.root.body.items}
    return any(name not in used and list(child.parameters()) for name, child in module.named_children())
