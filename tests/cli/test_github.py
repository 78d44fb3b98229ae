"""`archspec check --format github` and the pre-commit hook other repositories run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from archspec.cli import main
from archspec.cli.github import escape_data, escape_property, workflow_command
from archspec.errors import Diagnostic, Location

ROOT = Path(__file__).resolve().parents[2]
TINY = (ROOT / "tests" / "fixtures" / "tiny.yaml").read_text()


def _specs(tmp_path: Path) -> tuple[Path, Path]:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(TINY)
    bad.write_text(TINY.replace("mix: mixed(8, 8, 16)", "mix: mixed(8, 8, 16, 4)"))
    return good, bad


def test_escaping_follows_the_workflow_command_rules():
    assert escape_data("50%\r\nnext: a, b") == "50%25%0D%0Anext: a, b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_one_annotation_per_diagnostic_at_its_line_and_column(tmp_path):
    good, bad = _specs(tmp_path)
    result = CliRunner().invoke(main, ["check", "--format", "github", str(good), str(bad)])
    assert result.exit_code == 1
    commands = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert commands == [f"::error file={escape_property(str(bad))},line=27,endLine=27,col=24,endColumn=25,"
                        "title=error[too-many-arguments]"
                        "::mix: mixed() takes 3 arguments%0A  = expected: mixed(a, b, c)%0A  = found:    4 arguments"
                        f"%0A  = note: {bad}:14:3: 'mixed' is defined here"]
    assert f"ok    {good}" in result.stdout and result.stderr == ""


def test_the_annotation_spans_the_columns_text_mode_underlines(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("mix: mixed(8, 8, 16)", "mix: mixd(8, 8, 16)"))
    text = CliRunner().invoke(main, ["check", str(bad)])
    assert "27 |   mix: mixd(8, 8, 16)\n   |        ^^^^\n" in text.stderr
    github = CliRunner().invoke(main, ["check", "--format", "github", str(bad)])
    command = next(line for line in github.stdout.splitlines() if line.startswith("::"))
    assert ",line=27,endLine=27,col=8,endColumn=12,title=error[unknown-op]::" in command  # endColumn exclusive


def test_good_specs_print_no_annotation():
    result = CliRunner().invoke(main, ["check", "--format", "github", str(ROOT / "specs" / "googlenet.yaml")])
    assert result.exit_code == 0 and "::" not in result.stdout


def test_warnings_and_unlocated_faults():
    warn = Diagnostic("unused-node", "x: nothing reads it", loc=Location("a,b.yaml", 2, 3), severity="warning")
    assert workflow_command(warn, "a,b.yaml") == ("::warning file=a%2Cb.yaml,line=2,endLine=2,col=3,endColumn=4,"
                                                  "title=warning[unused-node]::x: nothing reads it")
    bare = Diagnostic("file-not-found", "cannot read spec file: No such file or directory", found="x.yaml")
    assert workflow_command(bare, "x.yaml") == ("::error file=x.yaml,title=error[file-not-found]::cannot read spec "
                                                "file: No such file or directory%0A  = found:    x.yaml")


def test_json_flag_is_format_json_and_conflicts_are_usage_errors(tmp_path):
    spec = str(ROOT / "specs" / "googlenet.yaml")
    as_flag = CliRunner().invoke(main, ["check", "--json", spec])
    as_format = CliRunner().invoke(main, ["check", "--format", "json", spec])
    assert as_flag.exit_code == as_format.exit_code == 0
    strip = re.compile(r'"seconds": [0-9.]+')
    assert strip.sub("", as_flag.stdout) == strip.sub("", as_format.stdout)
    assert CliRunner().invoke(main, ["check", "--json", "--format", "github", spec]).exit_code == 2


def test_the_pre_commit_hook_runs_its_entry_on_the_files_it_matches(tmp_path):
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "archspec-check")
    files = re.compile(hook["files"])
    assert files.search("specs/googlenet.yaml") and files.search("models/specs/net.yml")
    assert not files.search(".github/workflows/ci.yaml") and not files.search("specs/README.md")
    entry = shlex.split(hook["entry"])
    assert entry[0] == "archspec" and hook["language"] == "python"
    command = [sys.executable, "-m", "archspec", *entry[1:]]  # the console script, as pre-commit installs it
    good, bad = _specs(tmp_path)
    run = [subprocess.run([*command, str(f)], cwd=ROOT, capture_output=True, text=True, timeout=120)
           for f in (good, bad)]
    assert run[0].returncode == 0, run[0].stdout + run[0].stderr
    assert run[1].returncode == 1 and "error[too-many-arguments]" in run[1].stderr
