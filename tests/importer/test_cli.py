"""`archspec import REF`: arguments, output file, refusals."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from archspec.cli import main


def run(*args: str):
    return CliRunner().invoke(main, ["import", *args])


def test_a_class_is_imported_to_stdout_with_its_arguments_read_as_yaml():
    result = run("tests.importer.nets:TinyNet", "--arg", "num_classes=7", "--input", "3,32,32")
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output)
    assert spec["name"] == "tinynet" and spec["input"] == [3, 32, 32] and spec["expect"]["output"] == [7]


def test_output_file_and_name_and_the_file_passes_check(tmp_path):
    out = tmp_path / "net.yaml"
    result = run("tests.importer.nets:TinyNet", "--input", "3,32,32", "-o", str(out), "--name", "tiny")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["name"] == "tiny"
    checked = CliRunner().invoke(main, ["check", str(out)])
    assert checked.exit_code == 0 and "ok" in checked.output, checked.output


def test_a_refused_module_writes_nothing_and_exits_1(tmp_path):
    out = tmp_path / "net.yaml"
    out.write_text("kept\n")
    result = run("tests.importer.nets:DataDependent", "--input", "3,16,16", "-o", str(out))
    assert result.exit_code == 1
    assert "error[import-untraceable] gate:" in result.output
    assert out.read_text() == "kept\n" and [p.name for p in tmp_path.iterdir()] == ["net.yaml"]


def test_a_bad_reference_or_input_is_a_usage_error():
    assert run("tests.importer.nets:Nope").exit_code == 2
    assert run("no_such_package_xyz:f").exit_code == 2
    assert run("tests.importer.nets").exit_code == 2
    assert run("tests.importer.nets:TinyNet", "--input", "3,x").exit_code == 2
