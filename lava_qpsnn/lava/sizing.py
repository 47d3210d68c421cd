"""How many samples a Lava run gets: its cost measured on a short run, its size set by a time budget.

Lava's fixed-point CPU models take from tens of milliseconds (a small MLP) to seconds (a
28x28 conv net) per sample, so a whole test split can take hours. The ``eval --backend
lava`` and ``run`` commands therefore run the first few samples first and time them
(:func:`measure_rate`); unless a number of samples or ``all`` is given, they then run as
many samples as are estimated to finish within :data:`BUDGET_SECONDS`
(:func:`sized_samples`), and say so, with the estimate for all samples, before the long run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = [
    "BUDGET_SECONDS",
    "Rate",
    "SampleChoice",
    "choose_samples",
    "measure_rate",
    "sized_samples",
    "format_duration",
]

BUDGET_SECONDS = 150.0  # the default Lava run: a couple of minutes
PROBE_SAMPLES = 6  # samples of the measuring run
PROBE_CHUNK = 2  # its pause interval: the first pause carries the start-up, the others the rate


@dataclass(frozen=True)
class Rate:
    """A measured Lava run: ``startup`` seconds (build, compile, start) plus ``per_sample`` seconds per sample."""

    startup: float
    per_sample: float
    samples: int  # how many samples the measurement ran

    def seconds(self, samples: int) -> float:
        """Estimated wall time of a run of ``samples``."""
        return self.startup + samples * self.per_sample


RunProbe = Callable[[int, int, Callable[[int], None]], object]


def measure_rate(
    run: RunProbe,
    samples: int = PROBE_SAMPLES,
    *,
    chunk: int = PROBE_CHUNK,
    clock: Callable[[], float] = time.perf_counter,
) -> Rate:
    """Time ``run(samples, chunk, on_chunk)``: one Lava run of the first ``samples`` that pauses every
    ``chunk`` samples and calls ``on_chunk(samples done)`` at each pause.

    The time to the first pause holds the start-up; the samples between the first and the last
    pause give the rate, free of it. A run of one chunk charges all its time to its samples (an
    overestimate).
    """
    marks: list[tuple[int, float]] = []
    start = clock()
    run(samples, chunk, lambda done: marks.append((done, clock())))
    if not marks:
        raise ConfigError("the measuring run reported no samples: nothing to size the run by")
    (first, first_time), (last, last_time) = marks[0], marks[-1]
    if last > first:
        per_sample = (last_time - first_time) / (last - first)
        startup = max(0.0, first_time - start - first * per_sample)
    else:
        per_sample, startup = (first_time - start) / first, 0.0
    return Rate(startup, per_sample, last)


def sized_samples(total: int, rate: Rate, budget: float = BUDGET_SECONDS) -> int:
    """The most samples, at least 1 and at most ``total``, whose run is estimated to take at most ``budget`` s."""
    if rate.per_sample <= 0:
        return total
    return max(1, min(total, math.floor((budget - rate.startup) / rate.per_sample)))


def format_duration(seconds: float) -> str:
    """``42 s``, ``2.5 min`` or ``1.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class SampleChoice:
    """How many samples a Lava run gets and why: ``reason`` is ``"given"`` (a count was asked for),
    ``"all"`` (every sample was asked for), ``"fits"`` (all fit the budget) or ``"budget"`` (as many as fit)."""

    count: int
    total: int
    reason: str
    rate: Rate | None = None  # the measured cost (None when a count was given)


def choose_samples(requested: int | str | None, total: int, probe: RunProbe) -> SampleChoice:
    """The samples of a Lava run: ``requested`` as given (a count); otherwise the first few are run and
    timed (:func:`measure_rate`), then every one runs (``requested == "all"``) or as many as are estimated
    to fit :data:`BUDGET_SECONDS` (``requested`` None)."""
    if isinstance(requested, int):
        return SampleChoice(requested, total, "given")
    rate = measure_rate(probe, min(PROBE_SAMPLES, total))
    if requested == "all":
        return SampleChoice(total, total, "all", rate)
    count = sized_samples(total, rate)
    return SampleChoice(count, total, "fits" if count == total else "budget", rate)
