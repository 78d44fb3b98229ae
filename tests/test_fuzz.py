"""A seeded mutation fuzzer over every spec: whatever the text, archspec answers with located diagnostics.

Each mutant is a spec of `specs/` (or the tiny fixture) with a few random edits of the kinds people
make: lines deleted, duplicated or swapped, numbers turned into 0, -1, huge values or words,
parentheses and brackets lost or doubled, indentation shifted, op names changed, YAML syntax
mangled; and edits that stress the limits: call arguments replaced by long operator chains, deep
parentheses, huge literals and results (`conv(1+1+...+8, 3)`, `int(1e308)`), sizes past 2^31, and
layers wrapped in repeats (up to a repeat of 10,000 in a repeat of 10,000). For each one the
torch-free pipeline must finish within SECONDS with no exception but `SpecError`, every diagnostic
must carry a location with line and column >= 1, and nothing may print a traceback. CI tries 20
mutants of each zoo spec and 200 of the tiny fixture (it checks fastest), 340 in all, plus a sample
through the `check` command, mutants that pass the check built on the meta device (through the API
and through `build --device meta`), and special files (a FIFO, devices, a folder) as specs;
ARCHSPEC_FUZZ_MUTANTS=300 (per zoo spec; ten times that of the fixture) fuzzes deeper, and
ARCHSPEC_FUZZ_SEED picks other mutants.
"""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPRESENTATIVE_SPECS

import archspec
from archspec.cli import main
from archspec.cli.github import workflow_command
from archspec.errors import SpecError
from archspec.ops import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*(p for p in REPRESENTATIVE_SPECS if "import:" not in p.read_text()),
           ROOT / "tests" / "fixtures" / "tiny.yaml"]
"""Specs that stand alone: a mutant is written to a folder of its own, where imports would not be found."""
PER_SPEC = int(os.environ.get("ARCHSPEC_FUZZ_MUTANTS", "20"))
SEED = int(os.environ.get("ARCHSPEC_FUZZ_SEED", "8"))

NUMBER = re.compile(r"(?<![\w$.])\d[\d_]*(?:\.\d+)?")
WORD = re.compile(r"[A-Za-z_]\w*")
NUMBERS = ["0", "-1", "1", "2", "3.5", "1e400", "99999999999999999999", "10_000_000", "abc", "$nope", "[]", "{}",
           "null", "true", "'7'", "(", "1/0", "0 ** -1", "2 ** 4000", "2147483648", "46341", "100000",
           "1000000000000", "1" + "0" * 30, "int(1e308)", "10**12", "2**31 - 1", "10000"]
JUNK = [":", ": ", "(", ")", "[", "]", "{", "}", ",", "-", "- ", "&a ", "*a", "!!python/object:os.system ", "<<: ",
        "#", "'", '"', "\t", "$", "=", "??", "%", "|", ">", "\x00", "é", "?", "@", "`", "..."]


def _numbers(rng: random.Random, text: str) -> str:
    spots = list(NUMBER.finditer(text))
    if not spots:
        return text
    m = rng.choice(spots)
    return text[:m.start()] + rng.choice(NUMBERS) + text[m.end():]


def _words(rng: random.Random, text: str) -> str:
    spots = list(WORD.finditer(text))
    if not spots:
        return text
    m = rng.choice(spots)
    word = m.group()
    new = rng.choice([rng.choice(sorted(REGISTRY)), word[:-1], word + word[-1:], "input", "forward", "_x", "repeat",
                      "body", "concat", "add", "from", word.upper()])
    return text[:m.start()] + new + text[m.end():]


def _chars(rng: random.Random, text: str) -> str:
    spots = [i for i, c in enumerate(text) if c in "()[]{},:=-$'\""]
    if not spots:
        return text
    i = rng.choice(spots)
    return rng.choice([text[:i] + text[i + 1:], text[:i] + text[i] + text[i:], text[:i] + rng.choice(JUNK) + text[i:]])


ARGUMENT = re.compile(r"(?<=[(,])[^(),\[\]\n]*(?=[,)])")


