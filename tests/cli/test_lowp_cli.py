"""`archspec build/profile --dtype`: bf16 and int8 modules saved and profiled, and the refusals, located."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from archspec.cli import main
from archspec.cli.lowp import DTYPE_NAMES
from archspec.passes.lowp import DTYPES

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "fixtures" / "tiny.yaml")
BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
VNNI = torch.backends.mkldnn.is_available() and bool(torch.cpu._is_vnni_supported())
CUDA = torch.cuda.is_available()


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_the_cli_knows_every_dtype():
    assert DTYPE_NAMES == DTYPES


@pytest.mark.skipif(not VNNI, reason="this CPU has no VNNI")
def test_int8_build_saves_pt_and_pt2_that_agree(tmp_path: Path):
    pt, pt2 = tmp_path / "tiny.pt", tmp_path / "tiny.pt2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.export saves every tensor whole: no warning
        out = invoke("build", TINY, "--dtype", "int8", "--calibrate", "2", "--seed", "0", "-o", str(pt), "-o", str(pt2))
    assert out.exit_code == 0, out.output
    assert "quantize_int8 5" in out.output and "fuse_conv" not in out.output
    module = torch.load(pt, weights_only=False)
    program = torch.export.load(pt2).module()
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        expected = module(x)
    assert expected.shape == (3, 10) and torch.allclose(program(x), expected, atol=1e-5)


@pytest.mark.skipif(not VNNI, reason="this CPU has no VNNI")
def test_int8_calibrates_on_a_tensor_file(tmp_path: Path):
    data = tmp_path / "inputs.pt"
    torch.save(torch.randn(10, 3, 32, 32), data)
    out = invoke("build", TINY, "--dtype", "int8", "--calibrate-data", str(data))
    assert out.exit_code == 0, out.output
    torch.save(torch.randn(10, 3, 28, 28), data)
    out = invoke("build", TINY, "--dtype", "int8", "--calibrate-data", str(data))
    assert out.exit_code == 1
    assert f"error[calibration-data]: --calibrate-data {data}: expected a tensor N×3×32×32" in out.output
    assert "found shape [10, 3, 28, 28]" in out.output and "Traceback" not in out.output


@pytest.mark.skipif(not BF16, reason="this CPU has no native bf16")
def test_bf16_build_and_profile():
    out = invoke("build", TINY, "--dtype", "bf16")
    assert out.exit_code == 0, out.output
    assert "cast_bf16" in out.output and "fuse_conv 5" in out.output
    out = invoke("profile", TINY, "--optimize", "--dtype", "bf16", "--repeat", "1", "--warmup", "0")
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "tiny  input 3×32×32  batch 1  cpu bf16  (optimised)"


@pytest.mark.skipif(not VNNI, reason="this CPU has no VNNI")
def test_int8_profile_attributes_time_to_the_spec():
    out = invoke("profile", TINY, "--optimize", "--dtype", "int8", "--repeat", "1", "--warmup", "0", "--depth", "2")
    assert out.exit_code == 0, out.output
    assert any(line.split()[:2] == ["mix/mid", "sequence"] for line in out.output.splitlines())


@pytest.mark.parametrize(("args", "code", "message"), [
    (["build", TINY, "--dtype", "int8"], 2,
     "error[calibration-needed]: --dtype int8 needs calibration data to fix its scales"),
    (["build", TINY, "--dtype", "int8", "--calibrate", "2", "--device", "cuda"], 2,
     "error[unsupported-dtype]: --dtype int8 --device cuda: int8 runs on the CPU only"),
    (["profile", TINY, "--optimize", "--dtype", "int8", "--device", "cuda:1"], 2,
     "error[unsupported-dtype]: --dtype int8 --device cuda:1: int8 runs on the CPU only"),
    (["build", TINY, "--dtype", "bf16", "--calibrate", "2"], 2,
     "error[calibration-unused]: --dtype bf16: --calibrate only applies to int8"),
    (["profile", TINY, "--dtype", "int8"], 2, "int8 runs in the optimised module only: add --optimize"),
])
def test_refusals_are_located_without_a_traceback(args, code, message):
    out = invoke(*args)
    assert out.exit_code == code, out.output
    assert message in out.output and "Traceback" not in out.output
    assert "= hint: " in out.output or code == 2


def test_a_dtype_this_cpu_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    out = invoke("build", TINY, "--dtype", "bf16")
    assert out.exit_code == 1, out.output
    assert "error[unsupported-dtype]: --dtype: this CPU has no native bf16 arithmetic" in out.output
    assert "= hint: leave out --dtype (fp32)" in out.output and "Traceback" not in out.output


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_bf16_and_fp16_are_real_casts_on_cuda(tmp_path: Path, dtype: str):
    target = tmp_path / "tiny.pt"
    out = invoke("build", TINY, "--device", "cuda", "--dtype", dtype, "-o", str(target))
    assert out.exit_code == 0, out.output
    module = torch.load(target, weights_only=False)
    wanted = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    assert {p.dtype for p in module.parameters()} == {wanted}
    assert module(torch.randn(2, 3, 32, 32, device="cuda")).dtype == torch.float32
