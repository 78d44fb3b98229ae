"""docs/ops.md is generated from the op registry and must not drift from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from archspec import opsdoc
from archspec.ops import REGISTRY

DOC = Path(__file__).resolve().parents[2] / "docs" / "ops.md"
REGENERATE = "regenerate it: python -m archspec.opsdoc > docs/ops.md"


def test_docs_ops_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == opsdoc.render(), f"docs/ops.md is stale; {REGENERATE}"


def test_main_prints_the_doc() -> None:
    result = subprocess.run([sys.executable, "-m", "archspec.opsdoc"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode("utf-8") == opsdoc.render()


def test_every_op_has_a_section() -> None:
    text = opsdoc.render()
    for name, op in REGISTRY.items():
        assert f"\n### `{name}`\n" in text
        assert op.doc in text


def test_signature_has_defaults_as_written_in_a_spec() -> None:
    assert opsdoc.signature(REGISTRY["conv"]) == "conv(out, k, s=1, p=0, d=1, groups=1, bias=true, exact=false)"
    assert opsdoc.signature(REGISTRY["maxpool"]) == "maxpool(k, s=null, p=0, d=1, ceil=false)"
    assert opsdoc.signature(REGISTRY["relu"]) == "relu"


def test_aliases_and_shape_rule_are_rendered() -> None:
    section = opsdoc.render().split("### `conv`")[1].split("###")[0]
    assert "| `k` | required | `kernel`, `kernel_size` |" in section
    assert "| `s` | `1` | `stride` |" in section
    assert "**Shape:** C×H×W → out×H′×W′" in section
    assert "Kind: `conv`. Inputs: 1." in section
    assert "Inputs: 1 or more." in opsdoc.render().split("### `concat`")[1].split("###")[0]


def test_yaml_values() -> None:
    assert [opsdoc.yaml_value(v) for v in (True, None, (1, 1), (1, 2), 1e-5, 0.5)] == \
        ["true", "null", "1", "[1, 2]", "1e-05", "0.5"]