def expression(rng: random.Random) -> str:
    """An argument that stresses the expression language: long chains, deep nesting, huge literals and results."""
    k = rng.choice([3, 30, 120, 400, 990])
    return rng.choice([
        "-" * k + "8", "1+" * k + "8", "2*" * k + "1", "(" * k + "8" + ")" * k, "-(" * k + "8" + ")" * k,
        "2**" * k + "1", "[" * k + "]" * k, "min(" * k + "1" + ")" * k, "9" * k, "int(1e308)", "int(1e15)",
        "10**15", "10**15 * 10**15", "2**31", "2**31 - 1", "int(2.0**62)", "round(1e300)", "46341", "1e-300",
        "$nope + " * min(k, 50) + "1", "max(" + ", ".join(["100000"] * min(k, 100)) + ")",
    ])


def _arguments(rng: random.Random, text: str) -> str:
    """Replace one argument of a call string (`conv(64, 3)`) with a stressing expression."""
    spots = list(ARGUMENT.finditer(text))
    if not spots:
        return text
    m = rng.choice(spots)
    return text[:m.start()] + rng.choice(["", " "]) + expression(rng) + text[m.end():]


def _bombs(rng: random.Random, text: str) -> str:
    """Wrap a layer's value in repeats: from a few thousand nodes (a slow smallest-input search) to a bomb."""
    lines = text.split("\n")
    spots = [i for i, line in enumerate(lines) if re.match(r"^\s+\w+: \w+(\(.*\))?\s*$", line)]
    if not spots:
        return text
    i = rng.choice(spots)
    key, value = lines[i].split(": ", 1)
    value = '"' + value.strip() + '"'
    for _ in range(rng.choice([1, 1, 2, 3])):
        value = f"{{repeat: {rng.choice([2, 300, 1000, 10000])}, body: {value}}}"
    lines[i] = f"{key}: {value}"
    return "\n".join(lines)


