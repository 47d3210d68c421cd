"""Deploying a ``.net`` as one Lava :class:`~lava_qpsnn.lava.processes.Classifier` on a target.

The same code runs on both targets. What differs is the run configuration
(:func:`lava_qpsnn.lava.targets.run_config`) and, for ``loihi2``, the spike adapters between
the host processes and the chip, which the Classifier inserts itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..data import load_dataset, stream_test_split
from ..export.fixed_point import fixed_point_model
from ..training.checkpoint import Checkpoint
from ..training.loop import classify, output_spikes
from .run import run_windows
from .targets import check_target, run_config

__all__ = ["Deployment", "deploy", "agreement_with_pytorch"]


@dataclass(frozen=True)
class Deployment:
    """Result of :func:`deploy`: one prediction per test sample, in order."""

    target: str
    predictions: np.ndarray
    labels: np.ndarray
    seconds: float  # build, compile and run

    @property
    def samples(self) -> int:
        return len(self.predictions)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())


def deploy(
    net_path: str | os.PathLike,
    *,
    target: str = "cpu",
    samples: int | None = None,
    samples_per_run: int = 50,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> Deployment:
    """Classify the first ``samples`` test samples (all by default) of the file's data set in ONE Lava run.

    ``samples_per_run`` only sets the progress bar's step: the run pauses between
    ``run()`` calls and resumes with its state, so results do not depend on it.
    ``on_chunk(samples done)`` is called at each pause (see :func:`lava_qpsnn.lava.run.run_windows`).
    """
    check_target(target)  # before any work: a missing Loihi runtime fails in well under a second
    from .processes import Classifier

    start = time.perf_counter()
    clf = Classifier(net_path, samples=samples, target=target)
    predictions = run_windows(
        clf,
        clf.num_samples,
        clf.time_steps,
        run_config(target),
        read=clf.predictions.get,
        name=clf.info.path.name,
        desc=f"lava {target}",
        samples_per_run=samples_per_run,
        progress=progress,
        on_chunk=on_chunk,
    ).astype(np.int64)
    labels = load_dataset(clf.info.dataset)[1].labels[: clf.num_samples]
    return Deployment(target, predictions, labels, time.perf_counter() - start)


def agreement_with_pytorch(
    checkpoint: Checkpoint, predictions: np.ndarray, device: str | torch.device = "cpu"
) -> float:
    """Fraction of the first test samples on which ``predictions`` equal the checkpoint's fixed-point model's."""
    stream = stream_test_split(load_dataset(checkpoint.dataset)[1], checkpoint.encoding).first(len(predictions))
    spikes = output_spikes(fixed_point_model(checkpoint), stream, device=device)
    return float((classify(spikes) == predictions).mean())
