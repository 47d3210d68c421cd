"""Writing output files safely: never a half-written file, never a silent overwrite."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputPathError

__all__ = ["atomic_output", "check_output_path"]


def check_output_path(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Fail early, before any work, if ``path`` cannot be written as a new output file."""
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"{target} is a folder: give a file name inside it")
    if target.exists() and not force:
        raise OutputPathError(
            f"{target} exists: allow replacing it (force) or choose another name", settings=("force",)
        )
    if not target.parent.is_dir():
        raise OutputPathError(f"folder {target.parent} does not exist: create it first (mkdir -p {target.parent})")
    if not os.access(target.parent, os.W_OK):
        raise OutputPathError(f"folder {target.parent} is not writable: choose another output path")
    return target


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    Raises :class:`OutputPathError` before any work if ``path`` exists (and ``force`` is
    False) or its folder does not exist. If the body raises, the temporary file is
    removed and ``path`` is left as it was.
    """
    target = check_output_path(path, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
