"""Writing output files without ever losing or corrupting a user's file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one existing file (so writing one would overwrite the other)."""
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


@contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename.

    If the body raises, the temporary file is removed and `target` is left as it was.
    The new file keeps the mode of the file it replaces (0644 for a new one). The temporary
    name ends with the target's suffix (`.model.pt2.k3j9x.pt2`): writers that check or
    choose by the suffix (torch.export.save, onnx) see the format they are asked for.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
