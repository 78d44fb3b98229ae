"""A bug in archspec, in any verb, ends with exit 3 and how to report it; a traceback only under --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from archspec.cli import main
from archspec.errors import Diagnostic, Location, SpecError

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "googlenet.yaml")


def _fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Make the torch-free pipeline, which every verb runs, raise `exc`."""
    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr("archspec.pipeline.infer", broken)


VERBS = [["check", SPEC], ["summary", SPEC], ["diff", SPEC, "--set-b", "num_classes=10"], ["draw", SPEC, "-o", "x.dot"]]


@pytest.mark.parametrize("args", VERBS, ids=lambda a: a[0])
def test_a_bug_exits_3_says_so_and_hides_the_traceback(args, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    _fail_with(monkeypatch, ValueError("the rule divided by zero"))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3, result.output
    assert "error[internal-error]: archspec crashed: ValueError: the rule divided by zero" in result.stderr
    assert "this is a bug in archspec, not in your spec" in result.stderr
    assert f"archspec {args[0]} " in result.stderr and SPEC in result.stderr  # the command line
    assert "= version:  archspec " in result.stderr
    assert "archspec --debug " + args[0] in result.stderr and "ARCHSPEC_DEBUG=1" in result.stderr
    assert "Traceback" not in result.output


def test_debug_flag_and_variable_print_the_traceback(monkeypatch):
    _fail_with(monkeypatch, ValueError("boom"))
    for args, env in ((["--debug", "check", SPEC], {}), (["check", SPEC], {"ARCHSPEC_DEBUG": "1"})):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 3
        assert "Traceback (most recent call last)" in result.stderr and "ValueError: boom" in result.stderr
        assert "rerun as" not in result.stderr


def test_interrupt_exits_130_quietly(monkeypatch):
    _fail_with(monkeypatch, KeyboardInterrupt())
    result = CliRunner().invoke(main, ["summary", SPEC])
    assert result.exit_code == 130 and result.output == ""


def test_a_spec_error_that_escapes_a_verb_is_still_exit_1_and_located(monkeypatch):
    diag = Diagnostic("shape-mismatch", "found it", loc=Location("x.yaml", 3, 4))
    _fail_with(monkeypatch, SpecError([diag]))
    result = CliRunner().invoke(main, ["summary", SPEC])
    assert result.exit_code == 1 and "x.yaml:3:4: error[shape-mismatch] found it" in result.stderr
    assert "Traceback" not in result.output


def test_an_os_error_is_exit_1_without_a_traceback(monkeypatch):
    _fail_with(monkeypatch, PermissionError(13, "Permission denied", "out.svg"))
    result = CliRunner().invoke(main, ["summary", SPEC])
    assert result.exit_code == 1 and "error[io-error]: Permission denied: out.svg" in result.stderr


def test_usage_errors_stay_exit_2():
    assert CliRunner().invoke(main, ["check", "--format", "yaml"]).exit_code == 2
    assert CliRunner().invoke(main, ["frobnicate"]).exit_code == 2


def test_a_real_process_exits_3_without_a_traceback(tmp_path):
    code = ("import archspec.pipeline as p\n"
            "def broken(*a, **k):\n    raise RuntimeError('internal')\n"
            "p.infer = broken\n"
            f"from archspec.cli import main\nmain(['check', {SPEC!r}], prog_name='archspec')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "error[internal-error]" in out.stderr and "Traceback" not in out.stderr
    assert f"command:  archspec check {SPEC}" in out.stderr
