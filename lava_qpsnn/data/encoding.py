"""How images become a network's input: the same numbers in training, the simulator and Lava.

Two encodings (:class:`Encoding`):

- ``rate``: pixel value ``p`` spikes with probability ``p`` on each step (Bernoulli, seeded).
  Spikes are bool, a quarter of float32.
- ``direct``: the image itself on every step, as graded spikes. Pixel ``p`` sends the integer
  payload ``round(p * (2^bits - 1))`` (0..255 at 8 bits), which Lava's fixed-point synapses
  multiply by the weights (netx builds the first layer so with ``input_message_bits=bits``).
  Every network takes these integers; the float network divides them by ``2^bits - 1``
  (:func:`~lava_qpsnn.training.models.scale_input`), so it sees the image on the payload grid,
  and the integer network folds that factor into its first layer's threshold.

Test inputs are drawn only for the samples asked for: a stream (:class:`SpikeStream`,
:class:`PayloadStream`) encodes any slice of a split on its own, identical to that slice of the
whole split's encoding, so evaluation runs in batches of bounded memory and its results do not
depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from . import Dataset

__all__ = [
    "Encoding",
    "ENCODINGS",
    "rate_encode",
    "direct_encode",
    "encode_images",
    "SpikeStream",
    "PayloadStream",
    "InputStream",
    "input_stream",
    "stream_test_split",
    "spike_batches",
    "encode_test_split",
]

ENCODINGS = ("rate", "direct")
MAX_PAYLOAD_BITS = 16  # beyond this no 24-bit Lava state holds even a single weight's graded input


@dataclass(frozen=True)
class Encoding:
    """How images become input: ``rate`` spikes or ``direct`` graded payloads (see the module docstring).

    Attributes
    ----------
    time_steps : steps ``T`` per sample
    seed : seeds the rate code of the test split, which is therefore the same spike tensor in
        PyTorch, in the exported network's evaluation and in Lava (``direct`` draws nothing)
    kind : ``"rate"`` or ``"direct"``
    bits : payload bits of ``direct`` encoding (1..16; 8 sends the 8-bit pixel values themselves)
    """

    time_steps: int = 16
    seed: int = 0
    kind: str = "rate"
    bits: int = 8

    def __post_init__(self) -> None:
        if self.kind not in ENCODINGS:
            raise ConfigError(
                f"unknown encoding {self.kind!r}: use one of {', '.join(ENCODINGS)}", settings=("encoding",)
            )
        if not _is_int(self.time_steps) or not 1 <= self.time_steps <= 10_000:
            raise ConfigError(f"time steps must be in 1..10000, got {self.time_steps!r}", settings=("time_steps",))
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError(f"the encoding seed must be an integer >= 0, got {self.seed!r}", settings=("seed",))
        if not _is_int(self.bits) or not 1 <= self.bits <= MAX_PAYLOAD_BITS:
            raise ConfigError(
                f"payload bits must be in 1..{MAX_PAYLOAD_BITS}, got {self.bits!r}", settings=("payload_bits",)
            )
        if self.kind == "rate" and self.bits != Encoding.bits:
            raise ConfigError("payload bits belong to direct encoding: rate spikes carry none", settings=("encoding",))

    @property
    def graded(self) -> bool:
        """Whether the input is graded spikes (``direct``) rather than binary ones."""
        return self.kind == "direct"

    @property
    def payload_max(self) -> int:
        """The largest input value: ``2^bits - 1`` for ``direct``, 1 (a spike) for ``rate``."""
        return (1 << self.bits) - 1 if self.graded else 1

    @property
    def input_message_bits(self) -> int:
        """netx's ``input_message_bits`` for this input: the payload bits, 0 for binary spikes."""
        return self.bits if self.graded else 0

    def describe(self) -> str:
        """A few words for tables and logs, e.g. ``direct 8-bit, T=4``."""
        kind = f"direct {self.bits}-bit" if self.graded else "rate"
        return f"{kind}, T={self.time_steps}"


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def rate_encode(images: np.ndarray, time_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Encode ``images`` (``N x ...`` in [0, 1]) as float32 spikes ``N x ... x T``."""
    return _rate_spikes(images, time_steps, rng).astype(np.float32)


def _rate_spikes(images: np.ndarray, time_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Bool spikes ``N x ... x T``: one float32 draw per pixel and step, C order, steps last."""
    draws = rng.random((*images.shape, time_steps), dtype=np.float32)
    return draws < images[..., None]


def direct_encode(images: np.ndarray, time_steps: int, bits: int) -> np.ndarray:
    """The graded payloads ``round(p * (2^bits - 1))`` of ``images`` (``N x ...`` in [0, 1]) on every step.

    Returns ``N x ... x T``, uint8 up to 8 bits, int32 beyond. Values outside [0, 1] are refused: they have no payload.
    """
    images = np.asarray(images)
    if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise DataError(
            f"image values must be in [0, 1] for direct encoding, found {images.min()}..{images.max()}: "
            "scale them as in training (e.g. images / 255)"
        )
    payload = np.rint(images.astype(np.float64) * ((1 << bits) - 1)).astype(np.uint8 if bits <= 8 else np.int32)
    return np.repeat(payload[..., None], time_steps, axis=-1)


def encode_images(images: np.ndarray, encoding: Encoding, rng: np.random.Generator) -> np.ndarray:
    """One batch of training input: rate spikes drawn from ``rng`` (float32), or direct payloads (``rng`` unused)."""
    if encoding.graded:
        return direct_encode(images, encoding.time_steps, encoding.bits)
    return rate_encode(images, encoding.time_steps, rng)


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


class PayloadStream:
    """Direct-encoded input of ``images`` (:func:`direct_encode`), slice by slice like a :class:`SpikeStream`."""

    def __init__(self, images: np.ndarray, time_steps: int, bits: int) -> None:
        self.images, self.time_steps, self.bits = images, time_steps, bits

    def __len__(self) -> int:
        return len(self.images)

    def first(self, samples: int | None) -> PayloadStream:
        """The stream of the first ``samples`` (all if None)."""
        return PayloadStream(self.images[:samples], self.time_steps, self.bits)

    def encode(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Payloads ``N x ... x T`` of samples ``start`` up to ``stop`` (the end by default)."""
        return direct_encode(self.images[start:stop], self.time_steps, self.bits)


InputStream = SpikeStream | PayloadStream


def input_stream(images: np.ndarray, encoding: Encoding, state: dict) -> InputStream:
    """The stream of ``images`` under ``encoding``; a rate code draws from generator ``state``."""
    if encoding.graded:
        return PayloadStream(images, encoding.time_steps, encoding.bits)
    return SpikeStream(images, encoding.time_steps, state)


def stream_test_split(dataset: Dataset, encoding: Encoding) -> InputStream:
    """The fixed encoding of a test split, as a stream (nothing is encoded yet)."""
    return input_stream(dataset.images, encoding, np.random.PCG64(encoding.seed).state)


def encode_test_split(dataset: Dataset, encoding: Encoding, samples: int | None = None) -> np.ndarray:
    """The fixed encoding (``N x C x H x W x T``) of a test split's first ``samples`` (all by default).

    Rate: bool spikes; sample ``i`` gets the same spikes whatever ``samples`` is, and the same as
    ``rate_encode(images, T, numpy.random.default_rng(seed))`` gives it. Direct: the payloads.
    """
    return stream_test_split(dataset, encoding).encode(0, samples)


def spike_batches(
    spikes: np.ndarray | torch.Tensor | InputStream, batch_size: int, samples: int | None = None
) -> Iterator[np.ndarray | torch.Tensor]:
    """The first ``samples`` (all by default) of ``spikes`` in consecutive batches of ``batch_size``.

    Arrays are sliced; a stream encodes each batch when it is asked for, so only one batch of
    input exists at a time.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    count = len(spikes) if samples is None else min(samples, len(spikes))
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        yield spikes.encode(start, stop) if isinstance(spikes, SpikeStream | PayloadStream) else spikes[start:stop]
