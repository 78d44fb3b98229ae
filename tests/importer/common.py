"""The round trip every importer test makes: import, check, build, strict load, equal outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import archspec
from archspec.graph_equal import graph_equal
from archspec.importer import import_module

SPECS = Path(__file__).resolve().parents[2] / "specs"


def imported(module: Any, input: tuple[int, ...], name: str = "net") -> tuple[str, Any]:  # noqa: A002
    """The spec text of `module` and its compiled graph, whose `expect:` holds."""
    text = import_module(module, input, name=name)
    graph = archspec.compile(archspec.loads(text, file=f"{name}.yaml"))
    assert archspec.check_expect(graph) == []
    return text, graph


def round_trip(module: Any, input: tuple[int, ...], name: str = "net", train: bool = False, rtol: float = 0.0) -> str:
    """Import `module`, build the spec, load the module's state_dict strictly, compare outputs on a random batch:
    equal, or within `rtol` of the largest output where the op's module computes in another order (Swin's
    window attention through `F.scaled_dot_product_attention`, as the zoo's parity tests allow)."""
    text, _ = imported(module, input, name)
    built = archspec.build(archspec.loads(text, file=f"{name}.yaml"))
    built.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(2, *input)
    module.eval()
    built.eval()
    with torch.no_grad():
        got, want = built(x), module(x)
    if rtol:
        err, scale = float((got - want).abs().max()), float(want.abs().max())
        assert err <= rtol * max(scale, 1e-6), f"{name}: max |diff| {err:.3g} against max |out| {scale:.3g}"
    else:
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    if train:
        _same_training_outputs(module, built, x)
    return text


def _same_training_outputs(module: Any, built: Any, x: torch.Tensor) -> None:
    """In training mode (dropout off) the built module returns {"main": ..., head: ...}; the source a tuple."""
    for m in (module, built):
        m.train()
        for sub in m.modules():
            if isinstance(sub, torch.nn.Dropout):
                sub.eval()
    with torch.no_grad():
        ref, out = module(x), built(x)
    want = list(ref) if isinstance(ref, tuple) else [ref]
    torch.testing.assert_close(out["main"], want[0], rtol=0, atol=0)
    heads = [v for k, v in out.items() if k != "main"]
    assert len(heads) == len(want) - 1
    for h in heads:
        assert any(torch.equal(h, w) for w in want[1:])


def on_meta(builder: Any) -> Any:
    """The module `builder()` makes, built on the meta device (no memory, no initialisation)."""
    with torch.device("meta"):
        return builder()


def same_keys_on_meta(module: Any, input: tuple[int, ...], name: str) -> str:  # noqa: A002
    """A large model on the meta device: import, check, build on meta, equal state_dict keys and shapes."""
    text, _ = imported(module, input, name)
    built = archspec.build(archspec.loads(text, file=f"{name}.yaml"), device="meta")
    shapes = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in module.state_dict().items()}
    return text


def code_lines(text: str) -> int:
    """Lines neither blank nor only a comment (benchmarks/import_lines.py counts the same)."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def assert_zoo_graph(text: str, name: str) -> None:
    """The imported spec is the hand-written `specs/NAME.yaml` as a graph: same ops, attributes, edges, outputs
    and weight names (`archspec diff` between them says `graph: equal`). Compiling is cheap; no import again."""
    imported = archspec.compile(archspec.loads(text, file=f"{name}.imported.yaml"))
    # at the imported input: a ViT's position embedding is as long as its input's tokens
    hand_written = archspec.compile(SPECS / f"{name}.yaml", input=list(imported.input_shape))
    verdict = graph_equal(imported, hand_written)
    assert verdict.equal, f"{name}: imported against specs/{name}.yaml: {verdict.summary(shown=6)}"
