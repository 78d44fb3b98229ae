"""examples/train.py: trains a spec on the digits, writes metrics and checkpoints, resumes, and runs under torchrun."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train.py"
MINI = str(ROOT / "specs" / "inception_mini.yaml")
QUICK = ["--limit", "100", "--batch-size", "20", "--no-progress"]

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def train():
    spec = importlib.util.spec_from_file_location("train_example", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_one_epoch_writes_metrics_and_a_checkpoint_and_resume_continues(train, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, str(SCRIPT), MINI, "--epochs", "1", "--out", str(out), *QUICK],
                          capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "80 training and 20 validation images at 3×32×32" in done.stdout
    assert "final validation accuracy:" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spec"] == "inception_mini" and metrics["world_size"] == 1
    assert [e["epoch"] for e in metrics["epochs"]] == [1]
    assert set(metrics["epochs"][0]) == {"epoch", "loss", "val_accuracy", "seconds", "lr"}
    assert 0 <= metrics["final_val_accuracy"] <= 1
    first = torch.load(out / "checkpoint.pt", weights_only=True)
    assert first["epoch"] == 1 and first["overrides"] == {"num_classes": 10}

    result = CliRunner().invoke(train.main, [MINI, "--epochs", "2", "--out", str(out), "--resume", *QUICK])
    assert result.exit_code == 0, result.output
    assert "epoch   1/2" not in result.output and "epoch   2/2" in result.output
    resumed = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
    assert resumed["epochs"][0] == metrics["epochs"][0]
    second = torch.load(out / "checkpoint.pt", weights_only=True)
    assert second["epoch"] == 2
    assert any(not torch.equal(second["model"][k], first["model"][k]) for k in first["model"])


@pytest.mark.parametrize("args, message", [
    (["missing.yaml"], "no spec file at missing.yaml"),
    ([MINI, "--set", "widht=3"], "error[unknown-variable]"),
    ([MINI, "--set", "input=[3,32]"], "error["),
    ([MINI, "--resume", "--out", "{tmp}/nothing"], "--resume: no checkpoint at"),
    ([MINI, "--device", "cuda"], "error[device-unavailable]"),
    ([MINI, "--device", "tpu"], "error[device-unavailable]"),
])
def test_mistakes_are_reported_without_a_traceback(train, tmp_path, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(train.main, args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_bad_spec_is_shown_located(train, write_spec):
    path = write_spec("""
        archspec: 1
        name: bad
        input: [1, 8, 8]
        body:
          fc: linaer(10)
    """)
    result = CliRunner().invoke(train.main, [str(path)])
    assert result.exit_code == 1
    assert f"{path}:5:" in result.output and "error[" in result.output and "Traceback" not in result.output


def test_the_classifier_must_have_ten_outputs(train, write_spec):
    path = write_spec("""
        archspec: 1
        name: wrong_width
        input: [1, 8, 8]
        body:
          flatten: flatten
          fc: linear(7)
    """)
    result = CliRunner().invoke(train.main, [str(path)])
    assert result.exit_code == 1 and "main output is [7], the digits need [10]" in result.output


@pytest.mark.slow
def test_two_processes_under_torchrun_keep_identical_parameters_and_lower_the_loss(tmp_path):
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(ROOT / "tests" / "examples" / "ddp_worker.py"), str(tmp_path)],
                          capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    first, second = metrics["epochs"]
    assert second["loss"] < first["loss"]
    p0 = torch.load(tmp_path / "params0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "params1.pt", weights_only=True)
    assert p0.keys() == p1.keys() and len(p0) > 100
    assert all(torch.equal(p0[k], p1[k]) for k in p0)
    assert done.stdout.count("final validation accuracy") == 1  # rank 0 alone prints