def _lines(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    j = min(len(lines) - 1, i + rng.choice([1, 1, 2, 5]))
    kind = rng.randrange(6)
    if kind == 0:
        del lines[i]
    elif kind == 1:
        lines.insert(i, lines[i])
    elif kind == 2:
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:
        lines[i] = " " * rng.choice([1, 2, 4]) + lines[i]
    elif kind == 4:
        lines[i] = lines[i][rng.choice([1, 2]):] if lines[i].startswith("  ") else "\t" + lines[i]
    else:
        lines[i] = lines[i][:rng.randrange(len(lines[i]) + 1)]
    return "\n".join(lines)


VALUES = ["", "~", "null", "true", "no", "0", "-7", "1.5", ".inf", ".nan", "0x1F", "1_000", "2001-01-01", "12:30:00",
          "[]", "{}", "[1, [2]]", "{a: 1}", "{body: relu}", "{concat: [relu, relu]}", "{from: input, body: relu}",
          "{repeat: 3, body: relu}", "!!binary aGk=", "!!str 3", "'quoted'", '"a\\u0000b"', "|\n  text", "relu",
          "conv(64, 3)", "conv($nope)", "concat(a, b)", "[relu, conv(8, 1)]", "- relu", "x" * 300]


def _values(rng: random.Random, text: str) -> str:
    """Replace what follows `key:` on a line with another YAML value."""
    lines = text.split("\n")
    spots = [i for i, line in enumerate(lines) if re.match(r"^\s*[-\w]+:( |$)", line)]
    if not spots:
        return text
    i = rng.choice(spots)
    key = lines[i].split(":", 1)[0]
    lines[i] = f"{key}: {rng.choice(VALUES)}"
    return "\n".join(lines)


def _truncate(rng: random.Random, text: str) -> str:
    return text[:rng.randrange(len(text))]


EDITS = [_numbers, _numbers, _numbers, _words, _words, _chars, _chars, _lines, _lines, _values, _values, _arguments,
         _arguments, _bombs, _truncate]


def mutants(path: Path, count: int, seed: int) -> list[str]:
    """`count` mutants of the spec at `path`, each one to four edits away from it; deterministic per seed."""
    rng = random.Random(f"{seed}:{path.name}")
    text = path.read_text()
    out = []
    for _ in range(count):
        mutant = text
        for _ in range(rng.choice([1, 1, 1, 2, 4])):
            mutant = rng.choice(EDITS[:-1] if rng.random() > 0.03 else EDITS)(rng, mutant)
        out.append(mutant)
    return out


SECONDS = 10.0
"""The most one mutant may take to check: the shipped specs check in a fraction of a second, a mutant of
100,000 nodes in about two; what checking did in minutes (an expansion bomb, a slow search) fails."""


def check_mutant(text: str, path: Path) -> archspec.CheckResult:
    """Check one mutant; fail the test on anything but located diagnostics, or on a slow answer."""
    path.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    result = archspec.check_file(path)  # raises on anything but SpecError, which it turns into diagnostics
    assert time.perf_counter() - start < SECONDS, f"checking took {time.perf_counter() - start:.1f} s:\n{text}"
    lines = text.count("\n") + 1
    for d in result.diagnostics:
        assert d.loc is not None, d.headline()
        assert 1 <= d.loc.line <= lines + 1 and d.loc.col >= 1, d.headline()
        d.to_json()
        workflow_command(d, str(path))
    SpecError(result.diagnostics, result.sources).render()
    return result


def _count(source: Path) -> int:
    return PER_SPEC * 10 if source.parent.name == "fixtures" else PER_SPEC


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_mutants_get_located_diagnostics_never_a_crash(source, tmp_path, capsys):
    path = tmp_path / source.name
    results = [check_mutant(text, path) for text in mutants(source, _count(source), SEED)]
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    failed = sum(not r.ok for r in results)
    print(f"{source.name}: {len(results)} mutants, {failed} rejected with located errors")
    assert len(results) == _count(source) and failed > len(results) // 4  # the mutator really breaks specs


def test_mutants_through_the_check_command(tmp_path):
    """A sample of mutants through `archspec check --format github`, printing included: exit 0 or 1."""
    runner = CliRunner()
    for source in SOURCES:
        for i, text in enumerate(mutants(source, 3, SEED + 1)):
            path = tmp_path / f"{i}_{source.name}"
            path.write_text(text, encoding="utf-8")
            for fmt in ("text", "github"):
                result = runner.invoke(main, ["check", "--format", fmt, str(path)])
                assert result.exit_code in (0, 1), f"{path}:\n{result.output}"
                assert "Traceback" not in result.output and "internal-error" not in result.output


def size_mutants(path: Path, count: int, seed: int) -> list[str]:
    """Mutants whose edits are all in call arguments and numbers: most still check, with odd sizes."""
    rng = random.Random(f"sizes:{seed}:{path.name}")
    text = path.read_text()
    return [rng.choice([_arguments, _numbers])(rng, text) for _ in range(count)]


def test_mutants_that_check_also_build_on_the_meta_device(tmp_path):
    """Mutants that pass the check also build: what check accepts, the torch backend does not refuse."""
    pytest.importorskip("torch")
    path = tmp_path / "mutant.yaml"
    built = 0
    tiny, googlenet = SOURCES[-1], ROOT / "specs" / "googlenet.yaml"
    for text in [*mutants(tiny, 30, SEED + 2), *mutants(googlenet, 30, SEED + 2), *size_mutants(tiny, 60, SEED),
                 *size_mutants(googlenet, 20, SEED)]:
        result = check_mutant(text, path)
        if result.ok and result.typed is not None and built < 24:
            archspec.build(result.typed, device="meta", max_memory=None)
            built += 1
    assert built >= 12


def test_size_mutants_through_the_build_command(tmp_path):
    """`archspec build --device meta` on mutants with odd sizes: a summary (exit 0) or located errors (exit 1)."""
    pytest.importorskip("torch")
    runner = CliRunner()
    codes = set()
    for i, text in enumerate(size_mutants(SOURCES[-1], 12, SEED + 3)):
        path = tmp_path / f"{i}.yaml"
        path.write_text(text, encoding="utf-8")
        result = runner.invoke(main, ["build", "--device", "meta", str(path)])
        assert result.exit_code in (0, 1), f"{text}\n{result.output}"
        assert "Traceback" not in result.output and "internal-error" not in result.output
        codes.add(result.exit_code)
    assert codes == {0, 1}


def test_special_files_get_located_diagnostics(tmp_path):
    """What a path may name besides a spec: a FIFO (a plain open would wait for a writer), devices, folders."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    for path in (fifo, link, empty, tmp_path, Path("/dev/null"), Path("/dev/zero"), Path("/dev/urandom")):
        start = time.perf_counter()
        result = archspec.check_file(path)
        assert not result.ok and time.perf_counter() - start < 1
        for d in result.diagnostics:
            assert d.loc is not None or d.code == "file-not-found", d.headline()
