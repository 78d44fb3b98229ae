"""Writing output files without ever losing or corrupting a user's file."""

from __future__ import annotations

import errno
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TMP_MARK = ".archspec-tmp-"
"""Temporary files are named `.NAME.archspec-tmp-XXXX.SUFFIX`, beside the target NAME they will replace."""

STALE_SECONDS = 60.0
"""A temporary file of the same target older than this was left by a killed save: the next save removes it."""


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one existing file (so writing one would overwrite the other)."""
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file, existing or not (`out.pt` and `./out.pt`)."""
    return same_file(a, b) or Path(a).resolve() == Path(b).resolve()


def missing_folder(target: str | os.PathLike[str]) -> OSError | None:
    """The error for a target whose folder does not exist (outputs never create folders), else None."""
    parent = Path(target).parent
    if parent.is_dir():
        return None
    what = "is not a folder" if parent.exists() else "does not exist; create it first"
    return OSError(errno.ENOTDIR if parent.exists() else errno.ENOENT, f"the output's folder {what}", str(parent))


@contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.

    If the body raises, the temporary file is removed and `target` is left as it was; an
    OSError (a full disk) names `target`, not the temporary file. The target's folder must
    exist. The new file keeps the mode of the file it replaces (0644 for a new one). The
    temporary name, `.model.pt2.archspec-tmp-k3j9x.pt2`, ends with the target's suffix:
    writers that check or choose by the suffix (torch.export.save, onnx) see the format they
    are asked for. Temporary files of the same target left by a killed save are removed.
    """
    path = Path(target)
    problem = missing_folder(path)
    if problem is not None:
        raise problem
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    remove_stale(path, keep=tmp)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename in (None, tmp) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale(target: Path, keep: str | None = None, age: float = STALE_SECONDS) -> list[Path]:
    """Remove `target`'s temporary files older than `age` seconds (other than `keep`); the ones removed."""
    removed = []
    now = time.time()
    for old in target.parent.glob(f".{_glob_escape(target.name)}{TMP_MARK}*"):
        try:
            if str(old) != keep and old.is_file() and now - old.lstat().st_mtime > age:
                old.unlink()
                removed.append(old)
        except OSError:  # another save removed it first, or it is not ours to remove
            pass
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class _Recording(io.RawIOBase):
    """A file for C++ writers (torch.save, torch.export.save) that remembers the OSError they turn into text."""

    def __init__(self, f: IO[bytes]):
        super().__init__()
        self._f = f
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def flush(self) -> None:
        try:
            self._f.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise


def write_via_python(path: str, write: Callable[[IO[bytes]], Any]) -> None:
    """`write(file)` into `path` through a Python file: a full disk raises its OSError, not the writer's text.

    torch's C++ writers report a failed write as a RuntimeError with no errno (or abort, when
    given a path): given a Python file object, the OSError of the failed write is kept and raised.
    """
    with open(path, "wb") as f:
        recording = _Recording(f)
        try:
            write(recording)  # type: ignore[arg-type]
            f.flush()
        except Exception:
            if recording.error is not None:
                raise recording.error from None
            raise
