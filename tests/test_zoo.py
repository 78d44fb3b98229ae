"""Every spec in specs/: checks, builds, runs, and agrees with torch on shapes, counts and the smallest input.

The parity tests against the reference implementations live in tests/zoo/.
"""

from __future__ import annotations

import pytest
import torch
from conftest import REPRESENTATIVE_SPECS, SMALL_TRANSFORMERS
from conftest import SPECS as SPEC_DIR

import archspec
from archspec.backends.torch_fx import build_module
from archspec.deep import deep_check
from archspec.infer import min_input

SPECS = REPRESENTATIVE_SPECS + [SPEC_DIR / f"{name}.yaml" for name in SMALL_TRANSFORMERS]
"""On the meta device the transformers cost little at their own input size."""


@pytest.fixture(scope="module", params=SPECS, ids=lambda p: p.stem)
def checked(request):
    result = archspec.check_file(request.param)
    assert result.ok, "\n".join(d.render(result.sources) for d in result.diagnostics)
    return result.typed


def test_shapes_of_every_node_equal_torch_on_meta(checked):
    report = deep_check(checked)
    assert report.ok, [d.headline() for d in report.diagnostics]
    assert report.checked["train"] >= report.checked["eval"] > 0


def test_param_counts_and_outputs_equal_the_built_module(checked):
    model = build_module(checked, device="meta")
    heads = [h for h, info in checked.net.heads.items() if info.train_only]
    assert sum(p.numel() for p in model.parameters()) == checked.total("params")
    inference = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] not in heads)
    assert inference == checked.total("params", inference=True)
    x = torch.empty((2, *checked.input_shape), device="meta")
    out = model.eval()(x)
    outputs = checked.output_shapes()
    assert tuple(out.shape[1:]) == outputs["main"]
    if heads:
        trained = model.train()(x)
        assert {k: tuple(v.shape[1:]) for k, v in trained.items()} == outputs


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_smallest_input_works_in_torch_and_one_less_fails(checked, mode):
    """Built for the smallest input: a network with a position embedding (a ViT) runs at the size it was built
    for only, as torchvision's does. Where only the inference graph takes that size (a training-only head needs
    more: Inception v3's), the module built at the spec's input runs it, in eval mode."""
    smallest = min_input(checked.graph, checked.input_shape, inference=mode == "eval")
    assert smallest is not None
    channels = checked.input_shape[0]
    try:
        at_smallest = archspec.compile(checked.net.spec, input=[channels, *smallest])
    except archspec.SpecError:
        assert mode == "eval" and smallest != min_input(checked.graph, checked.input_shape)
        at_smallest = checked
    model = build_module(at_smallest, device="meta").train(mode == "train")
    model(torch.empty(2, channels, *smallest, device="meta"))
    with pytest.raises(RuntimeError):
        model(torch.empty(2, channels, smallest[0] - 1, smallest[1] - 1, device="meta"))
