"""docs/cli.md documents every verb and every flag of the CLI, and no flag the CLI lacks.

Each verb has a section `## \\`archspec VERB\\`` with a table whose first column names its
options (`-o`, `--output FILE`); the group's own options are in the table under
`## Options of every command`.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from archspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "cli.md"
GLOBAL = "Options of every command"
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def cli_flags(command: click.Command) -> set[str]:
    """Every option name of a command: `-o`, `--output`, `--heads`, `--no-heads`; help is everywhere."""
    names = {name for p in command.params if isinstance(p, click.Option) for name in p.opts + p.secondary_opts}
    return names - {"-h", "--help"}


def documented() -> dict[str, set[str]]:
    """Section title -> the flags named in the first column of its tables."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in CLI_MD.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip().strip("`")
            sections[current] = set()
        elif current and line.startswith("| ") and not line.startswith("| ---"):
            first = line.split("|")[1]
            sections[current] |= set(FLAG.findall(first))
    return sections


def expected() -> dict[str, set[str]]:
    want = {GLOBAL: cli_flags(main)}
    for name, command in sorted(main.commands.items()):
        want[f"archspec {name}"] = cli_flags(command)
    return want


def test_every_verb_and_flag_of_the_cli_is_documented_in_cli_md():
    docs, want = documented(), expected()
    missing = [f"section '## `{title}`'" for title in want if title not in docs]
    missing += [f"{title}: {flag}" for title, flags in want.items() if title in docs
                for flag in sorted(flags - docs[title])]
    assert not missing, "docs/cli.md lacks:\n  " + "\n  ".join(missing)


def test_cli_md_documents_no_flag_the_cli_lacks():
    docs, want = documented(), expected()
    stale = [f"{title}: {flag}" for title, flags in docs.items() if title in want
             for flag in sorted(flags - want[title] - {"-h", "--help"})]
    stale += [f"section '## `{title}`'" for title in docs if title.startswith("archspec ") and title not in want]
    assert not stale, "docs/cli.md documents what the CLI does not have:\n  " + "\n  ".join(stale)


def test_the_walk_sees_the_cli():
    """The walk itself: it finds the verbs and their flags, so the tests above cannot pass vacuously."""
    want = expected()
    assert {"archspec build", "archspec check", "archspec diff", "archspec draw", "archspec summary"} <= set(want)
    assert {"-o", "--output", "--set"} <= want["archspec build"]
    assert {"--heads", "--no-heads"} <= want["archspec draw"]
    assert "--version" in want[GLOBAL]
