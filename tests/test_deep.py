"""`archspec check --deep`: every analytic shape confirmed by torch on the meta device."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.infer import NodeInfo

pytest.importorskip("torch")

from conftest import REPRESENTATIVE_SPECS

from archspec.deep import deep_check  # noqa: E402  (needs torch)

ROOT = Path(__file__).resolve().parent.parent
SPECS = REPRESENTATIVE_SPECS
GOOGLENET = ROOT / "specs" / "googlenet.yaml"
CLI = [str(Path(sys.executable).parent / "archspec")]


def compiled(path: Path, **sets):
    try:
        return archspec.compile(path, **sets)
    except archspec.SpecError as exc:  # a broken spec is the spec tests' business, not this file's
        pytest.skip(f"{path.name} does not compile: {exc.diagnostics[0].headline()}")


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_spec_matches_torch_in_both_modes(path):
    typed = compiled(path)
    report = deep_check(typed)
    assert report.ok, [d.headline() for d in report.diagnostics]
    assert report.checked == {"eval": len(typed.graph.eval_nodes()), "train": len(typed.order)}


def test_a_wrong_shape_is_an_internal_error_naming_the_node():
    typed = archspec.compile(GOOGLENET)
    good = typed.info["inception4a"]
    typed.info["inception4a"] = NodeInfo((512, 13, 13), good.params, good.macs)  # H×W feed no emitter
    report = deep_check(typed)
    assert [(d.code, d.path) for d in report.diagnostics] == [("internal-shape-mismatch", "inception4a")] * 2
    eval_, train = report.diagnostics
    assert (eval_.expected, eval_.found) == ("512×13×13", "512×14×14")
    assert eval_.message.endswith("(eval mode)") and train.message.endswith("(train mode)")
    assert eval_.loc is not None and eval_.loc.line > 0
    assert "torch computed 512×14×14" in eval_.render()


def test_a_torch_failure_is_an_internal_error_naming_the_node():
    typed = archspec.compile(GOOGLENET)
    good = typed.info["inception4a"]
    typed.info["inception4a"] = NodeInfo((500, 14, 14), good.params, good.macs)  # next convs expect 500 channels
    report = deep_check(typed)
    assert [d.code for d in report.diagnostics] == ["internal-torch-error"] * 2
    assert report.diagnostics[0].path == "inception4b/branch1/conv"


def times64(text: str) -> str:
    """GoogLeNet with every width ×64: about 41 billion parameters (163 GB in float32)."""
    text = text.split("\nexpect:")[0] + "\n"
    text = re.sub(r"inception\(([\d, ]+)\)",
                  lambda m: "inception(" + ", ".join(str(int(v) * 64) for v in m.group(1).split(",")) + ")", text)
    text = re.sub(r"cbr\((\d+),", lambda m: f"cbr({int(m.group(1)) * 64},", text)
    return re.sub(r"linear\((\d+)\)", lambda m: f"linear({int(m.group(1)) * 64})", text)


@pytest.fixture
def huge(tmp_path: Path) -> Path:
    path = tmp_path / "googlenet_x64.yaml"
    path.write_text(times64(GOOGLENET.read_text()))
    return path


def test_a_network_far_too_large_to_allocate(huge):
    typed = archspec.compile(huge)
    assert typed.total("params") > 40_000_000_000
    assert typed.shape("inception5b") == (1024 * 64, 7, 7)
    report = deep_check(typed)
    assert report.ok, [d.headline() for d in report.diagnostics]
    assert report.checked["train"] == len(typed.order)


def test_cli_check_deep(huge, tmp_path):
    r = subprocess.run([*CLI, "check", "--deep", str(huge), str(GOOGLENET)], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 of 2 specs ok" in r.stdout
