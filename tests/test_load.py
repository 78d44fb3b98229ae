"""Stage 1, load: safe YAML with a location for every node."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_fuzz import SEED, SOURCES, mutants

from archspec.errors import SpecError
from archspec.load import load_file, load_text

ROOT = Path(__file__).resolve().parent.parent
load_module = importlib.import_module("archspec.load")  # the package's `load` is the pipeline function


def codes(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.yaml")
    return [d.code for d in info.value.diagnostics]


def test_locations_of_keys_values_and_list_items():
    src = load_text("a: 1\nbody:\n  x: conv(3)\n  y:\n    - relu\n    - 'flatten'\n", "t.yaml")
    assert src.data == {"a": 1, "body": {"x": "conv(3)", "y": ["relu", "flatten"]}}
    assert str(src.loc(("body", "x"))) == "t.yaml:3:6"
    assert str(src.key_loc(("body", "x"))) == "t.yaml:3:3"
    assert str(src.loc(("body", "y", 1))) == "t.yaml:6:7"
    assert str(src.loc_in(("body", "y", 1), 2)) == "t.yaml:6:10"  # quoted: one column for the quote
    assert str(src.loc(("body", "missing", "deeper"))) == "t.yaml:3:3"  # nearest written ancestor


def test_underscored_integers_and_floats():
    assert load_text("p: 6_624_904\ne: 1.0e-3\n").data == {"p": 6624904, "e": 0.001}


@pytest.mark.parametrize("text, code", [
    ("a: &x [1]\nb: *x\n", "yaml-alias"),
    ("a: &x {k: 1}\nb:\n  <<: *x\n", "yaml-alias"),
    ("a: !!python/object:os.system 'ls'\n", "yaml-tag"),
    ("a: !custom 3\n", "yaml-tag"),
    ("a: 2014-09-17\n", "yaml-tag"),
    ("a: 1\na: 2\n", "duplicate-key"),
    ("a: [1, 2\n", "yaml-syntax"),
    ("? [a, b]\n: 1\n", "yaml-key"),
    ("1.5: x\n", "yaml-key"),
])
def test_refused_yaml(text, code):
    assert codes(text) == [code]


def test_billion_laughs_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 12)]
    assert codes("\n".join(lines)) == ["yaml-alias"]


def test_deep_nesting_is_refused():
    assert codes("a: " + "[" * 200 + "]" * 200) in (["yaml-too-deep"], ["yaml-syntax"])


def test_duplicate_key_names_both_places():
    with pytest.raises(SpecError) as info:
        load_text("body:\n  conv1: relu\n  conv1: relu\n", "t.yaml")
    d = info.value.diagnostics[0]
    assert str(d.loc) == "t.yaml:3:3" and "first written at t.yaml:2:3" in d.message


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(SpecError) as info:
        load_file(tmp_path / "none.yaml")
    assert info.value.diagnostics[0].code == "file-not-found"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(SpecError) as info:
        load_file(bad)
    assert info.value.diagnostics[0].code == "yaml-encoding"


def test_flow_sequences_are_remembered():
    src = load_text("a: [1, 2]\nb:\n  - 1\n")
    assert ("a",) in src.flow and ("b",) not in src.flow


# -- the libyaml fast path ----------------------------------------------------

fast = pytest.mark.skipif(load_module._FastLoader is None, reason="PyYAML without libyaml")


def _loaded(text: str, loader: type) -> tuple | str:
    """Everything a load gives, or the type of the fault."""
    try:
        src = load_module._load(text, "t.yaml", loader)
    except Exception as exc:  # noqa: BLE001 - the fault is the result compared
        return type(exc).__name__
    return repr(src.data), src.locs, src.key_locs, src.quoted, src.flow


@fast
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_the_libyaml_loader_loads_what_it_loads_as_pyyaml_does(source):
    """Wherever the fast loader does not step aside, data, types, locations, quoting and flow style agree."""
    for text in [source.read_text(), *mutants(source, 15, SEED + 3)]:
        got = _loaded(text, load_module._FastLoader)
        if isinstance(got, tuple):
            assert got == _loaded(text, load_module._Loader), text


@fast
@pytest.mark.parametrize("text", [
    "a:\tb\n", "a: [b,\tc]\n", "a: 'x\ty'\n", "\ufeffa: 1\n", "a: x\ufeffy\n", "a: !!str 3\n", "a: ! x\n",
    "a: |-#\n  x\n", "a: |\n  text\n", "a:\n", "---\n", "? x\n", "a: [x: , y]\n", "a: {x: }\n", "a: [x?]\n",
    "a: [14?]\n", "a: [http://x]\n", "a: &x [1]\nb: *x\n",
])
def test_the_libyaml_loader_steps_aside_where_the_parsers_differ(text):
    assert _loaded(text, load_module._FastLoader) in ("_Diverges", "_Refused")


@pytest.mark.parametrize("text", [
    "a: [1, 2\n", "a: b: c\n", "a:\tb\n", "a: 'x\n", "- a\nb: c\n", "a: &x [1]\nb: *x\n", "a: 1\na: 2\n",
    "a: !custom 3\n", "a: " + "[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x\n", "a: \x00\n",
])
def test_faults_are_reported_as_pyyaml_reports_them(text, monkeypatch):
    """Messages and locations of faulty YAML are PyYAML's pure-Python loader's, with libyaml or without."""
    with pytest.raises(SpecError) as with_libyaml:
        load_text(text, "t.yaml")
    monkeypatch.setattr(load_module, "_FastLoader", None)
    with pytest.raises(SpecError) as without:
        load_text(text, "t.yaml")
    assert with_libyaml.value.render() == without.value.render()


def test_specs_load_the_same_without_libyaml(monkeypatch):
    text = (SOURCES[0]).read_text()
    with_libyaml = load_text(text, "t.yaml")
    monkeypatch.setattr(load_module, "_FastLoader", None)
    without = load_text(text, "t.yaml")
    assert (with_libyaml.data, with_libyaml.locs, with_libyaml.key_locs) == (without.data, without.locs,
                                                                             without.key_locs)


@pytest.mark.parametrize("text, line, col", [
    ("archspec: 1\nname: t\nbody: [relu\n", 3, 12),  # PyYAML marks the end of the stream on line 4
    ("archspec: 1\nbody: [relu", 2, 12),
    ("a: 'open\n\n\n", 3, 1),
])
def test_a_yaml_error_at_the_end_of_the_file_is_placed_on_its_last_line(text, line, col):
    with pytest.raises(SpecError) as info:
        load_text(text, "t.yaml")
    (d,) = info.value.diagnostics
    assert d.code == "yaml-syntax" and d.loc is not None and (d.loc.line, d.loc.col) == (line, col)
    assert d.loc.line <= len(text.splitlines())
    assert "^" in d.render({"t.yaml": text})  # the excerpt shows the line


def test_a_fifo_is_refused_without_being_opened_for_a_blocking_read(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecError) as info:
        load_file(fifo)  # with no writer, a plain open() would wait for ever
    (d,) = info.value.diagnostics
    assert d.code == "not-a-file" and "FIFO" in d.message and str(d.loc) == f"{fifo}:1:1"


@pytest.mark.parametrize("path, kind", [("/dev/zero", "a device"), ("/dev/null", "a device"), (".", "a folder")])
def test_devices_and_folders_are_refused_before_they_are_read(path, kind):
    with pytest.raises(SpecError) as info:
        load_file(path)
    (d,) = info.value.diagnostics
    assert d.code == "not-a-file" and kind in d.message


def test_at_most_the_limit_is_read(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (load_module.MAX_BYTES + 10))
    sizes = []
    real_fdopen = os.fdopen

    def fdopen(*args, **kw):
        f = real_fdopen(*args, **kw)
        read = f.read

        class Spy:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def read(self, n=-1):
                sizes.append(n)
                return read(n)

            def fileno(self):
                return f.fileno()

        return Spy()

    monkeypatch.setattr(load_module.os, "fdopen", fdopen)
    with pytest.raises(SpecError) as info:
        load_file(path)
    (d,) = info.value.diagnostics
    assert d.code == "file-too-large" and d.found == f"{load_module.MAX_BYTES + 10:,} bytes"
    assert sizes == [load_module.MAX_BYTES + 1]


@pytest.mark.parametrize("verb", [["check"], ["summary"], ["draw", "-o", "out.svg"], ["build", "--device", "meta"],
                                  ["diff"]])
def test_no_verb_hangs_on_a_fifo(tmp_path, verb):
    """Each verb, in a process of its own with a time limit: a hang fails the test instead of stalling the suite."""
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-m", "archspec", verb[0], str(fifo), *verb[1:]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode in (1, 2), run.stderr
    assert "Traceback" not in run.stderr and "internal-error" not in run.stderr
    if run.returncode == 1:
        assert "not-a-file" in run.stderr
