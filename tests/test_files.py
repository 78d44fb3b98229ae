"""Output files are replaced in one rename, or not touched at all."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from archspec.files import STALE_SECONDS, TMP_MARK, atomic_output, same_file, write_via_python


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


def test_new_files_are_readable_by_others(tmp_path: Path):
    target = tmp_path / "b.dot"
    with atomic_output(target) as tmp:
        Path(tmp).write_text("x")
    assert target.stat().st_mode & 0o777 == 0o644


def test_a_missing_folder_is_an_error_naming_it_and_is_not_made(tmp_path: Path):
    with pytest.raises(OSError) as info, atomic_output(tmp_path / "a" / "b.dot"):
        pass
    assert info.value.errno == errno.ENOENT and info.value.filename == str(tmp_path / "a")
    assert "does not exist" in str(info.value.strerror) and os.listdir(tmp_path) == []


def test_a_write_error_names_the_target_not_the_temporary_file(tmp_path: Path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(OSError) as info, atomic_output(target) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", tmp)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["model.pt"]


def test_stale_temporaries_of_the_same_target_are_removed_on_the_next_save(tmp_path: Path):
    target = tmp_path / "model.pt"
    stale = tmp_path / f".model.pt{TMP_MARK}k3j9x.pt"  # left by a save that was killed
    fresh = tmp_path / f".model.pt{TMP_MARK}a1b2c.pt"  # another save, still writing
    other = tmp_path / f".weights.pt{TMP_MARK}q8w7e.pt"  # another target's
    for path in (stale, fresh, other):
        path.write_text("half")
    old = time.time() - 2 * STALE_SECONDS
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    with atomic_output(target) as tmp:
        assert Path(tmp).name.startswith(f".model.pt{TMP_MARK}")
        Path(tmp).write_text("new")
    assert sorted(os.listdir(tmp_path)) == sorted([fresh.name, other.name, "model.pt"])


def test_write_via_python_raises_the_os_error_a_cpp_writer_hides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """torch.save into a file whose writes fail: its RuntimeError gives way to the OSError (a full disk)."""
    import io

    import torch

    class Full(io.BufferedWriter):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    import archspec.files

    monkeypatch.setattr(archspec.files, "open", lambda path, mode: Full(io.FileIO(path, "w")), raising=False)
    with pytest.raises(OSError) as info:
        write_via_python(str(tmp_path / "m.pt"), lambda f: torch.save(torch.nn.Linear(64, 64), f))
    assert info.value.errno == errno.ENOSPC


def test_a_full_tmpfs_gives_the_os_error(full_disk: Path):
    import torch

    for writer in (torch.save, torch.export.save):
        obj = torch.nn.Linear(200, 200) if writer is torch.save else torch.export.export(
            torch.nn.Linear(200, 200), (torch.zeros(2, 200),))
        with pytest.raises(OSError) as info:
            write_via_python(str(full_disk / "m.bin"), lambda f: writer(obj, f))  # noqa: B023
        assert info.value.errno == errno.ENOSPC


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
