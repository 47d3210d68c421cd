"""Fashion-MNIST offline: the four standard idx files, from a folder or from Debian's own package.

The 70,000 28x28 grey images of clothes (10 classes; Zalando SE, MIT license) are looked
for in this order:

1. a folder of the four ``*-ubyte.gz`` idx files: ``fashion-mnist/`` in the data folder
   (see :mod:`lava_qpsnn.data.cache`), else where Debian's package installs them,
   ``/usr/share/datasets/fashion-mnist``;
2. that package's file, ``dataset-fashion-mnist``, in the data folder, fetched there first
   with ``apt-get download`` if absent (no root: it only downloads). Its SHA-256 must match
   the one recorded here before anything reads it; the idx files are then read out of the
   ``.deb`` itself (:mod:`lava_qpsnn.data.debian`), so nothing is installed;
3. otherwise a one-line error naming both ways.

The first load keeps the 8-bit pixels as ``fashion-mnist.npz`` in the data folder; later
loads read only that. The splits are the standard ones: 60,000 train, 10,000 test.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from . import Dataset
from .cache import Pixels, cached_pixels, data_dir, fetch_verified, pixel_splits
from .debian import deb_files
from .idx import read_idx

__all__ = ["load_fashion_mnist", "fetch_command", "DEB", "DEB_SHA256"]

PACKAGE = "dataset-fashion-mnist"
VERSION = "0.0~git20200523.55506a9-1"
DEB = f"{PACKAGE}_{VERSION}_all.deb"  # the name apt-get download gives it
DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"  # Debian 12's build
FOLDER = "fashion-mnist"
IN_PACKAGE = "usr/share/datasets/fashion-mnist"  # the files' folder inside the package
SYSTEM_FOLDER = Path("/", IN_PACKAGE)  # where the installed package puts them
FILES = {  # the cache's array name -> the idx file, as everyone names them
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
_ITEM_SHAPES = {"x": (28, 28), "y": ()}  # an image, a label
ARRAYS = "fashion-mnist.npz"


def fetch_command() -> list[str]:
    """The command that puts Debian's package file into the current folder (it installs nothing)."""
    return ["apt-get", "download", f"{PACKAGE}={VERSION}"]


def load_fashion_mnist(folder: str | os.PathLike | None = None) -> tuple[Dataset, Dataset]:
    """Fashion-MNIST as ``(train, test)`` :class:`~lava_qpsnn.data.Dataset` splits of 60,000 and 10,000 images.

    ``folder`` is the data folder (default: :func:`~lava_qpsnn.data.cache.data_dir`).
    """
    folder = Path(folder) if folder is not None else data_dir()
    return pixel_splits(cached_pixels(folder / ARRAYS, lambda: _decode(folder)), (1, 28, 28), 10)


def _decode(folder: Path) -> Pixels:
    """The four idx files' arrays, from the first place in the module docstring's order that has them."""
    for place in (folder / FOLDER, SYSTEM_FOLDER):
        if place.is_dir():
            if missing := [name for name in FILES.values() if not (place / name).is_file()]:
                raise DataError(f"{place} lacks {', '.join(missing)}: put all four Fashion-MNIST idx files there")
            return _arrays({key: ((place / name).read_bytes(), str(place / name)) for key, name in FILES.items()})
    unreachable = (
        f"Fashion-MNIST is neither in {folder / FOLDER} nor in {SYSTEM_FOLDER}, and Debian's package could not be "
        f"fetched: put the four idx files ({', '.join(FILES.values())}) in {folder / FOLDER}, or on Debian run "
        f"`apt-get download {PACKAGE}={VERSION}` in {folder} (after `apt-get update`)"
    )
    deb = fetch_verified(folder / DEB, fetch_command(), DEB_SHA256, name="Fashion-MNIST", unreachable=unreachable)
    inside = {key: f"{IN_PACKAGE}/{name}" for key, name in FILES.items()}
    packed = deb_files(deb, set(inside.values()))
    return _arrays({key: (packed[path], f"{deb}:{path}") for key, path in inside.items()})


def _arrays(files: dict[str, tuple[bytes, str]]) -> Pixels:
    """Images and labels of each split from ``files`` (array name -> gzip'd idx bytes and where they came from)."""
    arrays = {key: read_idx(packed, source, _ITEM_SHAPES[key[-1]]) for key, (packed, source) in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if len(images) != len(labels):
            raise DataError(
                f"Fashion-MNIST's {split} files hold {len(images)} images but {len(labels)} labels: "
                "replace them with the four files of one release"
            )
    return arrays
