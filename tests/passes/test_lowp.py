"""`archspec.optimize(..., dtype=)`: bf16 as a real cast, int8 from calibration, and the refusals of both."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from conftest import REPRESENTATIVE_SPECS, compile_small
from torch import nn

import archspec
from archspec.passes import PackedConv2d, optimize
from archspec.passes.fuse_conv import PostOp
from archspec.passes.lowp import Dequantize, LowPrecisionError, Quantize, QuantizedConv2d, Requantize, check_supported
from archspec.passes.lowp.calibrate import qparams

from .test_optimize import BIG, randomise, relative_error

SPECS = Path(__file__).resolve().parents[2] / "specs"
BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
VNNI = torch.backends.mkldnn.is_available() and bool(torch.cpu._is_vnni_supported())
needs_bf16 = pytest.mark.skipif(not BF16, reason="this CPU has no native bf16")
needs_vnni = pytest.mark.skipif(not VNNI, reason="this CPU has no VNNI (int8 dot products)")
INT8_SPECS = [pytest.param(name, marks=pytest.mark.slow) if name != "inception_mini.yaml" else name
              for name in ("inception_mini.yaml", "googlenet.yaml", "inception_v3.yaml", "resnet18.yaml")]
"""Concats (nested in Inception v3, fed by strided pools there), residual adds (ResNet): the int8 rewrite's cases."""
BF16_SPECS = [pytest.param(p.name, marks=pytest.mark.slow) if p.name in BIG else p.name for p in REPRESENTATIVE_SPECS]


def _built(name: str, small: bool = False) -> tuple[nn.Module, torch.Tensor]:
    """The spec's module with randomised batch norms and an input batch; with `small`, at its smallest input and
    at least 64×64 (bf16's rounding, relative to outputs that few positions make, is larger below: Swin-T gives
    1.3e-2 at 32×32, 8e-3 at 64×64 and 7e-3 at 224×224)."""
    spec = compile_small(SPECS / name, least=64) if small else SPECS / name
    module = randomise(archspec.build(spec, seed=0)).eval()
    x = torch.randn(1 if name in BIG else 2, *module.typed.input_shape, generator=torch.Generator().manual_seed(1))
    return module, x


@needs_bf16
@pytest.mark.parametrize("name", BF16_SPECS)
def test_bf16_is_within_1e_2_of_fp32(name):
    module, x = _built(name, small=True)
    fast = optimize(module, dtype="bf16", batch=len(x))
    with torch.inference_mode():
        expected, got = module(x), fast(x)
    assert got.dtype == torch.float32  # the output is cast back
    assert relative_error(expected, got) <= 1e-2, name


@needs_bf16
def test_bf16_weights_and_activations_are_bf16():
    module, x = _built("googlenet.yaml")
    fast = optimize(module, dtype="bf16", batch=len(x))
    packed = [m for m in fast.modules() if isinstance(m, PackedConv2d)]
    assert len(packed) == 57 and all(m.weight.dtype == torch.bfloat16 and m.packed.dtype == torch.bfloat16
                                     for m in packed)
    assert fast.passes["cast_bf16"] > 0 and fast.dtype == "bf16"
    seen: list[torch.dtype] = []
    hook = packed[10].register_forward_hook(lambda _m, ins, out: seen.extend([ins[0].dtype, out.dtype]))
    with torch.inference_mode():
        fast(x)
    hook.remove()
    assert seen == [torch.bfloat16, torch.bfloat16]


def _calibration(module: nn.Module, n: int = 3, batch: int = 2) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    return [torch.randn(batch, *module.typed.input_shape, generator=gen) for _ in range(n)]


@needs_vnni
@pytest.mark.parametrize("name", INT8_SPECS)
def test_int8_keeps_top1_on_calibrated_batches(name, record_property):
    module, _ = _built(name)
    batches = _calibration(module, n=2 if name in BIG else 3)
    fast = optimize(module, dtype="int8", calibrate=batches, batch=2)
    with torch.inference_mode():
        expected = torch.cat([module(b) for b in batches])
        got = torch.cat([fast(b) for b in batches])
    agreement = (expected.argmax(1) == got.argmax(1)).float().mean().item()
    record_property("top1_agreement", agreement)
    assert got.dtype == torch.float32 and fast.passes["quantize_int8"] > 0
    assert relative_error(expected, got) <= 0.25, name
    assert agreement >= 0.5, name


