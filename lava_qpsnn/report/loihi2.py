"""Loihi 2 resource limits and per-operation energies, each with its source, and the ESTIMATES built on them.

Nothing here was measured on a chip: there is no Loihi 2 in this project's test set-up, and
Lava's compiler for Loihi 2 is not public. What is published for Loihi 2 is a vendor brief,
[Loihi2Brief]: 128 neuro cores per chip, up to 1 million neurons and 120 million synapses per
chip, and per-core memory shared flexibly between synapses, neuron state and routing. Intel does
not publish a per-core synapse budget, per-core fan-in limit or any per-operation energy for
Loihi 2, so those come from the first Loihi [Davies2018] and are ASSUMPTIONS for Loihi 2; each
constant says which.

Core model (a lower bound, not Lava's partitioner): a layer needs at least as many cores as
it takes to hold its neurons, its weights and its input axons,

    cores = max(ceil(neurons / 8192), ceil(weight bytes / 128 KiB), ceil(input axons / 4096))

where weight bytes count every stored synapse at the layer's Loihi bits (zeros included:
Loihi stores dense connectivity), a conv kernel once (an ASSUMPTION: its output positions
share the kernel; Loihi 2's convolution storage format is not published), and input axons
are the neurons of the layer's input. Chips are the most of
cores / 128, neurons / 1e6 and stored synapses / 120e6. Neuron state and routing tables also
use core memory; they are not counted.

Energy model: ``SynOps * 23.6 pJ + neuron updates * 81 pJ + spikes * 1.7 pJ`` with Loihi 1's
figures, where every neuron is updated at every time step (the "active" figure; Davies et al.
give 52 pJ for an inactive update, so this is the upper of the two) and each spike is one
within-tile message (tile hops, 3.0-4.0 pJ each, and chip I/O are not counted).

Sources
-------
[Loihi2Brief] Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2",
    technology brief, 2021.
[Davies2018] M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
    Learning", IEEE Micro 38(1):82-99, 2018. Table 2 ("pre-silicon performance and energy
    measurements", SDF and SPICE simulation, consistent with early silicon); mapping
    constraints 1-4 on p. 89.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Cited",
    "SOURCES",
    "LIMITS",
    "ENERGIES",
    "CoreEstimate",
    "EnergyEstimate",
    "layer_cores",
    "chips_needed",
    "energy_per_inference",
]

SOURCES = {
    "Loihi2Brief": 'Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology brief, 2021',
    "Davies2018": 'M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning", '
    "IEEE Micro 38(1):82-99, 2018",
}


@dataclass(frozen=True)
class Cited:
    """A figure with its source (a key of :data:`SOURCES` and where in it); ``assumption`` says why
    a figure not published for Loihi 2 stands in for it."""

    name: str
    value: float
    unit: str
    source: str
    assumption: str = ""


CORES_PER_CHIP = Cited("neuro cores per chip", 128, "cores", "Loihi2Brief")
NEURONS_PER_CHIP = Cited("neurons per chip", 1_000_000, "neurons", "Loihi2Brief")
SYNAPSES_PER_CHIP = Cited("synapses per chip", 120_000_000, "synapses", "Loihi2Brief")
NEURONS_PER_CORE = Cited(
    "neurons per core", 8192, "neurons", "Loihi2Brief", "not published: 2^20 neurons / 128 cores (8x Loihi 1's 1,024)"
)
WEIGHT_BYTES_PER_CORE = Cited(
    "synapse memory per core",
    128 * 1024,
    "bytes",
    "Davies2018, p. 89, constraint 2",
    "Loihi 1's budget; Loihi 2 shares core memory with neuron state and routing, no synapse-only figure published",
)
AXONS_PER_CORE = Cited(
    "input axons (fan-in) per core",
    4096,
    "axons",
    "Davies2018, p. 89, constraint 4",
    "Loihi 1's; not published for Loihi 2",
)
LIMITS = (CORES_PER_CHIP, NEURONS_PER_CHIP, SYNAPSES_PER_CHIP, NEURONS_PER_CORE, WEIGHT_BYTES_PER_CORE, AXONS_PER_CORE)

_LOIHI1 = "Loihi 1's; Loihi 2 per-operation energies are not published"
SYNOP_ENERGY = Cited("energy per synaptic operation", 23.6, "pJ", "Davies2018, Table 2 (min)", _LOIHI1)
NEURON_UPDATE_ENERGY = Cited(
    "energy per neuron update", 81, "pJ", "Davies2018, Table 2 (active; inactive: 52 pJ)", _LOIHI1
)
SPIKE_ENERGY = Cited("energy per spike", 1.7, "pJ", "Davies2018, Table 2 (within tile)", _LOIHI1)
ENERGIES = (SYNOP_ENERGY, NEURON_UPDATE_ENERGY, SPIKE_ENERGY)
PICO = 1e-12


@dataclass(frozen=True)
class CoreEstimate:
    """ESTIMATE of one layer's neuro cores: the most any one per-core limit needs, and which one that is."""

    cores: int
    limited_by: str


def layer_cores(*, neurons: int, weight_bytes: float, input_axons: int) -> CoreEstimate:
    """Lower bound on the cores a layer takes under the per-core limits in :data:`LIMITS` (see module docstring)."""
    needs = {
        "neurons": math.ceil(neurons / NEURONS_PER_CORE.value),
        "synapse memory": math.ceil(weight_bytes / WEIGHT_BYTES_PER_CORE.value),
        "fan-in": math.ceil(input_axons / AXONS_PER_CORE.value),
    }
    binding = max(needs, key=needs.get)  # ties: the first listed
    return CoreEstimate(needs[binding], binding)


def chips_needed(*, cores: int, neurons: int, synapses: int) -> int:
    """ESTIMATE of Loihi 2 chips: the most of the per-chip limits on cores, neurons and stored synapses."""
    return max(
        1,
        math.ceil(cores / CORES_PER_CHIP.value),
        math.ceil(neurons / NEURONS_PER_CHIP.value),
        math.ceil(synapses / SYNAPSES_PER_CHIP.value),
    )


@dataclass(frozen=True)
class EnergyEstimate:
    """ESTIMATE of the energy of one inference in joules, by component, with Loihi 1's per-operation figures."""

    synops: float
    neuron_updates: float
    spikes: float

    @property
    def synop_joules(self) -> float:
        return self.synops * SYNOP_ENERGY.value * PICO

    @property
    def neuron_joules(self) -> float:
        return self.neuron_updates * NEURON_UPDATE_ENERGY.value * PICO

    @property
    def spike_joules(self) -> float:
        return self.spikes * SPIKE_ENERGY.value * PICO

    @property
    def joules(self) -> float:
        return self.synop_joules + self.neuron_joules + self.spike_joules


def energy_per_inference(*, synops: float, neurons: int, time_steps: int, spikes: float) -> EnergyEstimate:
    """ESTIMATE for one sample: its SynOps and spikes, and every neuron updated at each of ``time_steps``."""
    return EnergyEstimate(synops, neurons * time_steps, spikes)
