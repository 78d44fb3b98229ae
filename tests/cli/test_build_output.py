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


def test_pt2_is_saved_without_a_warning_and_runs_at_any_batch(tmp_path: Path):
    import torch

    target = tmp_path / "tiny.pt2"
    out = run("build", str(TINY), "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt2"]  # no temporary file left behind
    program = torch.export.load(target).module()
    for batch in (1, 3):
        assert program(torch.randn(batch, 3, 32, 32)).shape == (batch, 10)


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
    missing = run("build", str(TINY), "--weights", str(tmp_path / "missing.pt"))
    assert missing.returncode == 1, missing.stderr
    assert f"{tmp_path / 'missing.pt'}:1:1: error[weights-unreadable] cannot read weights: no such file" in \
        missing.stderr and "= hint: --weights takes a .safetensors file" in missing.stderr


def test_a_fifo_as_weights_is_refused_without_waiting_on_it(tmp_path: Path):
    import os

    fifo = tmp_path / "w.safetensors"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-m", "archspec", "build", str(TINY), "--weights", str(fifo)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "a FIFO (named pipe), not a regular file" in out.stderr, out.stderr


def test_weights_dtypes_through_the_cli(tmp_path: Path):
    import torch

    import archspec

    state = archspec.build(TINY).state_dict()
    half, bools = tmp_path / "half.pt", tmp_path / "bool.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, half)
    torch.save({k: v.bool() if v.is_floating_point() else v for k, v in state.items()}, bools)
    ok = run("build", str(TINY), "--weights", str(half))
    assert ok.returncode == 0 and "converted 29 float16 tensors to float32 (lossless)" in ok.stdout, ok.stderr
    refused = run("build", str(TINY), "--weights", str(bools))
    assert refused.returncode == 1 and "error[weights-mismatch] stem/conv: weight in" in refused.stderr
    assert "another dtype than this conv's\n" in refused.stderr and "= found:    weight bool" in refused.stderr


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


def _fill(folder: Path) -> None:
    """Take every free byte of `folder`'s file system."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


@pytest.mark.parametrize("suffix", [".pt", ".pt2", ".onnx", ".safetensors", ".py"])
def test_a_full_disk_is_an_io_error_and_leaves_the_old_file(full_disk: Path, suffix: str):
    if suffix == ".onnx":
        pytest.importorskip("onnxscript")
    if suffix == ".py":
        pytest.importorskip("archspec.backends.python_source")
    target = full_disk / f"model{suffix}"
    target.write_bytes(b"old")
    _fill(full_disk)
    out = run("build", str(TINY), "-o", str(target))
    assert out.returncode == 1, out.stderr
    assert f"error[io-error]: No space left on device: {target}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "internal-error" not in out.stderr
    assert target.read_bytes() == b"old" and sorted(p.name for p in full_disk.iterdir()) == ["filler", target.name]


def test_a_failed_expect_saves_nothing(tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("archspec: 1\nname: bad\ninput: [3, 8, 8]\nbody:\n  conv: conv(4, 3, p=1)\n"
                    "  pool: global_avgpool\n  flatten: flatten\n  fc: linear(5)\nexpect:\n  output: [10]\n")
    outputs = [tmp_path / "m.pt", tmp_path / "w.safetensors", tmp_path / "m.pt2", tmp_path / "m.py"]
    for path in outputs:
        path.write_text("old")
    out = run("build", str(spec), *[a for p in outputs for a in ("-o", str(p))])
    assert out.returncode == 1 and "error[expect-failed]" in out.stderr
    assert "saved    nothing: the spec's expect: fails" in out.stdout
    assert all(p.read_text() == "old" for p in outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "m.pt", "m.pt2", "m.py", "w.safetensors"]


def test_an_output_in_a_missing_folder_is_an_io_error(tmp_path: Path):
    target = tmp_path / "models" / "m.pt"
    out = run("build", str(TINY), "-o", str(target))
    assert out.returncode == 1 and f"error[io-error]: cannot write {target}: the output's folder does not exist; " \
        f"create it first: {tmp_path / 'models'}" in out.stderr, out.stderr
    drawn = run("draw", str(TINY), "-o", str(tmp_path / "pics" / "t.dot"))
    assert drawn.returncode == 1 and "error[io-error]" in drawn.stderr
    assert list(tmp_path.iterdir()) == []


def test_several_outputs_and_seeds_give_one_set_of_weights(tmp_path: Path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import torch
    from safetensors.torch import load_file

    import archspec

    a, b, c, d = (tmp_path / n for n in ("a.onnx", "b.safetensors", "c.onnx", "d.safetensors"))
    for args in (["-o", str(a)], ["-o", str(b), "-o", str(c)]):
        out = run("build", str(TINY), "--seed", "7", *args)
        assert out.returncode == 0, out.stderr
    assert f"saved    {b}\n  saved    {c}" in out.stdout
    assert run("build", str(TINY), "--seed", "8", "-o", str(d)).returncode == 0
    x = torch.randn(3, 3, 32, 32)
    expected = archspec.build(TINY, weights=b).eval()(x)
    expected = expected if isinstance(expected, torch.Tensor) else expected["main"]
    for onnx in (a, c):  # the .onnx of another command with the same seed, and the one written with b
        got = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
        assert torch.allclose(torch.from_numpy(got), expected, atol=1e-5)
    other, same = load_file(str(d)), load_file(str(b))
    assert any(not torch.equal(other[k], same[k]) for k in same if same[k].is_floating_point())


def test_the_same_output_twice_is_a_usage_error(tmp_path: Path):
    out = run("build", str(TINY), "-o", str(tmp_path / "m.pt"), "-o", f"{tmp_path}/./m.pt")
    assert out.returncode == 2 and "is given twice" in out.stderr and list(tmp_path.iterdir()) == []


def test_an_optimised_module_with_packed_weights_is_refused_as_pt2(tmp_path: Path):
    target = tmp_path / "tiny.pt2"
    out = run("build", str(TINY), "--optimize", "-o", str(target))
    if "fuse_conv 0" in out.stdout:  # no oneDNN packing on this CPU: the program is written
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode == 1 and f"error[export-failed]: {target}: stem.conv holds oneDNN-packed weights" in \
        out.stderr, out.stderr
    assert "Traceback" not in out.stderr and list(tmp_path.iterdir()) == []
