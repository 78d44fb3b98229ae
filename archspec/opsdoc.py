"""The ops reference (docs/ops.md), rendered from the op registry.

    python -m archspec.opsdoc > docs/ops.md

Everything comes from each `Op`: its signature and defaults and the other
names of its arguments from the pydantic attribute model, its description from
`doc`, its shape rule from the docstring of its `infer` function, its kind and
number of inputs. Torch-free, like every stage before the backend.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Mapping

from .ops import REGISTRY, Op
from .ops.registry import field_aliases, spec_value

SECTIONS = {
    "conv": "Convolution",
    "linear": "Fully connected",
    "attention": "Attention",
    "pool": "Pooling",
    "norm": "Normalisation",
    "act": "Activations and scaling",
    "merge": "Merges",
    "reshape": "Reshaping",
    "regularize": "Regularisation",
    "tokens": "Tokens",
}
"""Section titles by op kind, in the order of the page; other kinds follow, titled by their name."""

HEADER = """\
# Ops

<!-- Generated from the op registry by `python -m archspec.opsdoc > docs/ops.md`.
     Edit the ops in archspec/ops/, not this file. -->

Every primitive op a spec can call. Arguments go by position in the order of
the signature, or by name (`conv(64, 3, s=2)`); an argument may also be written
with any of its other names (`conv(out_channels=64, kernel_size=3)`). An op
without arguments may drop its parentheses: `relu`. Arguments written as a
pair, `[h, w]`, may also be one number for both.

Shapes leave the batch out: C×H×W, or F for a flat tensor. After
`permute([0, 2, 3, 1])` an image tensor is channels-last, H×W×C: ops over the
last axis (`layernorm`, `linear`, `layer_scale`, activations) take it, convs and
pools refuse it until `permute([0, 3, 1, 2])` puts the channels first again;
Swin's `window_attention` and `patch_gather` take only H×W×C.
A token sequence L×D (after `to_tokens`, a Vision Transformer's) has its
channels last too: the same ops take it, and the token ops (`class_token`,
`pos_embedding`, `self_attention`, `select_token`, `mean_tokens`) take nothing else.
Ops marked *1 or more* inputs read the names given to them: `concat(b1, b2, b3)`,
`add(x, input)`. Ops have one output: a split is one node per part, each reading
the same input (`chunk(2, 0)`, `chunk(2, 1)`).
"""


signature = Op.signature
yaml_value = spec_value
aliases = field_aliases


def inputs(op: Op) -> str:
    if op.arity is None:
        return "1 or more"
    return str(op.arity)


def shape_rule(op: Op) -> str:
    """The docstring of the op's shape rule, on one line."""
    return " ".join((inspect.getdoc(op.infer) or "").split())


def summary(op: Op) -> str:
    """The first sentence of the op's doc."""
    first, _, _ = op.doc.partition(". ")
    return first.rstrip(".") + "."


def argument_table(op: Op) -> list[str]:
    fields = op.attrs.model_fields
    if not fields:
        return []
    rows = ["| argument | default | also written |", "| --- | --- | --- |"]
    for name, f in fields.items():
        default = "required" if f.is_required() else f"`{yaml_value(f.default)}`"
        other = ", ".join(f"`{a}`" for a in aliases(name, f)) or "—"
        rows.append(f"| `{name}` | {default} | {other} |")
    return rows + [""]


def op_section(op: Op) -> list[str]:
    lines = [f"### `{op.name}`", "", f"`{signature(op)}`", "", op.doc, ""]
    if rule := shape_rule(op):
        lines += [f"**Shape:** {rule}", ""]
    lines += argument_table(op)
    py = "" if op.source is not None else " No Python-source form: `-o .py` refuses it."
    lines += [f"Kind: `{op.kind}`. Inputs: {inputs(op)}.{py}", ""]
    return lines


def by_section(ops: Iterable[Op]) -> dict[str, list[Op]]:
    """Ops grouped under their section titles, sections in page order, ops in registry order."""
    ops = list(ops)
    kinds = list(SECTIONS) + sorted({op.kind for op in ops} - set(SECTIONS))
    groups = {SECTIONS.get(kind, kind.capitalize()): [op for op in ops if op.kind == kind] for kind in kinds}
    return {title: group for title, group in groups.items() if group}


def index_table(sections: Mapping[str, list[Op]]) -> list[str]:
    rows = ["| op | call | inputs | |", "| --- | --- | --- | --- |"]
    for group in sections.values():
        rows += [f"| [`{op.name}`](#{op.name}) | `{signature(op)}` | {inputs(op)} | {summary(op)} |"
                 for op in group]
    return rows + [""]


def render(registry: Mapping[str, Op] = REGISTRY) -> str:
    """docs/ops.md: an index of every op, then one section per kind of op."""
    sections = by_section(registry.values())
    lines = [HEADER, *index_table(sections)]
    for title, group in sections.items():
        lines += [f"## {title}", ""]
        for op in group:
            lines += op_section(op)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.buffer.write(render().encode("utf-8"))


if __name__ == "__main__":
    main()