@needs_vnni
def test_concat_inputs_share_the_concat_scale():
    """GoogLeNet's Inception concats read codes at one scale: every branch's last conv writes it, no requantise."""
    module, x = _built("googlenet.yaml")
    fast = optimize(module, dtype="int8", calibrate=_calibration(module, n=1), batch=2)
    assert not [m for m in fast.modules() if isinstance(m, Requantize)]
    cats = [n for n in fast.graph.nodes if n.target is torch.cat]
    assert len(cats) == 9
    for cat in cats:
        scales = {fast.get_submodule(src.target).out_scale for src in cat.args[0]}
        assert len(scales) == 1
        assert all(isinstance(fast.get_submodule(src.target), QuantizedConv2d) for src in cat.args[0])


INT8_ACTIVATIONS = {"relu": torch.relu, "relu6": nn.functional.relu6, "hardswish": nn.functional.hardswish,
                    "silu": nn.functional.silu}
"""The activations oneDNN's int8 conv runs inside the call, as the torch functions they stand for."""


@needs_vnni
@pytest.mark.parametrize("activation", sorted(INT8_ACTIVATIONS))
@pytest.mark.parametrize("out_codes", [True, False])
def test_quantized_conv_matches_its_float_simulation(activation, out_codes):
    """oneDNN's int8 conv, its activation inside the call, equals the float conv of the rounded input and weights
    followed by the activation, rounded at the output scale (or not rounded, written as float32); so does the
    reference form torch.export saves."""
    from archspec.passes.fuse_conv import post_op

    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1, stride=2).eval()
    x = torch.randn(2, 8, 9, 9)
    x_q, out_q = qparams((-3.0, 3.0)), qparams((-0.5, 4.0))
    graph = torch.fx.symbolic_trace(nn.Sequential(nn.Identity(), {"relu": nn.ReLU(), "relu6": nn.ReLU6(),
                                                                   "hardswish": nn.Hardswish(),
                                                                   "silu": nn.SiLU()}[activation]))
    post = post_op(graph, [n for n in graph.graph.nodes if n.op == "call_module"][-1])  # fuse_conv's own table
    assert post is not None
    qconv = QuantizedConv2d(conv, x.shape, x_q, out_q if out_codes else None, post)
    codes = torch.clamp(torch.round(x / x_q[0]) + x_q[1], 0, 255)
    w = qconv.weight.float() * qconv.w_scale[:, None, None, None]
    simulated = INT8_ACTIVATIONS[activation](
        nn.functional.conv2d((codes - x_q[1]) * x_q[0], w, conv.bias, stride=2, padding=1))
    with torch.no_grad():
        got, exported = qconv(codes.to(torch.uint8)), qconv.reference(codes.to(torch.uint8))
    if out_codes:
        expected = torch.clamp(torch.round(simulated / out_q[0]) + out_q[1], 0, 255)
        assert got.dtype == exported.dtype == torch.uint8
        assert (got.float() - expected).abs().max() <= 1  # rounding of the int32 sum's rescale only
        assert (exported.float() - expected).abs().max() <= 1
    else:
        assert got.dtype == torch.float32
        assert torch.allclose(got, simulated, atol=1e-4) and torch.allclose(exported, simulated, atol=1e-4)


