"""Every zoo spec gives the same outputs on CUDA as on the CPU, as built and optimised. Skipped without CUDA."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from conftest import REPRESENTATIVE_SPECS

import archspec

SPECS = REPRESENTATIVE_SPECS
TOLERANCE = 1e-4  # relative to the largest output magnitude, fp32 on both sides (TF32 off)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def exact_fp32() -> Iterator[None]:
    """cuDNN and cuBLAS may use TF32 for fp32 work (10-bit mantissa): off, so fp32 means fp32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def outputs(result: Any) -> dict[str, torch.Tensor]:
    return dict(result) if isinstance(result, dict) else {"main": result}


def assert_close(found: Any, expected: Any) -> None:
    found, expected = outputs(found), outputs(expected)
    assert found.keys() == expected.keys()
    for key, want in expected.items():
        got = found[key].float().cpu()
        diff = float((got - want).abs().max() / want.abs().max())
        assert diff <= TOLERANCE, f"output {key!r}: relative max difference {diff:.2e} > {TOLERANCE:g}"


def randomize_bn_stats(module: torch.nn.Module) -> None:
    """Non-trivial running statistics, so that a pass folding batch norm has something to fold."""
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module", params=SPECS, ids=lambda p: p.stem)
def cpu_pair(request):
    """A module built on the CPU with random weights, a batch of 2 at the spec's input size, its CPU output."""
    torch.manual_seed(0)
    module = archspec.build(request.param).eval()
    randomize_bn_stats(module)
    x = torch.randn(2, *module.typed.input_shape)
    with torch.inference_mode():
        expected = module(x)
    return module, x, expected


def run_cuda(module: torch.nn.Module, x: torch.Tensor) -> Any:
    with torch.inference_mode():
        out = module(x.cuda())
    torch.cuda.synchronize()
    return out


def test_cuda_output_equals_cpu(cpu_pair):
    module, x, expected = cpu_pair
    assert_close(run_cuda(copy.deepcopy(module).cuda(), x), expected)


def test_built_on_cuda_with_the_same_weights_equals_cpu(cpu_pair):
    module, x, expected = cpu_pair
    on_gpu = archspec.build(module.typed, device="cuda").eval()
    on_gpu.load_state_dict(module.state_dict(), strict=True)
    assert next(on_gpu.parameters()).is_cuda
    assert_close(run_cuda(on_gpu, x), expected)


def test_optimised_on_cuda_equals_unoptimised_cpu(cpu_pair):
    """Optimised on the device it runs on, as `archspec.optimize` asks (packed CPU convs do not move)."""
    optimize = getattr(archspec, "optimize", None)
    if optimize is None:
        pytest.skip("archspec.optimize is not in this tree")
    module, x, expected = cpu_pair
    assert_close(run_cuda(optimize(copy.deepcopy(module).cuda()), x), expected)
    with torch.inference_mode():
        assert_close(module(x), expected)  # optimize left the module it was given as it was

