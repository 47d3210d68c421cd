"""Files out of a Debian package (``.deb``), read in Python: no dpkg, no root, nothing installed.

A ``.deb`` is an ``ar`` archive: the 8-byte magic ``!<arch>\\n``, then members, each a
60-byte text header (name, dates, owner, mode, decimal size, ``\\x60\\n``) and its bytes,
padded to an even length. Its member ``data.tar.*`` (xz, gzip or bzip2 here) holds the
package's files under the paths they are installed at.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError

__all__ = ["deb_files"]

_MAGIC = b"!<arch>\n"
_HEADER = 60


def deb_files(deb: Path, wanted: set[str]) -> dict[str, bytes]:
    """The contents of the files ``wanted`` (installed paths such as ``usr/share/...``) in package ``deb``."""

    def refuse(problem: str) -> DataError:
        return DataError(f"{deb} is not a readable Debian package ({problem}): delete it and fetch it again")

    with deb.open("rb") as file:
        if file.read(len(_MAGIC)) != _MAGIC:
            raise refuse("no ar magic")
        payload = next((data for name, data in _members(file, refuse) if name.startswith("data.tar")), None)
    if payload is None:
        raise refuse("no data.tar member")
    found = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise refuse(f"its data.tar: {error}") from error
    if missing := sorted(wanted - found.keys()):
        raise refuse(f"it lacks {', '.join(missing)}")
    return found


def _members(file: BinaryIO, refuse: Callable[[str], DataError]) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of each member of the ar archive ``file``, read after its magic."""
    while header := file.read(_HEADER):
        size_field = header[48:58].strip()
        if len(header) < _HEADER or header[58:60] != b"`\n" or not size_field.isdigit():
            raise refuse("a damaged member header")
        size = int(size_field)
        data = file.read(size)
        if len(data) < size:
            raise refuse("truncated")
        file.read(size % 2)  # members start on even offsets
        yield header[:16].decode("ascii", "replace").strip().rstrip("/"), data
