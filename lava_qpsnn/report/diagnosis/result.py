"""What a diagnosis finds: per-layer facts across the stages, where stages diverge, and the problems."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["Diagnosis", "Divergence", "LayerDiagnosis", "Problem", "Raster", "STAGES", "EXACT_STAGES"]

STAGES = ("float", "trained", "fixed-point", "simulator", "lava")
EXACT_STAGES = ("fixed-point", "simulator", "lava")
SATURATED_RATE = 0.9  # a layer whose neurons fire at 90% of their steps or more passes on almost no information
RASTER_NEURONS = 24  # neurons shown around the first divergence
EXPECTED = {  # why two consecutive stages that need not agree differ
    ("float", "trained"): "the weights are quantized",
    ("trained", "fixed-point"): "the threshold and bias are rounded to integers, the state is kept in integers",
}


@dataclass(frozen=True)
class Problem:
    """A finding that fails a diagnosis: one advice line, and the settings that fix it (Python names,
    as :class:`~lava_qpsnn.errors.QpsnnError` carries them; the command line prints them as options)."""

    text: str
    settings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Divergence:
    """Where two stages first differ: the first layer (in pipeline order) with a different spike,
    and in it the first time step, then the first sample and neuron (C-order index) at that step."""

    first: str
    second: str
    layer: int
    step: int
    sample: int
    neuron: tuple[int, ...]
    mismatches: int  # (sample, neuron, step) entries of that layer that differ

    @property
    def exact(self) -> bool:
        """Whether both stages must agree spike for spike (a divergence between them is a problem)."""
        return self.first in EXACT_STAGES and self.second in EXACT_STAGES

    def describe(self) -> str:
        neuron = ", ".join(map(str, self.neuron))
        return (
            f"{self.first} and {self.second} diverge first at layer {self.layer}, step {self.step}, "
            f"sample {self.sample}, neuron ({neuron}): {self.mismatches:,} spikes of that layer differ"
        )


@dataclass(frozen=True)
class LayerDiagnosis:
    """One neuron layer (``index``: its ``/layer/i`` in the ``.net``) across the stages.

    ``spikes`` and ``rates`` are per stage: spikes per sample, and the share of a neuron's
    steps (from the step the sample reaches the layer) on which it fires. ``peak_current``
    and ``peak_voltage`` are the largest ``|u|`` and ``|v|`` reached without Lava's limits
    (``limit_step``: the first step at which one of them reaches :data:`STATE_LIMIT`;
    ``limit_changed_spikes``: the layer's spikes that Lava's wrap and clip change, in this layer
    or, passed on, in one before it). Spikes and
    rates of the ``lava`` stage are over its own (first) samples.
    """

    index: int
    kind: str
    shape: tuple[int, ...]
    latency: int
    bits: int | None
    levels_used: int | None
    levels_available: int | None
    zero_weights: bool
    spikes: dict[str, float]
    rates: dict[str, float]
    peak_current: int | None
    peak_voltage: int | None
    limit_step: int | None
    limit_changed_spikes: int | None
    netx_changed_weights: int | None
    file_differences: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Raster:
    """The spikes of two stages around a divergence: ``neurons`` (C-order indices) x steps, one sample."""

    first: str
    second: str
    layer: int
    sample: int
    neurons: np.ndarray
    first_spikes: np.ndarray
    second_spikes: np.ndarray


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The result of :func:`~lava_qpsnn.report.diagnosis.diagnose`. ``problems`` are the findings that
    make it fail (:class:`Problem`); ``notes`` are differences expected by design, shown for information; ``raster``
    holds both stages' spikes around the first divergence (None if the stages agree)."""

    checkpoint: str
    net: str | None
    samples: int
    lava_samples: int
    stages: tuple[str, ...]
    accuracy: dict[str, float]
    layers: tuple[LayerDiagnosis, ...]
    divergences: tuple[Divergence, ...]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    raster: Raster | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        """Plain JSON types: every field, the raster's arrays as lists."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "raster"}
        out["layers"] = [dataclasses.asdict(layer) for layer in self.layers]
        out["divergences"] = [dict(dataclasses.asdict(d), exact=d.exact) for d in self.divergences]
        out["problems"] = [{"text": p.text, "settings": list(p.settings)} for p in self.problems]
        out["healthy"] = self.healthy
        out["raster"] = None
        if self.raster is not None:
            raster = self.raster
            out["raster"] = {
                "first": raster.first,
                "second": raster.second,
                "layer": raster.layer,
                "sample": raster.sample,
                "neurons": raster.neurons.tolist(),
                "first_spikes": raster.first_spikes.tolist(),
                "second_spikes": raster.second_spikes.tolist(),
            }
        return _plain(out)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return value
