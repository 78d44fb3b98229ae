"""The `archspec` command through a subprocess, exit codes included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_check_default_folder_passes_and_is_torch_free():
    code = ("import sys, runpy; sys.argv = ['archspec', 'check']\n"
            "try:\n    runpy.run_module('archspec', run_name='__main__')\n"
            "except SystemExit as e:\n    code = e.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("NO-TORCH 0"), out.stdout + out.stderr
    assert "specs/googlenet.yaml" in out.stdout


def test_check_broken_spec_prints_located_error_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("mix: mixed(8, 8, 16)", "mix: mixed(8, 8, 16, 4)"))
    good = tmp_path / "good.yaml"
    good.write_text(TINY.read_text())
    out = run("check", str(tmp_path))
    assert out.returncode == 1
    assert f"FAIL  {bad}  1 error" in out.stdout
    assert f"ok    {good}" in out.stdout
    assert f"{bad}:27:24: error[too-many-arguments] mix: mixed() takes 3 arguments" in out.stderr
    assert "Traceback" not in out.stderr


def test_check_json_and_min_input():
    out = run("check", "specs/googlenet.yaml", "--json", "--min-input")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    spec = data["specs"][0]
    assert data["ok"] and spec["params"] == 13_004_888 and spec["params_inference"] == 6_624_904
    assert spec["min_input"] == [15, 15] and spec["outputs"]["main"] == [1000]


def test_check_set_too_small_input_fails_with_smallest_size():
    out = run("check", "specs/googlenet.yaml", "--set", "input=[3,8,8]")
    assert out.returncode == 1
    assert "error[input-too-small]" in out.stderr
    assert "the smallest input this network accepts is 15×15 (given 8×8)" in out.stderr


@pytest.mark.parametrize("args", [["check", "no/such/dir"], ["check", "--set", "novalue"], ["frobnicate"],
                                  ["build", "specs/googlenet.yaml", "-o", "model.txt"]])
def test_usage_errors_exit_2(args):
    out = run(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_expect_is_not_checked_under_overrides_and_says_so():
    out = run("check", "specs/googlenet.yaml", "--set", "num_classes=10")
    assert out.returncode == 0, out.stderr
    assert "(expect: not checked under --set)" in out.stdout


def test_set_of_undeclared_variable_is_an_error():
    out = run("check", "specs/googlenet.yaml", "--set", "num_clases=10")
    assert out.returncode == 1
    assert "error[unknown-variable]" in out.stderr and "did you mean 'num_classes'?" in out.stderr


def test_build_prints_summary_and_saves_loadable_module(tmp_path):
    target = tmp_path / "tiny.pt"
    out = run("build", str(TINY), "--set", "classes=7", "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert "params" in out.stdout and "main 7 · aux 7 (training only)" in out.stdout
    import torch

    model = torch.load(target, weights_only=False)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 7)


def test_build_saves_an_exported_program(tmp_path):
    target = tmp_path / "tiny.pt2"
    out = run("build", str(TINY), "-o", str(target))
    assert out.returncode == 0, out.stderr
    import torch

    program = torch.export.load(target)
    assert program.module()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_build_on_missing_cuda_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = run("build", str(TINY), "--device", "cuda")
    assert out.returncode == 1
    assert "error[device-unavailable]" in out.stderr and "CUDA is not available" in out.stderr
    assert "Traceback" not in out.stderr


def test_build_never_overwrites_the_spec(tmp_path):
    spec = tmp_path / "net.pt"
    spec.write_text(TINY.read_text())
    before = spec.read_text()
    out = run("build", str(spec), "-o", str(spec))
    assert out.returncode != 0
    assert spec.read_text() == before


def test_build_spec_error_exits_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("pool: global_avgpool", "pool: global_avgpol"))
    out = run("build", str(bad))
    assert out.returncode == 1
    assert f"{bad}:28:9: error[unknown-op]" in out.stderr
    assert "Traceback" not in out.stderr
