"""The op registry itself: one entry per name, each complete, and no torch until an op is emitted."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from hypothesis import given

from archspec.ops import REGISTRY, Attrs, Op
from archspec.ops.registry import NoAttrs, register

from .cases import CASES, Case, examples

OPS = [REGISTRY[name] for name in sorted(REGISTRY)]
KINDS = {"conv", "linear", "pool", "norm", "act", "merge", "reshape", "regularize", "tokens", "attention"}


def test_duplicate_name_is_refused() -> None:
    before = dict(REGISTRY)
    twin = Op(name="conv", attrs=NoAttrs, infer=lambda a, ins: ins[0], emit=lambda a, ins: None, doc="A twin.")
    with pytest.raises(ValueError, match="'conv' is registered twice"):
        register(twin)
    assert REGISTRY == before


def test_registry_is_keyed_by_op_name() -> None:
    assert all(name == op.name for name, op in REGISTRY.items())


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_op_is_documented(op: Op) -> None:
    assert op.doc.strip() and op.doc.rstrip().endswith("."), "a doc string of whole sentences"
    assert inspect.getdoc(op.infer), "the shape rule's docstring goes into docs/ops.md"
    assert op.kind in KINDS, f"a new kind '{op.kind}': add it to KINDS here and to archspec.opsdoc.SECTIONS"
    assert op.arity is None or op.arity >= 1


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_attrs_model(op: Op) -> None:
    """Frozen, strict about unknown names, and callable positionally: required arguments first."""
    assert issubclass(op.attrs, Attrs)
    config = op.attrs.model_config
    assert (config.get("extra"), config.get("frozen")) == ("forbid", True)
    required = [f.is_required() for f in op.attrs.model_fields.values()]
    assert required == sorted(required, reverse=True), f"{op.name}: an optional argument before a required one"
    assert op.positional == list(op.attrs.model_fields)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_argument_names_are_unambiguous(op: Op) -> None:
    """Each argument's own name is among its aliases, and no name means two arguments."""
    seen: list[str] = []
    for name, field in op.attrs.model_fields.items():
        choices = list(getattr(field.validation_alias, "choices", None) or [name])
        assert field.validation_alias is None or choices[0] == name, f"{op.name}.{name}: own name first"
        assert all(isinstance(c, str) for c in choices)
        seen += choices
    assert len(seen) == len(set(seen)), f"{op.name}: an argument name used twice: {seen}"


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_label_describes_any_valid_call(op: Op) -> None:
    @examples(10)
    @given(case=CASES[op.name])
    def check(case: Case) -> None:
        label = op.describe(case.attrs())
        assert isinstance(label, str) and label.strip() and "None" not in label

    check()


def test_importing_the_ops_does_not_import_torch() -> None:
    code = "import archspec.ops, archspec.opsdoc, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("class_name", "op"), [
    ("Conv2d", "conv"), ("PackedConv2d", "conv"), ("SeparableMaxPool2d", "maxpool"), ("AvgPool2d", "avgpool"),
    ("AdaptiveAvgPool2d", "adaptive_avgpool"), ("ReLU", "relu"), ("ReLU6", "relu6"), ("BatchNorm2d", "bn"),
    ("Linear", "linear"), ("Hardsigmoid", "hardsigmoid"), ("Unheard", None),
])
def test_profile_names_a_module_by_the_ops_torch_modules(class_name: str, op: str | None) -> None:
    from archspec.profile import module_op

    assert module_op(class_name) == op


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_module_an_op_emits_is_claimed_by_an_op(op: Op) -> None:
    """`profile` can name each module class the torch backend makes, from the registry alone."""
    import torch

    from archspec.profile import module_op

    @examples(5)
    @given(case=CASES[op.name])
    def check(case: Case) -> None:
        try:
            emitted = op.emit(case.attrs(), list(case.ins))
        except (ValueError, RuntimeError, ZeroDivisionError):
            return
        if isinstance(emitted, torch.nn.Module):
            assert module_op(type(emitted).__name__) is not None, type(emitted).__name__

    check()
