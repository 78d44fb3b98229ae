"""The `expect:` checker: a spec's own assertions about its shapes and counts.

Each failed assertion is a diagnostic located at the line of the assertion,
with the expected and the computed value, so a spec in CI fails exactly where
a paper's number and the arithmetic disagree.
"""

from __future__ import annotations

from typing import Any

from .errors import Diagnostic, did_you_mean
from .infer import TypedGraph
from .ir import INPUT
from .ops.common import fmt_shape


def check_expect(typed: TypedGraph) -> list[Diagnostic]:
    """Evaluate the spec's `expect:` block; returns one diagnostic per failed assertion.

    The block describes the spec as written: under `--set` overrides it is not checked.
    """
    spec = typed.net.spec
    exp = spec.expect if spec is not None else None
    if exp is None or spec.overrides:
        return []
    out: list[Diagnostic] = []

    def fail(key: tuple, what: str, want: Any, got: Any, fmt: Any = _num, hint: str | None = None) -> None:
        out.append(Diagnostic("expect-failed", f"expected {what} {fmt(want)}, computed {fmt(got)}",
                              loc=spec.expect_loc(*key), expected=fmt(want), found=fmt(got), hint=hint))

    counts = {
        "params": (exp.params, typed.total("params"), "parameters (heads included)"),
        "params_inference": (exp.params_inference, typed.total("params", inference=True),
                             "inference parameters (training-only heads left out)"),
        "macs": (exp.macs, typed.total("macs", inference=True), "MACs at inference"),
    }
    for key, (want, got, what) in counts.items():
        if want is not None and want != got:
            diff = got - want
            fail((key,), what, want, got, hint=f"the network has {abs(diff):,} {'more' if diff > 0 else 'fewer'}")
    shapes = typed.output_shapes()
    if exp.output is not None and tuple(exp.output) != shapes.get("main"):
        fail(("output",), "main output shape", exp.output, shapes.get("main"), _shape)
    for head, want in (exp.outputs or {}).items():
        if head not in shapes:
            out.append(Diagnostic("unknown-reference", f"expect.outputs names no head '{head}'",
                                  loc=spec.expect_loc("outputs", head), found=head,
                                  hint=did_you_mean(head, list(shapes)) or f"heads: {', '.join(shapes)}"))
        elif tuple(want) != tuple(shapes[head]):
            fail(("outputs", head), f"output shape of head '{head}'", want, shapes[head], _shape)
    for name, want in (exp.shapes or {}).items():
        node = typed.net.output_of(name) if name != INPUT else None
        if node is None:
            out.append(Diagnostic("unknown-reference", f"expect.shapes names no node '{name}'",
                                  loc=spec.expect_loc("shapes", name), found=name,
                                  hint=did_you_mean(name, list(typed.net.scopes) + list(typed.net.nodes))))
        elif tuple(want) != tuple(typed.shape(node)):  # a channels-last shape is written as its axes
            fail(("shapes", name), f"output shape of '{name}'", want, typed.shape(node), _shape)
    for key, inference in (("min_input", False), ("min_input_inference", True)):
        want = getattr(exp, key)
        if want is not None:
            smallest = typed.smallest_input(inference=inference)
            if smallest != tuple(want):
                fail((key,), "smallest input" + (" at inference" if inference else ""), want, smallest, _shape)
    return out


def _num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _shape(v: Any) -> str:
    return "none" if v is None else fmt_shape(tuple(v))
