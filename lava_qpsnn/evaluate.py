"""Evaluating an exported network on its data set's test split, and checking it
against the PyTorch model it came from."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .checkpoint import Checkpoint, check_exported_from
from .data import encode_test_split, load_dataset
from .errors import ConfigError
from .lava_run import run_lava
from .netx_file import read_net_info
from .sim import read_netx, simulate
from .train import classify, output_spikes

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
    device: str = "cpu",
) -> Evaluation:
    """Run the first ``samples`` test samples (all by default) through ``net_path``.

    ``device`` is where the checkpoint's PyTorch fixed-point model runs (``cpu``, ``cuda``, ``auto``).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if samples is not None and samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {samples}")
    info = read_net_info(net_path)
    network = read_netx(net_path)  # what the simulator runs and a checkpoint is checked against
    if checkpoint is not None:
        check_exported_from(checkpoint, info, network)
    _, test_set = load_dataset(info.dataset)
    spikes = encode_test_split(test_set, info.encoding)[:samples]
    labels = test_set.labels[: len(spikes)]
    start = time.perf_counter()
    out = simulate(network, spikes) if backend == "sim" else run_lava(net_path, spikes, progress=progress)
    seconds = time.perf_counter() - start
    predictions = classify(out)
    result = dict(backend=backend, samples=len(spikes), accuracy=float((predictions == labels).mean()), seconds=seconds)
    if checkpoint is not None:
        reference = output_spikes(checkpoint.fixed_point(), spikes, device=device)
        ref_predictions = classify(reference)
        same = (reference == out).all(axis=(1, 2))
        result.update(
            reference_accuracy=float((ref_predictions == labels).mean()),
            prediction_agreement=float((ref_predictions == predictions).mean()),
            spike_agreement=float(same.mean()),
            mismatched_samples=tuple(int(i) for i in np.flatnonzero(~same)),
        )
    return Evaluation(**result)
