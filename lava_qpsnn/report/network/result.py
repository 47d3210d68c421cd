"""What the report finds: per layer and for the whole network (see :mod:`lava_qpsnn.report.network`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...data import Encoding
from ...export.limits import StatePeak
from ...export.summary import LayerSummary
from ...loihi import STATE_LIMIT
from ...netx import netx_arguments, netx_call
from ..loihi2 import ENERGIES, LIMITS, SOURCES, CoreEstimate, EnergyEstimate, chips_needed, energy_per_inference

__all__ = ["LayerReport", "NetworkReport", "ESTIMATE_NOTE"]

ESTIMATE_NOTE = (
    "ESTIMATE from published Loihi 2 limits (some assumed from Loihi 1) and Loihi 1 per-operation energies "
    "(Loihi 2's are not published); not measured on a chip: see lava_qpsnn.report.loihi2"
)


@dataclass(frozen=True)
class LayerReport:
    """One layer of a ``.net`` file (see the module docstring for the definitions).

    ``summary`` is the exporter's row: shape, weights, bits, packed and float32 bytes, before
    and after pruning. Spikes are None for a flatten layer; ``cores`` is None for layers
    without synapses; ``peak`` (largest ``|u|`` and ``|v|``) is None for layers without neurons.
    """

    summary: LayerSummary
    neurons: int = 0
    synapses: int = 0
    spikes_per_sample: float | None = None
    synops_per_sample: float = 0.0
    cores: CoreEstimate | None = None
    peak: StatePeak | None = None

    @property
    def compression(self) -> float | None:
        """float32 bytes (before pruning, if pruned) / packed bytes; None without weights."""
        s = self.summary
        return s.float32_bytes_before / s.packed_bytes if s.packed_bytes else None

    def to_dict(self) -> dict:
        s = self.summary
        return {
            "index": s.index,
            "type": s.kind,
            "shape": list(s.shape),
            "shape_before_pruning": None if s.shape_before is None else list(s.shape_before),
            "weights": s.params,
            "weights_before_pruning": s.params_before,
            "weight_bits": s.weight_bits,
            "loihi_bits": s.loihi_bits,
            "vth": s.threshold,
            "packed_bytes": s.packed_bytes,
            "float32_bytes": s.float32_bytes,
            "float32_bytes_before_pruning": s.float32_bytes_before,
            "compression_vs_float32_before_pruning": self.compression,
            "neurons": self.neurons,
            "synapses": self.synapses,
            "spikes_per_sample": self.spikes_per_sample,
            "synops_per_sample": self.synops_per_sample,
            "cores_estimate": None if self.cores is None else self.cores.cores,
            "cores_limited_by": None if self.cores is None else self.cores.limited_by,
            "max_current": None if self.peak is None else self.peak.current,
            "max_voltage": None if self.peak is None else self.peak.voltage,
            "state_limit": STATE_LIMIT,
        }


@dataclass(frozen=True, eq=False)
class NetworkReport:
    """A ``.net`` file's per-layer figures, totals, and Loihi 2 resource and energy ESTIMATES.

    ``example_output`` is sample 0's output spikes (``classes x T``), with its label and the
    predicted class (most spikes), for the spike raster plot.
    """

    net: Path
    dataset: str
    encoding: Encoding
    samples: int
    accuracy: float
    layers: tuple[LayerReport, ...]
    example_output: np.ndarray = field(repr=False)
    example_label: int = 0
    example_prediction: int = 0

    @property
    def time_steps(self) -> int:
        return self.encoding.time_steps

    @property
    def netx_call(self) -> str:
        """How unmodified netx builds the file as the trained network (:func:`~lava_qpsnn.netx.netx_call`)."""
        return netx_call(self.encoding, self.net.name)

    @property
    def pruned(self) -> bool:
        return any(layer.summary.params_before is not None for layer in self.layers)

    @property
    def packed_bytes(self) -> float:
        return sum(layer.summary.packed_bytes for layer in self.layers)

    @property
    def float32_bytes(self) -> int:
        return sum(layer.summary.float32_bytes for layer in self.layers)

    @property
    def float32_bytes_before(self) -> int:
        """float32 weight bytes of the network before pruning (= ``float32_bytes`` if not pruned)."""
        return sum(layer.summary.float32_bytes_before for layer in self.layers)

    @property
    def compression(self) -> float:
        """float32 before pruning / packed: the QP-SNN size reduction."""
        return self.float32_bytes_before / self.packed_bytes

    @property
    def neurons(self) -> int:
        return sum(layer.neurons for layer in self.layers)

    @property
    def synapses(self) -> int:
        return sum(layer.synapses for layer in self.layers)

    @property
    def weights(self) -> int:
        return sum(layer.summary.params for layer in self.layers)

    @property
    def spikes_per_sample(self) -> float:
        """Input spikes plus every neuron layer's output spikes."""
        return sum(layer.spikes_per_sample or 0.0 for layer in self.layers)

    @property
    def synops_per_sample(self) -> float:
        return sum(layer.synops_per_sample for layer in self.layers)

    @property
    def cores(self) -> int:
        """ESTIMATE: neuro cores, the sum of each synapse layer's (one layer per core at least)."""
        return sum(layer.cores.cores for layer in self.layers if layer.cores is not None)

    @property
    def chips(self) -> int:
        """ESTIMATE: Loihi 2 chips (:func:`lava_qpsnn.report.loihi2.chips_needed`)."""
        return chips_needed(cores=self.cores, neurons=self.neurons, synapses=self.weights)

    @property
    def energy(self) -> EnergyEstimate:
        """ESTIMATE of one inference's energy (:func:`lava_qpsnn.report.loihi2.energy_per_inference`)."""
        return energy_per_inference(
            synops=self.synops_per_sample,
            neurons=self.neurons,
            time_steps=self.time_steps,
            spikes=self.spikes_per_sample,
        )

    def to_dict(self) -> dict:
        """The same figures as plain JSON-ready data."""
        energy = self.energy
        return {
            "net": str(self.net),
            "dataset": self.dataset,
            "encoding": dict(vars(self.encoding)),
            "netx_arguments": netx_arguments(self.encoding),
            "time_steps": self.time_steps,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "layers": [layer.to_dict() for layer in self.layers],
            "totals": {
                "weights": self.weights,
                "packed_bytes": self.packed_bytes,
                "float32_bytes": self.float32_bytes,
                "float32_bytes_before_pruning": self.float32_bytes_before,
                "compression_vs_float32": self.float32_bytes / self.packed_bytes,
                "compression_vs_float32_before_pruning": self.compression,
                "neurons": self.neurons,
                "synapses": self.synapses,
                "spikes_per_sample": self.spikes_per_sample,
                "synops_per_sample": self.synops_per_sample,
            },
            "loihi2_estimate": {
                "note": ESTIMATE_NOTE,
                "cores": self.cores,
                "chips": self.chips,
                "limits": [vars(limit) for limit in LIMITS],
            },
            "energy_estimate_per_inference": {
                "note": ESTIMATE_NOTE,
                "joules": energy.joules,
                "synop_joules": energy.synop_joules,
                "neuron_update_joules": energy.neuron_joules,
                "spike_joules": energy.spike_joules,
                "neuron_updates": energy.neuron_updates,
                "energies": [vars(e) for e in ENERGIES],
            },
            "sources": SOURCES,
        }
