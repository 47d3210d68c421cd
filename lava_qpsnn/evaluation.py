"""Evaluating an exported network on its data set's test split, and checking it
against the PyTorch model it came from.

The simulator and the PyTorch model run the split in batches that are encoded when they
are needed (:class:`~lava_qpsnn.data.SpikeStream`), so memory is one batch's whatever the
number of samples, and every figure is the same for any batch size. Lava runs all its
samples in one run (its input buffer holds them all), which is why Lava runs are sized
by the command line (:mod:`lava_qpsnn.lava.sizing`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from .data import load_dataset, spike_batches, stream_test_split
from .errors import ConfigError
from .export.fixed_point import fixed_point_model
from .lava.run import run_lava
from .netx import check_exported_from, read_net_info
from .sim import default_batch_size, simulate
from .training.checkpoint import Checkpoint
from .training.loop import classify, output_spikes

__all__ = ["Evaluation", "evaluate"]

BACKENDS = ("sim", "lava")  # sim: lava_qpsnn.sim, bit-exact with lava and far faster


@dataclass(frozen=True)
class Evaluation:
    """Result of :func:`evaluate`; agreement fields are None without a checkpoint.

    ``spike_agreement`` is the fraction of samples whose output spike trains (every
    neuron, every step) are identical in Lava and PyTorch.
    """

    backend: str
    samples: int
    accuracy: float
    seconds: float
    reference_accuracy: float | None = None
    prediction_agreement: float | None = None
    spike_agreement: float | None = None
    mismatched_samples: tuple[int, ...] = ()


def evaluate(
    net_path: str | os.PathLike,
    *,
    backend: str = "sim",
    samples: int | None = None,
    checkpoint: Checkpoint | None = None,
    progress: bool = True,
    batch_size: int | None = None,
    device: str = "cpu",
) -> Evaluation:
    """Run the first ``samples`` test samples (all by default) through ``net_path``.

    ``batch_size`` samples are encoded and run at a time (default: the simulator's
    :func:`~lava_qpsnn.sim.default_batch_size`, about 256 MB of tensors); results do not depend on it.
    ``seconds`` is the backend's time alone (not encoding, not the PyTorch check). ``device``
    is where the checkpoint's PyTorch fixed-point model runs (``cpu``, ``cuda``, ``auto``).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if samples is not None and samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}", settings=("samples",))
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}", settings=("batch_size",))
    info = read_net_info(net_path)
    network = info.network  # what the simulator runs and a checkpoint is checked against
    if checkpoint is not None:
        check_exported_from(checkpoint, info)
    _, test_set = load_dataset(info.dataset)
    stream = stream_test_split(test_set, info.encoding)
    count = len(stream) if samples is None else min(samples, len(stream))
    size = batch_size or default_batch_size(network, info.encoding.time_steps)
    reference_model = None if checkpoint is None else fixed_point_model(checkpoint)
    seconds, lava_out = 0.0, None
    if backend == "lava":
        start = time.perf_counter()
        lava_out = run_lava(net_path, stream.encode(0, count), progress=progress)
        seconds = time.perf_counter() - start
    tally = _Tally()
    for spikes in spike_batches(stream, size, count):
        batch = slice(tally.samples, tally.samples + len(spikes))
        if lava_out is None:
            start = time.perf_counter()
            out = simulate(network, spikes, batch_size=size)
            seconds += time.perf_counter() - start
        else:
            out = lava_out[batch]
        reference = (
            None if reference_model is None else output_spikes(reference_model, spikes, batch_size=size, device=device)
        )
        tally.add(out, test_set.labels[batch], reference)
    return tally.evaluation(backend, seconds, with_reference=reference_model is not None)


class _Tally:
    """Counts over batches: correct predictions, and agreement with the PyTorch model's output spikes."""

    def __init__(self) -> None:
        self.samples = self.correct = self.reference_correct = self.agree = self.same = 0
        self.mismatched: list[int] = []

    def add(self, out: np.ndarray, labels: np.ndarray, reference: np.ndarray | None) -> None:
        """One batch: the samples after those added before."""
        predictions = classify(out)
        first = self.samples
        self.samples += len(out)
        self.correct += int((predictions == labels).sum())
        if reference is None:
            return
        ref_predictions = classify(reference)
        same = (reference == out).all(axis=(1, 2))
        self.reference_correct += int((ref_predictions == labels).sum())
        self.agree += int((ref_predictions == predictions).sum())
        self.same += int(same.sum())
        self.mismatched += [first + int(i) for i in np.flatnonzero(~same)]

    def evaluation(self, backend: str, seconds: float, *, with_reference: bool) -> Evaluation:
        n = self.samples
        result = Evaluation(backend=backend, samples=n, accuracy=self.correct / n, seconds=seconds)
        if not with_reference:
            return result
        return replace(
            result,
            reference_accuracy=self.reference_correct / n,
            prediction_agreement=self.agree / n,
            spike_agreement=self.same / n,
            mismatched_samples=tuple(self.mismatched),
        )
