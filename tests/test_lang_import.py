"""import: libraries of blocks and vars, their faults, and a ResNet built from one that loads torchvision's weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import archspec
from archspec.errors import SpecError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lang"

RESNET18 = """archspec: 1
import: lib/resnet_lib.yaml
name: r18
input: [3, 64, 64]
vars:
  variant: resnet18
  block: basic
body: resnet($block, $depths[$variant])
"""


@pytest.fixture
def resnet18(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    shutil.copy(FIXTURES / "resnet_lib.yaml", tmp_path / "lib" / "resnet_lib.yaml")
    path = tmp_path / "r18.yaml"
    path.write_text(RESNET18)
    return path


def _errors(path: Path, **vars):
    with pytest.raises(SpecError) as info:
        archspec.compile(path, **vars)
    return info.value


def test_imported_blocks_and_vars_with_the_body_a_block_call_at_the_root(resnet18: Path):
    typed = archspec.compile(resnet18)
    assert typed.net.outputs["main"] == "fc"
    assert {"conv1", "layer1/0/conv1", "layer2/0/downsample/0", "layer4/1/bn2"} <= set(typed.net.nodes)
    assert "layer1/0/downsample/0" not in typed.net.nodes  # $in.c == planes and s == 1: absent
    assert typed.total("params") == 11_689_512
    assert set(typed.net.sources) == {str(resnet18), os.path.normpath(resnet18.parent / "lib" / "resnet_lib.yaml")}


def test_set_reaches_imported_vars(resnet18: Path):
    typed = archspec.compile(resnet18, depths={"resnet18": [1, 1, 1, 1]})
    assert "layer1/1/conv1" not in typed.net.nodes and "layer4/0/conv1" in typed.net.nodes
    assert "layer1/2/conv1" in archspec.compile(resnet18, variant="resnet34").net.nodes


@pytest.mark.parametrize("variant, block", [("resnet18", "basic"), ("resnet50", "bottleneck")])
def test_resnet_loads_torchvisions_state_dict_strictly_and_agrees(resnet18: Path, variant: str, block: str):
    import torch
    import torchvision

    torch.manual_seed(0)
    ref = getattr(torchvision.models, variant)().eval()
    model = archspec.build(resnet18, variant=variant, block=block).eval()
    assert list(model.state_dict()) == list(ref.state_dict())
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-4)


def test_own_definitions_override_imported_ones(resnet18: Path):
    text = RESNET18 + "blocks:\n  basic:\n    params: [planes, s=1]\n    body: 'conv($planes, 3, s=$s, p=1)'\n"
    depths = "  variant: resnet18\n  depths: {resnet18: [1, 1, 1, 1]}\n"
    resnet18.write_text(text.replace("  variant: resnet18\n", depths))
    typed = archspec.compile(resnet18)
    assert "layer1/0" in typed.net.nodes and "layer2/1" not in typed.net.nodes


@pytest.mark.parametrize("target, code, fragment", [
    ("missing.yaml", "file-not-found", "cannot read imported file"),
    ("/etc/passwd.yaml", "bad-import", "absolute"),
    ("lib", "bad-import", "not a spec file"),
    ("libdir.yaml", "bad-import", "not a regular file"),
    ("notes.txt", "bad-import", "not a spec file"),
])
def test_import_faults_are_located(resnet18: Path, target: str, code: str, fragment: str):
    (resnet18.parent / "libdir.yaml").mkdir()
    (resnet18.parent / "notes.txt").write_text("secret")
    resnet18.write_text(RESNET18.replace("lib/resnet_lib.yaml", target))
    diags = _errors(resnet18).diagnostics
    assert diags[0].code == code and fragment in diags[0].message
    assert str(diags[0].loc) == f"{resnet18}:2:9"


def test_a_link_named_yaml_to_another_file_is_refused(resnet18: Path):
    (resnet18.parent / "notes.txt").write_text("secret")
    (resnet18.parent / "notes.yaml").symlink_to(resnet18.parent / "notes.txt")
    resnet18.write_text(RESNET18.replace("lib/resnet_lib.yaml", "notes.yaml"))
    (d,) = _errors(resnet18).diagnostics
    assert d.code == "bad-import" and "not a spec file" in d.message


def test_import_cycle(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("archspec: 1\nimport: b.yaml\n")
    (tmp_path / "b.yaml").write_text("archspec: 1\nimport: [a.yaml]\n")
    main = tmp_path / "main.yaml"
    main.write_text("archspec: 1\nimport: a.yaml\nname: t\ninput: [3, 8, 8]\nbody: relu\n")
    (d,) = _errors(main).diagnostics
    assert d.code == "import-cycle" and "a.yaml → b.yaml → a.yaml" in d.message
    assert d.loc is not None and d.loc.file.endswith("b.yaml") and d.loc.line == 2


def test_a_fault_in_an_imported_file_renders_with_its_text(resnet18: Path):
    lib = resnet18.parent / "lib" / "resnet_lib.yaml"
    lib.write_text(lib.read_text().replace("bn1: bn", "bn1: bn(", 1))
    error = _errors(resnet18)
    (d,) = error.diagnostics
    assert d.code == "bad-expression" and d.loc is not None and d.loc.file.endswith("resnet_lib.yaml")
    assert "bn1: bn(" in error.render()


def test_a_yaml_fault_in_an_imported_file(resnet18: Path):
    lib = resnet18.parent / "lib" / "resnet_lib.yaml"
    lib.write_text("archspec: 1\nblocks: [\n")
    (d,) = _errors(resnet18).diagnostics
    assert d.code == "yaml-syntax" and d.loc is not None and d.loc.file.endswith("resnet_lib.yaml")


def test_an_imported_file_must_be_a_library(resnet18: Path):
    lib = resnet18.parent / "lib" / "resnet_lib.yaml"
    lib.write_text(lib.read_text() + "body: relu\n")
    (d,) = _errors(resnet18).diagnostics
    assert d.code == "bad-import" and "'body'" in d.message and d.notes and d.notes[0][0].line == 2


def test_a_library_alone_is_not_built():
    with pytest.raises(SpecError) as info:
        archspec.compile(FIXTURES / "resnet_lib.yaml")
    (d,) = info.value.diagnostics
    assert d.code == "missing-field" and "library" in d.message
    assert d.hint and "`import: resnet_lib.yaml`" in d.hint and "/resnet_lib.yaml`" in d.hint  # as a spec writes it


def test_python_source_of_the_imported_resnet_round_trips(resnet18: Path):
    import torch

    from archspec.backends.python_source import emit_python

    typed = archspec.compile(resnet18)
    source = emit_python(typed)
    namespace: dict = {}
    exec(compile(source, "r18.py", "exec"), namespace)
    model = archspec.build(typed).eval()
    ours = namespace["R18"]().eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), model(x))


def test_check_renders_a_later_fault_with_the_imported_files_text(resnet18: Path):
    """A fault found after validation (here an op's argument, at expansion) in an imported block."""
    lib = resnet18.parent / "lib" / "resnet_lib.yaml"
    lib.write_text(lib.read_text().replace("bn1: bn", "bn1: bn(eps=-1)", 1))
    result = archspec.check_file(resnet18)
    assert not result.ok and result.diagnostics[0].loc.file.endswith("resnet_lib.yaml")
    assert "bn1: bn(eps=-1)" in SpecError(result.diagnostics, result.sources).render()
