"""Data sets that ship offline, and the spike encoding shared by training and Lava.

This module is the one place new data sets plug in: add a loader to ``_LOADERS``.
Images are float arrays in [0, 1] of layout ``NCHW``; spikes are ``N x shape x T``
(slayer's layout: ``NFT`` for dense inputs, ``NCHWT`` for conv inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, DataError

__all__ = [
    "Dataset",
    "Encoding",
    "load_dataset",
    "dataset_names",
    "rate_encode",
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


@dataclass(frozen=True)
class Encoding:
    """Rate (Bernoulli) coding: pixel value p spikes with probability p each step.

    The test split is encoded with ``seed`` and is therefore the same spike tensor in
    PyTorch, in the exported network's evaluation and in Lava.
    """

    time_steps: int = 16
    seed: int = 0
    kind: str = "rate"

    def __post_init__(self) -> None:
        if self.kind != "rate":
            raise ConfigError(f"unknown encoding {self.kind!r}: use 'rate'")
        if not 1 <= self.time_steps <= 10_000:
            raise ConfigError(f"time steps must be in 1..10000, got {self.time_steps}: pass e.g. --time-steps 16")


def rate_encode(images: np.ndarray, time_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Encode ``images`` (``N x ...`` in [0, 1]) as float32 spikes ``N x ... x T``."""
    draws = rng.random((*images.shape, time_steps), dtype=np.float32)
    return (draws < images[..., None]).astype(np.float32)


def encode_test_split(dataset: Dataset, encoding: Encoding) -> np.ndarray:
    """The fixed spike encoding of a test split (``N x C x H x W x T``)."""
    rng = np.random.default_rng(encoding.seed)
    return rate_encode(dataset.images, encoding.time_steps, rng)


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


_LOADERS: dict[str, Callable[[], tuple[Dataset, Dataset]]] = {"digits": _digits}


def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_LOADERS)


def load_dataset(name: str) -> tuple[Dataset, Dataset]:
    """Return the fixed (train, test) split of data set ``name``."""
    loader = _LOADERS.get(name)
    if loader is None:
        raise DataError(f"unknown data set {name!r}: choose one of {', '.join(dataset_names())}")
    return loader()