@needs_vnni
def test_int8_module_pickles():
    module, x = _built("inception_mini.yaml")
    fast = optimize(module, dtype="int8", calibrate=_calibration(module, n=1), batch=2)
    buffer = io.BytesIO()
    torch.save(fast, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    with torch.inference_mode():
        assert torch.equal(fast(x), again(x))


def test_int8_needs_calibration_batches():
    module = archspec.build(SPECS / "inception_mini.yaml").eval()
    with pytest.raises(LowPrecisionError) as info:
        optimize(module, dtype="int8")
    assert info.value.code == "calibration-needed"
    with pytest.raises(LowPrecisionError, match="no calibration batches"):
        optimize(module, dtype="int8", calibrate=[])


def test_int8_is_refused_on_cuda():
    with pytest.raises(LowPrecisionError, match="int8 runs on the CPU only") as info:
        check_supported("int8", torch.device("cuda"))
    assert info.value.code == "unsupported-dtype"
    check_supported("bf16", torch.device("cuda"))  # a real cast there; the GPU decides what it runs


def test_a_dtype_the_cpu_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    module = archspec.build(SPECS / "inception_mini.yaml").eval()
    with pytest.raises(LowPrecisionError, match="no native bf16") as info:
        optimize(module, dtype="bf16")
    assert info.value.code == "unsupported-dtype"


def test_an_unknown_dtype_is_refused():
    with pytest.raises(LowPrecisionError, match="unknown dtype 'int4'"):
        check_supported("int4", torch.device("cpu"))


@pytest.mark.parametrize(("k", "s", "p", "ceil"), [(3, 1, 1, False), (3, 2, 0, True), (2, 2, 0, True), (3, 2, 1, False),
                                                   (5, 3, 2, True), (3, 1, 0, False)])
def test_max_pools_of_codes_equal_torchs_max_pool(k, s, p, ceil):
    """uint8 codes pooled, channels-last (torch's quantized pool eagerly, running maxima for export): the max pool
    of their values, exactly, in the same layout."""
    from archspec.passes.lowp.int8 import MaxPoolCodes

    pool = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
    for hw in (k, k + 1, 7, 8):  # from the smallest input torch pools with this kernel
        codes = torch.randint(0, 256, (2, 5, hw, hw + 1), dtype=torch.uint8)
        codes = codes.contiguous(memory_format=torch.channels_last)
        expected = pool(codes.float())
        for got in (MaxPoolCodes(pool)(codes), MaxPoolCodes(pool).reference(codes)):
            assert got.dtype == torch.uint8 and got.is_contiguous(memory_format=torch.channels_last)
            assert torch.equal(got.float(), expected), (hw, k, s, p, ceil)


@needs_vnni
@pytest.mark.parametrize("out_codes", [True, False])
@pytest.mark.parametrize("relu", [True, False])
def test_quantized_conv_with_a_residual_matches_its_float_simulation(out_codes, relu):
    """conv + residual (+ ReLU) in one oneDNN call: the float conv of the rounded values plus the residual's
    value, rounded at the output scale; the residual as codes (at its own scale) or as float32."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1).eval()
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    x_q, out_q, res_q = qparams((-3.0, 3.0)), qparams((-2.0, 6.0)), qparams((-1.0, 5.0))
    qconv = QuantizedConv2d(conv, x.shape, x_q, out_q if out_codes else None, PostOp("relu") if relu else None,
                            residual=res_q if out_codes else (1.0, 0))
    codes = torch.clamp(torch.round(x / x_q[0]) + x_q[1], 0, 255).to(torch.uint8)
    res_codes = torch.randint(0, 256, (2, 16, 9, 9), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    res_value = (res_codes.float() - res_q[1]) * res_q[0]
    w = qconv.weight.float() * qconv.w_scale[:, None, None, None]
    simulated = nn.functional.conv2d((codes.float() - x_q[1]) * x_q[0], w, conv.bias, padding=1) + res_value
    simulated = torch.relu(simulated) if relu else simulated
    with torch.inference_mode():
        got = qconv(codes, res_codes.clone() if out_codes else res_value.clone())
        exported = qconv.reference(codes, res_codes if out_codes else res_value)
    if out_codes:
        expected = torch.clamp(torch.round(simulated / out_q[0]) + out_q[1], 0, 255)
        assert got.dtype == exported.dtype == torch.uint8
        assert (got.float() - expected).abs().max() <= 1 and (exported.float() - expected).abs().max() <= 1
    else:
        assert got.dtype == torch.float32
        assert torch.allclose(got, simulated, atol=1e-4) and torch.allclose(exported, simulated, atol=1e-4)


def _small(write_spec, body: str) -> nn.Module:
    spec = write_spec(f"archspec: 1\nname: joins\ninput: [8, 12, 12]\nbody:\n{body}")
    return randomise(archspec.build(spec, seed=0)).eval()


def _small_batches(n: int = 3) -> list[torch.Tensor]:
    """Calibration batches for `_small`'s 8×12×12 input."""
    return [torch.randn(4, 8, 12, 12, generator=torch.Generator().manual_seed(i)) for i in range(n)]


def _conversions(fused: nn.Module) -> list[nn.Module]:
    """The quantise, dequantise and requantise modules left between the int8 ops."""
    return [m for m in fused.modules() if type(m) in (Quantize, Dequantize, Requantize)]


def _int8_against_unfused(module: nn.Module, monkeypatch) -> nn.Module:
    """The int8 module, checked against fp32 and against the int8 rewrite with no add fused (its adds in float32):
    both within quantisation error, and a second run equal to the first (no value it still needs overwritten)."""
    from archspec.passes.lowp import int8

    batches = _small_batches()
    fused = optimize(module, dtype="int8", calibrate=batches, batch=4)
    with monkeypatch.context() as patch:
        patch.setattr(int8._Rewriter, "join", lambda self, add: None)
        unfused = optimize(module, dtype="int8", calibrate=batches, batch=4)
    x = batches[0].clone()
    with torch.inference_mode():
        expected, got, plain = module(x), fused(x), unfused(x)
        assert torch.equal(got, fused(x)) and torch.equal(x, batches[0])
    assert relative_error(expected, got) <= 0.05
    assert relative_error(plain, got) <= 0.05
    return fused


def _residual_convs(gm: nn.Module) -> list[QuantizedConv2d]:
    return [m for m in gm.modules() if isinstance(m, QuantizedConv2d) and m.residual]


@needs_vnni
def test_int8_residual_add_and_relu_run_inside_the_conv(write_spec, monkeypatch):
    """ResNet's join: the add and the ReLU after it inside the last conv of the branch, codes in and out."""
    body = ("  stem: ['conv(16, 3, p=1)', relu]\n"
            "  branch: ['conv(16, 3, p=1)', relu, 'conv(16, 1)']\n"
            "  join: add(branch, stem)\n"
            "  relu: relu\n"
            "  head: ['conv(16, 3, p=1)', relu]\n")
    fused = _int8_against_unfused(_small(write_spec, body), monkeypatch)
    last = fused.get_submodule("branch.2")
    assert _residual_convs(fused) == [last] and last.attr == "relu" and last.out_dtype is None
    assert not [n for n in fused.graph.nodes if n.op == "call_function" and n.target is not torch.cat]  # no add left
    conversions = _conversions(fused)
    assert len(conversions) == 1  # the input's quantisation; the head's conv writes float32


@needs_vnni
@pytest.mark.parametrize("head", ["['conv(32, 3, p=1)', relu]", "global_avgpool"])
def test_int8_join_of_two_convs_runs_in_the_later_one(write_spec, monkeypatch, head):
    """A downsampling block (conv branch + strided 1x1 shortcut): the later conv adds the other's output in. Read by
    a conv, the sum is written as codes, and so is the other's output; read as float32 (a pooled head), both are
    float32."""
    body = ("  stem: ['conv(16, 3, p=1)', relu]\n"
            "  branch: {from: stem, body: ['conv(32, 3, s=2, p=1)', relu, 'conv(32, 1)']}\n"
            "  shortcut: {from: stem, body: 'conv(32, 1, s=2)'}\n"
            "  join: add(branch, shortcut)\n"
            "  relu: relu\n"
            f"  head: {head}\n")
    fused = _int8_against_unfused(_small(write_spec, body), monkeypatch)
    joined, other = fused.get_submodule("shortcut"), fused.get_submodule("branch.2")
    assert _residual_convs(fused) == [joined] and joined.attr == "relu"
    codes = "conv" in head
    assert (joined.out_dtype is None) == codes and (other.out_dtype is None) == codes


@needs_vnni
def test_int8_residual_read_after_the_add_is_not_overwritten(write_spec, monkeypatch):
    """oneDNN writes the sum into the residual's memory: where the residual is read again after the add, the add
    stays outside the conv."""
    body = ("  stem: ['conv(16, 3, p=1)', relu]\n"
            "  branch: ['conv(16, 3, p=1)', relu, 'conv(16, 1)']\n"
            "  join: add(branch, stem)\n"
            "  again: add(join, stem)\n"
            "  head: ['conv(16, 3, p=1)', relu]\n")
    fused = _int8_against_unfused(_small(write_spec, body), monkeypatch)
    assert not _residual_convs(fused)


@needs_vnni
def test_int8_fused_joins_save_as_pt2_that_agrees(write_spec, tmp_path):
    """torch.export traces each fused join's reference form (the residual added in plain ops, no input written)."""
    from archspec.export import save

    body = ("  stem: ['conv(16, 3, p=1)', relu]\n"
            "  branch: {from: stem, body: ['conv(32, 3, s=2, p=1)', relu, 'conv(32, 1)']}\n"
            "  shortcut: {from: stem, body: 'conv(32, 1, s=2)'}\n"
            "  join: add(branch, shortcut)\n"
            "  relu: relu\n"
            "  more: ['conv(32, 3, p=1)', relu, 'conv(32, 1)']\n"
            "  join2: add(more, relu)\n"
            "  relu2: relu\n"
            "  pool: global_avgpool\n")
    module = _small(write_spec, body)
    batches = _small_batches(2)
    fused = optimize(module, dtype="int8", calibrate=batches, batch=4)
    assert len(_residual_convs(fused)) == 2
    save(fused, module.typed, tmp_path / "joins.pt2")
    program = torch.export.load(tmp_path / "joins.pt2").module()
    x = torch.randn(3, 8, 12, 12, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = fused(x)
    assert torch.allclose(program(x), expected, atol=1e-5)


@pytest.mark.parametrize(("k", "s", "p", "ceil", "count_pad"), [(3, 1, 1, False, True), (3, 1, 1, False, False),
                                                                (5, 3, 0, False, True), (3, 2, 1, True, True),
                                                                (2, 2, 0, True, False)])
def test_avg_pools_of_codes_equal_the_float_pool_requantised(k, s, p, ceil, count_pad):
    """uint8 codes average-pooled at their own scale (torch's quantized pool eagerly, plain aten ops for export):
    the code nearest the float pool of their values (a tie, an average ending in .5, goes to either neighbour)."""
    from archspec.passes.lowp.int8 import AvgPoolCodes

    pool = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=count_pad)
    q = qparams((-1.5, 4.0))
    for hw in (k, 7, 8):
        gen = torch.Generator().manual_seed(hw)
        codes = torch.randint(0, 256, (2, 5, hw, hw + 1), dtype=torch.uint8, generator=gen)
        codes = codes.contiguous(memory_format=torch.channels_last)
        exact = pool(Dequantize(q)(codes)) / q[0] + q[1]  # the average, in codes, unrounded
        for got in (AvgPoolCodes(pool, q)(codes), AvgPoolCodes(pool, q).reference(codes)):
            assert got.dtype == torch.uint8 and got.is_contiguous(memory_format=torch.channels_last)
            assert (got.float() - exact).abs().max() <= 0.5 + 1e-3, (hw, k, s, p, ceil, count_pad)
            if count_pad and k == 3 and not ceil:  # nine codes over nine is never a tie: the float path's codes
                assert torch.equal(got, Quantize(q)(pool(Dequantize(q)(codes))))


def _save_and_compare(fused: nn.Module, module: nn.Module, path: Path) -> None:
    from archspec.export import save

    save(fused, module.typed, path)
    program = torch.export.load(path).module()
    x = torch.randn(3, 8, 12, 12, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = fused(x)
    assert torch.allclose(program(x), expected, atol=1e-5)


@needs_vnni
def test_int8_average_pool_branch_stays_in_codes(write_spec, tmp_path):
    """An Inception pool branch (average pool → 1×1 conv) reads the concat's codes and pools them as codes: no
    dequantise or quantise around it; the result within quantisation error of float32, and its .pt2 agrees."""
    body = ("  stem: ['conv(16, 3, p=1)', relu]\n"
            "  mix:\n"
            "    concat:\n"
            "      a: ['conv(8, 1)', relu]\n"
            "      b: ['avgpool(3, s=1, p=1)', 'conv(8, 1)', relu]\n"
            "  pool2: avgpool(3, s=2, p=1, count_include_pad=false)\n"
            "  head: ['conv(16, 3, p=1)', relu, global_avgpool]\n")
    from archspec.passes.lowp.int8 import AvgPoolCodes

    module = _small(write_spec, body)
    batches = _small_batches()
    fused = optimize(module, dtype="int8", calibrate=batches, batch=4)
    assert len([m for m in fused.modules() if isinstance(m, AvgPoolCodes)]) == 2
    conversions = _conversions(fused)
    assert len(conversions) == 1  # the input's quantisation
    with torch.inference_mode():
        assert relative_error(module(batches[0]), fused(batches[0])) <= 0.05
    _save_and_compare(fused, module, tmp_path / "pools.pt2")


@needs_vnni
def test_int8_activations_run_inside_the_conv(write_spec, tmp_path):
    """MobileNet's ReLU6, MobileNetV3's Hardswish and EfficientNet's SiLU run inside the int8 conv, which writes the
    activation's codes: no float32 between convs; within quantisation error of float32; the .pt2 agrees."""
    body = ("  a: ['conv(16, 3, p=1)', relu6]\n"
            "  b: ['conv(16, 1)', hardswish]\n"
            "  c: ['conv(16, 3, p=1, groups=16)', silu]\n"
            "  head: ['conv(16, 1)', sigmoid, global_avgpool]\n")
    module = _small(write_spec, body)
    batches = _small_batches()
    fused = optimize(module, dtype="int8", calibrate=batches, batch=4)
    convs = {name: m for name, m in fused.named_modules() if isinstance(m, QuantizedConv2d)}
    posts = {name.split(".")[0]: (m.attr, tuple(m.scalars), m.out_dtype) for name, m in convs.items()}
    assert posts["a"] == ("hardtanh", (0.0, 6.0), None)
    assert posts["b"] == ("hardswish", (), None) and posts["c"] == ("swish", (), None)
    assert posts["head"] == ("none", (), torch.float32)  # sigmoid: not in oneDNN's int8 conv, run in float32
    conversions = _conversions(fused)
    assert len(conversions) == 1
    with torch.inference_mode():
        assert relative_error(module(batches[0]), fused(batches[0])) <= 0.05
    _save_and_compare(fused, module, tmp_path / "acts.pt2")
