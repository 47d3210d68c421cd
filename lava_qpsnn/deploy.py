"""Deploying a ``.net`` as one Lava :class:`~lava_qpsnn.processes.Classifier` on a target.

The same code runs on both targets; only the run configuration differs
(:func:`lava_qpsnn.targets.run_config`).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .data import load_dataset
from .errors import LavaRuntimeError
from .targets import check_target, run_config

__all__ = ["Deployment", "deploy"]


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
    target: str = "sim",
    samples: int | None = None,
    samples_per_run: int = 50,
    progress: bool = True,
) -> Deployment:
    """Classify the first ``samples`` test samples (all by default) of the file's data set in ONE Lava run.

    ``samples_per_run`` only sets the progress bar's step: the run pauses between
    ``run()`` calls and resumes with its state, so results do not depend on it.
    """
    check_target(target)  # before any work: a missing Loihi runtime fails in well under a second
    from .processes import Classifier

    start = time.perf_counter()
    clf = Classifier(net_path, samples=samples, target=target)
    config = run_config(target)
    from lava.magma.core.run_conditions import RunSteps

    try:
        with tqdm(total=clf.num_samples, desc=f"lava {target}", unit="sample", disable=not progress) as bar:
            for first in range(0, clf.num_samples, samples_per_run):
                chunk = min(samples_per_run, clf.num_samples - first)
                clf.run(condition=RunSteps(num_steps=chunk * clf.time_steps), run_cfg=config)
                bar.update(chunk)
        predictions = clf.predictions.get().astype(np.int64)
    except Exception as exc:
        raise LavaRuntimeError(f"Lava run of {clf.info.path.name} failed ({type(exc).__name__}: {exc})") from exc
    finally:
        with contextlib.suppress(Exception):  # stopping a run that never started raises too
            clf.stop()
    labels = load_dataset(clf.info.dataset)[1].labels[: clf.num_samples]
    return Deployment(target, predictions, labels, time.perf_counter() - start)
