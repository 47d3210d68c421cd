"""The idx format of the MNIST family's files (``train-images-idx3-ubyte.gz`` and kin), read strictly.

An idx file is a 4-byte magic number (two zero bytes, a type code, 0x08 for unsigned bytes,
and the number of dimensions), one big-endian uint32 per dimension, then the values in C
order. The files are read whole, so a file that does not hold exactly what its header
announces is refused in one line instead of turning into shifted images.
"""

from __future__ import annotations

import gzip
import math
import zlib

import numpy as np

from ..errors import DataError

__all__ = ["read_idx"]

_UBYTE = 0x08


def read_idx(packed: bytes, source: str, item_shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array ``N x item_shape`` in the gzip'd idx file ``packed`` (named ``source`` in errors).

    ``item_shape`` is what each of the N entries must be: ``(28, 28)`` for images, ``()`` for labels.
    """

    def refuse(problem: str) -> DataError:
        return DataError(f"{source} is not a valid idx file ({problem}): replace it with a good copy")

    try:
        raw = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as error:
        raise refuse(f"not gzip data: {error}") from error
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != _UBYTE:
        raise refuse(f"magic number {raw[:4].hex() or 'missing'}, expected 000008 then the dimension count")
    ndim = raw[3]
    if ndim != 1 + len(item_shape):
        raise refuse(f"{ndim} dimensions, expected {1 + len(item_shape)}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise refuse(f"the header stops after {len(raw)} bytes")
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if shape[1:] != item_shape:
        raise refuse(f"entries of shape {shape[1:]}, expected {item_shape}")
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise refuse(f"{len(raw)} bytes where the header {shape} announces {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()
