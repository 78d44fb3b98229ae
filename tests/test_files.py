"""Output files are replaced in one rename, or not touched at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archspec.files import atomic_output, same_file


def test_success_replaces_and_keeps_the_mode(tmp_path: Path):
    target = tmp_path / "out.svg"
    target.write_text("old")
    os.chmod(target, 0o600)
    with atomic_output(target) as tmp:
        Path(tmp).write_text("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["out.svg"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("export failed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["model.pt"]


def test_new_files_are_readable_by_others_and_folders_are_made(tmp_path: Path):
    target = tmp_path / "a" / "b.dot"
    with atomic_output(target) as tmp:
        Path(tmp).write_text("x")
    assert target.stat().st_mode & 0o777 == 0o644


def test_same_file(tmp_path: Path):
    a = tmp_path / "a.yaml"
    a.write_text("x")
    (tmp_path / "link.yaml").symlink_to(a)
    assert same_file(a, tmp_path / "link.yaml") and not same_file(a, tmp_path / "missing.yaml")


def test_the_temporary_file_ends_with_the_targets_suffix(tmp_path: Path):
    """Writers that check the name (torch.export.save wants `.pt2`) see the format they are asked for."""
    with atomic_output(tmp_path / "model.pt2") as tmp:
        assert Path(tmp).parent == tmp_path and Path(tmp).name.startswith(".model.pt2.") and tmp.endswith(".pt2")
        Path(tmp).write_text("x")
    assert os.listdir(tmp_path) == ["model.pt2"]
