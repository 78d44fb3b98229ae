"""`archspec build --optimize / --passes` and `archspec.build(..., optimize=...)`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import archspec
from archspec.cli import PASS_NAMES
from archspec.passes import OptimizedModule, pass_names

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_cli_pass_list_matches_the_registry():
    assert list(PASS_NAMES) == pass_names()


def test_build_optimize_in_python_returns_an_inference_module():
    torch.manual_seed(0)
    plain = archspec.build(TINY).eval()
    torch.manual_seed(0)  # the same initial weights
    fast = archspec.build(TINY, optimize=["fold_bn", "channels_last"])
    assert isinstance(fast, OptimizedModule) and list(fast.passes) == ["fold_bn", "channels_last"]
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(plain(x), fast(x), rtol=1e-4, atol=1e-5)
    assert isinstance(archspec.build(TINY, optimize=True), OptimizedModule)
    assert not isinstance(plain, OptimizedModule)


def test_build_optimize_saves_the_optimized_graph(tmp_path):
    out = run("build", str(TINY), "--optimize", "-o", "tiny.pt", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert ("passes   remove_dropout 0 · sdpa_attention 0 · fold_bn 5 · fold_scale 0 · channels_last 5 · "
            "fuse_conv 5") in out.stdout
    module = torch.load(tmp_path / "tiny.pt", weights_only=False)
    assert any(type(m).__name__ == "PackedConv2d" for m in module.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_build_passes_are_checked_and_formats_refused(tmp_path):
    out = run("build", str(TINY), "--passes", "fold_bn,fold_all", cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown pass fold_all; the passes are remove_dropout, sdpa_attention, fold_bn" in out.stderr
    out = run("build", str(TINY), "--optimize", "-o", "tiny.onnx", cwd=tmp_path)
    assert out.returncode == 2 and "an optimised module is saved as .pt, .pt2" in out.stderr
    assert not (tmp_path / "tiny.onnx").exists()
