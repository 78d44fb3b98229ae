"""`archspec.optimize`: every pass alone and all together keep the outputs of every spec, in eval mode."""

from __future__ import annotations

import copy
import io
import operator
from pathlib import Path

import pytest
import torch
from conftest import INCEPTION_FAMILY, REPRESENTATIVE_SPECS, SMALL_TRANSFORMERS, compile_small
from torch import nn

import archspec
from archspec.passes import PackedConv2d, default_passes, optimize, pass_names

SPECS = Path(__file__).resolve().parents[2] / "specs"
ROOT_SPECS = [p.name for p in REPRESENTATIVE_SPECS]
BIG = {"inception_v4.yaml", "inception_resnet_v2.yaml"}
TINY = SPECS.parent / "tests" / "fixtures" / "tiny.yaml"


def randomise(module: nn.Module) -> nn.Module:
    """Batch norms with statistics and affine terms far from the identity, so folding them is tested."""
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            for t, lo, hi in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0), (m.weight, 0.5, 1.5),
                              (m.bias, -0.2, 0.2)):
                if t is not None:
                    t.data.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)
    return module


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def _cases() -> list:
    """Every pass alone and all together on the Inception family (where each pass has the most to rewrite);
    on the other families all together, and `merge_siblings` (not a CPU default) alone: a wrong rewrite by any
    one pass shows in the module all of them made."""
    cases = []
    for name in ROOT_SPECS:
        alone = pass_names() if Path(name).stem in INCEPTION_FAMILY else ["merge_siblings"]
        for passes in [[p] for p in alone] + [None]:
            cases.append(pytest.param(name, passes, id=f"{name}-{'+'.join(passes or ['all'])}"))
    return cases


@pytest.fixture(scope="module")
def built(request):
    name = request.param
    module = randomise(archspec.build(compile_small(SPECS / name))).eval()  # every op, at a fraction of the cost
    x = torch.randn(2, *module.typed.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = module(x)
    return name, module, x, expected


@pytest.mark.parametrize(("built", "passes"), _cases(), indirect=["built"])
def test_outputs_unchanged(built, passes):
    name, module, x, expected = built
    optimized = optimize(module, passes)
    with torch.inference_mode():
        got = optimized(x)
    assert set(optimized.passes) == set(passes or default_passes("cpu"))
    assert relative_error(expected, got) <= 1e-4, name


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n == "maxvit_t" else [])
                                  for n in SMALL_TRANSFORMERS])  # MaxViT-T: 3 to 5 s on 2 cores
def test_transformer_outputs_unchanged(name):
    """Every pass together, the attention computed through scaled_dot_product_attention, at a small input."""
    module = archspec.build(archspec.compile(SPECS / f"{name}.yaml", **SMALL_TRANSFORMERS[name])).eval()
    x = torch.randn(2, *module.typed.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = module(x)
        got = optimize(module)(x)
    assert relative_error(expected, got) <= 1e-4, name


def test_original_module_is_untouched():
    module = randomise(archspec.build(TINY))
    state = copy.deepcopy(module.state_dict())
    code, train_code = module.code, module.train_code
    optimize(module.eval())
    assert module.code == code and module.train_code == train_code
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())
    module.train()
    assert set(module(torch.randn(2, 3, 32, 32))) == {"main", "aux"}  # the training graph still runs


def _targets(gm, kind) -> list:
    return [n for n in gm.graph.nodes if n.op == "call_module" and isinstance(gm.get_submodule(n.target), kind)]


def test_googlenet_structure():
    module = archspec.build(SPECS / "googlenet.yaml").eval()
    assert len(_targets(optimize(module, ["merge_siblings"]), nn.Conv2d)) == 39  # 57 convs, 18 merged away
    folded = optimize(module, ["remove_dropout", "fold_bn"])
    assert not _targets(folded, nn.BatchNorm2d) and not _targets(folded, nn.Dropout)
    assert folded.passes == {"remove_dropout": 1, "fold_bn": 57}
    full = optimize(module, ["fold_bn", "merge_siblings", "fuse_conv"])
    assert len(_targets(full, PackedConv2d)) == 39
    assert not any(n.target is torch.relu for n in full.graph.nodes)  # every ReLU runs inside its conv
    merged = next(n for n in full.graph.nodes if n.target == "inception3a.merged")
    assert merged.meta["archspec"]["paths"][:3] == ["inception3a/branch1/conv", "inception3a/branch1/bn",
                                                    "inception3a/branch2/0/conv"]


def test_fold_scale_removes_residual_scaling():
    module = archspec.build(SPECS / "inception_resnet_v2.yaml").eval()
    before = sum(n.target is operator.mul for n in module.graph.nodes)
    after = optimize(module, ["fold_scale"])
    assert before == after.passes["fold_scale"] > 0
    assert not any(n.target is operator.mul for n in after.graph.nodes)


def test_channels_last_converts_input_once():
    optimized = optimize(archspec.build(TINY).eval(), ["channels_last"])
    converts = [n for n in optimized.graph.nodes if n.op == "call_method" and n.target == "contiguous"]
    assert len(converts) == 1 and converts[0].args[0].op == "placeholder"
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in optimized.modules()
               if isinstance(c, nn.Conv2d))


def test_unknown_pass_is_refused_with_the_list():
    with pytest.raises(ValueError, match="unknown pass fold_everything; the passes are remove_dropout, sdpa_attention"):
        optimize(archspec.build(TINY), ["fold_everything"])


def test_only_built_modules_are_accepted():
    with pytest.raises(TypeError, match="optimize takes the module archspec.build returns"):
        optimize(nn.Linear(2, 2))


def test_optimized_module_refuses_training_and_saves():
    module = randomise(archspec.build(TINY)).eval()
    optimized = optimize(module)
    with pytest.raises(RuntimeError, match="for inference only"):
        optimized.train()
    buffer = io.BytesIO()
    torch.save(optimized, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded(x), optimized(x))


@pytest.mark.parametrize("passes", [None, [p for p in pass_names() if p != "fuse_conv"]], ids=["all", "portable"])
def test_compile_and_export_accept_the_optimized_module(passes):
    module = randomise(archspec.build(TINY)).eval()
    optimized = optimize(module, passes)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = module(x)
        assert relative_error(expected, torch.compile(optimized)(x)) <= 1e-4
    program = torch.export.export(optimized, (x,))
    with torch.inference_mode():
        assert relative_error(expected, program.module()(x)) <= 1e-4
