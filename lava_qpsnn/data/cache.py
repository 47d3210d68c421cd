"""Where fetched data files live, and the steps every fetched data set shares.

A file is fetched at most once, by a command that only puts it in a folder (nothing is
installed), and its SHA-256 must match the one the data set records before anything reads
it. The decoded 8-bit pixels are then kept as an ``.npz`` (read without pickle), so later
loads skip the archive; it is written under a temporary name and renamed, never half-written.

The cache folder is ``$LAVA_QPSNN_DATA`` if set, else ``$XDG_CACHE_HOME/lava-qpsnn`` (by
default ``~/.cache/lava-qpsnn``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import Dataset

__all__ = ["data_dir", "fetch_verified", "cached_pixels", "pixel_splits"]

Pixels = dict[str, np.ndarray]  # train_x, train_y, test_x, test_y: uint8 images N x ..., labels N


def data_dir() -> Path:
    """Where data files are looked for and fetched ones kept (see the module docstring)."""
    explicit = os.environ.get("LAVA_QPSNN_DATA")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "lava-qpsnn"


def fetch_verified(path: Path, command: list[str], sha256: str, *, name: str, unreachable: str) -> Path:
    """``path`` once its SHA-256 is ``sha256``; if absent, ``command`` (run in its folder) fetches it first.

    ``unreachable`` is the error when the command fails or is missing; ``name`` names the
    data set in the error for a file that does not match.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(command, cwd=path.parent, capture_output=True, text=True)
        except OSError:  # the command is not installed here
            done = None
        if done is None or done.returncode != 0 or not path.exists():
            raise DataError(unreachable)
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    if digest != sha256:
        raise DataError(
            f"{path} has SHA-256 {digest[:12]}..., not the expected {sha256[:12]}...: "
            f"delete it and load {name} again to fetch a fresh copy"
        )
    return path


def cached_pixels(path: Path, decode: Callable[[], Pixels]) -> Pixels:
    """The arrays kept in ``path``; on the first load, ``decode()``'s, written there for next time."""
    if path.exists():
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    pixels = decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **pixels)
    partial.replace(path)  # never a half-written cache
    return pixels


def pixel_splits(pixels: Pixels, shape: tuple[int, int, int], num_classes: int) -> tuple[Dataset, Dataset]:
    """``(train, test)`` Datasets of 8-bit ``pixels``: float32 images ``N x shape`` (C, H, W) in [0, 1]."""

    def split(images: np.ndarray, labels: np.ndarray) -> Dataset:
        floats = (images.reshape(-1, *shape) / np.float32(255)).astype(np.float32, copy=False)
        return Dataset(floats, labels.astype(np.int64), num_classes)

    return split(pixels["train_x"], pixels["train_y"]), split(pixels["test_x"], pixels["test_y"])
