"""`archspec build`: output formats, --weights, and the memory check, through a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny.yaml"
GOOGLENET = ROOT / "specs" / "googlenet.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archspec", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def huge(tmp_path: Path) -> Path:
    path = tmp_path / "huge.yaml"
    path.write_text("archspec: 1\nname: huge\ninput: [3, 32, 32]\nbody:\n  conv1: conv(100000, 3)\n"
                    "  conv2: conv(100000, 3)\n  pool: global_avgpool\n  flatten: flatten\n  fc: linear(10)\n")
    return path


def test_huge_spec_is_refused_located_and_meta_builds_it(huge: Path):
    from archspec.memory import host_available

    if (host_available() or 0) >= 360_015_600_040:
        pytest.skip("this machine has 360 GB available")
    out = run("build", str(huge))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{huge}:6:10: error[too-much-memory] conv2: building huge needs 360.0 GB for its weights" in out.stderr
    assert "360,015,600,040 bytes: 90,003,900,010 float32 params" in out.stderr
    assert f"= note: {huge}:5:10: conv1 (conv): 11.2 MB" in out.stderr
    assert "Traceback" not in out.stderr
    meta = run("build", str(huge), "--device", "meta")
    assert meta.returncode == 0, meta.stderr
    assert "params   90,003,900,010" in meta.stdout and "built    on meta" in meta.stdout


def test_max_memory_limit_and_its_usage_errors():
    out = run("build", str(TINY), "--max-memory", "10kB")
    assert out.returncode == 1 and "more than the memory limit of 10.0 kB" in out.stderr
    assert "expected: at most 10.0 kB (10,000 bytes)" in out.stderr
    assert run("build", str(TINY), "--max-memory", "1MiB").returncode == 0
    bad = run("build", str(TINY), "--max-memory", "lots")
    assert bad.returncode == 2 and "cannot read the size 'lots'" in bad.stderr


def test_pt2_is_saved_without_a_warning(tmp_path: Path):
    target = tmp_path / "tiny.pt2"
    out = run("build", str(TINY), "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt2"]  # no temporary file left behind


def test_onnx_output_runs_in_onnxruntime(tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import torch

    target = tmp_path / "tiny.onnx"
    out = run("build", str(TINY), "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and f"saved    {target}" in out.stdout
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": torch.randn(5, 3, 32, 32).numpy()})[0].shape == (5, 10)


def test_weights_round_trip_through_the_cli(tmp_path: Path):
    import torch

    weights = tmp_path / "tiny.safetensors"
    assert run("build", str(TINY), "-o", str(weights)).returncode == 0
    model = tmp_path / "tiny.pt"
    out = run("build", str(TINY), "--weights", str(weights), "-o", str(model))
    assert out.returncode == 0, out.stderr
    assert f"weights  {weights}" in out.stdout
    from safetensors.torch import load_file

    saved = load_file(str(weights))
    loaded = torch.load(model, weights_only=False).state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_torchvision_state_dict_loads_with_weights(tmp_path: Path):
    torchvision = pytest.importorskip("torchvision")
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=False)
    path = tmp_path / "googlenet.pth"
    torch.save(ref.state_dict(), path)
    out = run("build", str(GOOGLENET), "--weights", str(path))
    assert out.returncode == 0, out.stderr
    mismatch = run("build", str(GOOGLENET), "--set", "num_classes=10", "--weights", str(path))
    assert mismatch.returncode == 1
    assert "specs/googlenet.yaml:81:7: error[weights-mismatch] fc: weight and bias in" in mismatch.stderr
    assert "  = expected: weight 10×1024, bias 10\n  = found:    weight 1000×1024, bias 1000" in mismatch.stderr
    assert "error[weights-mismatch] aux1/fc2:" in mismatch.stderr and "4 errors" in mismatch.stderr
    assert "Traceback" not in mismatch.stderr


def test_unreadable_weights_are_an_error_at_the_file(tmp_path: Path):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x00" * 64)
    out = run("build", str(TINY), "--weights", str(bad))
    assert out.returncode == 1 and f"{bad}:1:1: error[weights-unreadable] cannot read weights" in out.stderr
    assert "Traceback" not in out.stderr
    assert run("build", str(TINY), "--weights", str(tmp_path / "missing.pt")).returncode == 2


@pytest.mark.parametrize("args, message", [
    (["-o", "model.txt"], "unknown format .txt; use .pt, .pt2, .onnx, .safetensors or .py"),
    (["-o", "model"], "unknown format (no suffix)"),
    (["-o", "w.safetensors", "--device", "meta"], "a module built on meta has no weights to write to .safetensors"),
])
def test_output_usage_errors(tmp_path: Path, args: list[str], message: str):
    out = run("build", str(TINY), *[str(tmp_path / a) if a.startswith(("model", "w.")) else a for a in args])
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == []


def test_python_source_output(tmp_path: Path):
    pytest.importorskip("archspec.backends.python_source")
    target = tmp_path / "tiny.py"
    out = run("build", str(TINY), "-o", str(target), "--device", "meta")
    assert out.returncode == 0, out.stderr
    source = target.read_text()
    compile(source, str(target), "exec")
    assert "import torch" in source and not re.search(r"^\s*(from|import) archspec", source, re.M)
