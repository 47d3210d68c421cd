"""What an exported network costs on Loihi 2: weight memory, measured activity, and ESTIMATED cores and energy.

:func:`report_network` reads a ``.net``, runs its first test samples through the bit-exact
simulator (:func:`lava_qpsnn.sim.simulate`) and returns a :class:`NetworkReport`; the
``report`` command prints it as a table or JSON (``python -m lava_qpsnn report model.net``).
Shapes, weights, bits and packed sizes are the exporter's own rows
(:class:`lava_qpsnn.export.summary.LayerSummary`), so both commands agree.

Definitions (per sample = one inference of T time steps, averaged over the samples run):

- **spikes**: output spikes of each neuron layer over the T steps; for the input layer, the
  input spikes.
- **SynOps**: for each synapse layer, the sum over time steps and input spikes of the number
  of synapses each input spike drives: ``out_features`` for a dense layer; for a conv layer,
  the number of (output position, output channel) pairs the spiking pixel is connected to,
  counted exactly (a conv2d of the input spike map with an all-ones kernel, summed), so edge
  pixels and strides count what they really drive. Every stored synapse counts, zero-valued
  weights included, because Loihi stores and processes them (dense connectivity).
- **synapses**: the SynOps of one step in which every input spikes once (all connections);
  **weights**: the values stored (a conv kernel once).
- **max |u|, max |v|**: the largest current and voltage a neuron layer reaches on the samples,
  measured by the simulator without Lava's 24-bit limits (:mod:`lava_qpsnn.export.limits`), next to
  that limit, ``2^23``: Lava computes them exactly below it.
- **packed**: weights x the trained grid's bits (with a checkpoint; otherwise the Loihi
  signed bits found in the file); compression is float32 / packed, against the float32
  network before pruning when the checkpoint records a pruning.

Cores, chips and energy are ESTIMATES from published limits and Loihi 1 per-operation
energies, not measurements: see :mod:`lava_qpsnn.report.loihi2` for the model and its sources.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..data import load_dataset, spike_batches, stream_test_split
from ..errors import ConfigError
from ..export.limits import StatePeak, measured_peaks
from ..export.summary import (
    SUMMARY_HEADERS,
    LayerSummary,
    signed_weight_bits,
    summary_rows,
    with_unpruned_sizes,
)
from ..loihi import STATE_LIMIT
from ..netx import ConvLayer, DenseLayer, FlattenLayer, InputLayer, Layer, NetxNetwork
from ..netx.metadata import check_exported_from, read_net_info, squeeze_shape
from ..sim import default_batch_size, simulate
from ..table import format_table
from ..training.checkpoint import Checkpoint
from ..training.loop import classify
from ..training.models import weight_blocks
from ..training.quantize import synapse_bits
from .loihi2 import (
    ENERGIES,
    LIMITS,
    SOURCES,
    CoreEstimate,
    EnergyEstimate,
    chips_needed,
    energy_per_inference,
    layer_cores,
)

__all__ = ["LayerReport", "NetworkReport", "report_network", "report_table", "format_report"]

KINDS = {InputLayer: "input", DenseLayer: "dense", ConvLayer: "conv", FlattenLayer: "flatten"}
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
    time_steps: int
    samples: int
    accuracy: float
    layers: tuple[LayerReport, ...]
    example_output: np.ndarray = field(repr=False)
    example_label: int = 0
    example_prediction: int = 0

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


def report_network(
    net_path: str | os.PathLike,
    *,
    checkpoint: Checkpoint | None = None,
    samples: int = 32,
    batch_size: int | None = None,
) -> NetworkReport:
    """Report on ``net_path``, measuring activity on its data set's first ``samples`` test samples.

    Only those samples are encoded, ``batch_size`` at a time (default: the simulator's
    :func:`~lava_qpsnn.sim.default_batch_size`); the figures do not depend on it.

    With ``checkpoint`` (the one the file was exported from), bits are the trained grid's and
    sizes are also given before pruning; a checkpoint of another data set, encoding or shape
    is a :class:`~lava_qpsnn.errors.ConfigError`.
    """
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}", settings=("samples",))
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}", settings=("batch_size",))
    info = read_net_info(net_path)
    network = info.network
    trained_bits = []
    if checkpoint is not None:
        check_exported_from(checkpoint, info)
        net = checkpoint.build()
        bits = dict(zip(map(id, weight_blocks(net)), synapse_bits(net), strict=True))
        trained_bits = [bits.get(id(block)) for block in net.blocks]  # None: pooling, flatten
    rows = _summaries(network, trained_bits)
    if checkpoint is not None and checkpoint.pruning is not None:
        rows = [replace(r, shape_before=squeeze_shape(r.shape_before)) for r in with_unpruned_sizes(rows, checkpoint)]
    _, test_set = load_dataset(info.dataset)
    size = batch_size or default_batch_size(network, info.encoding.time_steps)
    batches = spike_batches(stream_test_split(test_set, info.encoding), size, samples)
    count, layer_spikes, synops, predictions, example_output, state_peaks = _activity(network, batches)
    labels = test_set.labels[:count]
    peaks = dict(zip(map(id, network.neuron_layers), state_peaks, strict=True))
    inputs = [None, *(layer.shape for layer in network.layers[:-1])]
    layers = tuple(
        replace(_layer_report(row, layer, shape, s, ops), peak=peaks.get(id(layer)))
        for row, layer, shape, s, ops in zip(rows, network.layers, inputs, layer_spikes, synops, strict=True)
    )
    return NetworkReport(
        net=info.path,
        dataset=info.dataset,
        time_steps=info.encoding.time_steps,
        samples=count,
        accuracy=float((predictions == labels).mean()),
        layers=layers,
        example_output=example_output,
        example_label=int(labels[0]),
        example_prediction=int(predictions[0]),
    )


def _summaries(network: NetxNetwork, trained_bits: list[int | None]) -> list[LayerSummary]:
    """The exporter's rows, read back from the file: bits are the trained ones if known, else Loihi's."""
    bits = [None, *trained_bits]  # per file layer (the input layer first)
    rows = []
    for i, layer in enumerate(network.layers):
        kind, shape = KINDS[type(layer)], squeeze_shape(layer.shape)
        if isinstance(layer, DenseLayer | ConvLayer):
            loihi = signed_weight_bits(layer.weight)
            trained = bits[i] if i < len(bits) else None
            row = LayerSummary(i, kind, shape, layer.weight.size, trained or loihi, loihi, layer.neuron.vth)
        else:
            row = LayerSummary(i, kind, shape)
        rows.append(row)
    return rows


def _activity(
    network: NetxNetwork, batches: Iterable[np.ndarray]
) -> tuple[int, list[float | None], list[float], np.ndarray, np.ndarray, list[StatePeak]]:
    """Samples run; per layer, spikes and SynOps per sample; predictions; sample 0's output spikes (classes x T);
    per neuron layer, the largest current and voltage reached (:func:`~lava_qpsnn.export.limits.measured_peaks`)."""
    count, spikes, synops, predictions, example = 0, [0] * len(network.layers), [0] * len(network.layers), [], None
    peaks = [StatePeak(0, 0) for _ in network.neuron_layers]
    for batch in batches:
        peaks = [
            StatePeak(max(a.current, b.current), max(a.voltage, b.voltage))
            for a, b in zip(peaks, measured_peaks(network, batch), strict=True)
        ]
        traces = iter(simulate(network, batch, layers=True, batch_size=len(batch)))
        n = len(batch)
        current = (np.asarray(batch) != 0).reshape(n, *network.input_shape, -1)
        for i, layer in enumerate(network.layers):
            if isinstance(layer, DenseLayer | ConvLayer):
                synops[i] += _synops(layer, current)
            if getattr(layer, "neuron", None) is not None:
                current = next(traces)
            elif isinstance(layer, FlattenLayer):
                current = current.reshape(n, -1, current.shape[-1])
            spikes[i] += int(np.count_nonzero(current))
        predictions.append(classify(current))
        example = current[0] if example is None else example
        count += n
    flat = [isinstance(layer, FlattenLayer) for layer in network.layers]
    per_sample = [None if f else s / count for f, s in zip(flat, spikes, strict=True)]
    return count, per_sample, [s / count for s in synops], np.concatenate(predictions), example, peaks


def _synops(layer: DenseLayer | ConvLayer, spikes: np.ndarray) -> int:
    """SynOps of binary ``spikes`` (``N x input shape x T``) into ``layer``, summed over samples and steps."""
    if isinstance(layer, DenseLayer):
        return int(np.count_nonzero(spikes)) * layer.shape[0]
    frames = torch.from_numpy(np.asarray(spikes, dtype=np.float32)).movedim(-1, 1).flatten(0, 1)
    ones = torch.ones(layer.weight.shape, dtype=torch.float32)
    reached = F.conv2d(  # each value counts at most C_in / groups * kH * kW inputs: exact in float32
        frames, ones, stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups
    )
    return int(reached.sum(dtype=torch.float64))


def _layer_report(
    row: LayerSummary, layer: Layer, input_shape: tuple[int, ...] | None, spikes: float | None, synops: float
) -> LayerReport:
    if not isinstance(layer, DenseLayer | ConvLayer):  # an input layer's neurons exist only if the file gives it some
        neurons = math.prod(layer.shape) if getattr(layer, "neuron", None) is not None else 0
        return LayerReport(row, neurons=neurons, spikes_per_sample=spikes)
    neurons = math.prod(layer.shape)
    cores = layer_cores(
        neurons=neurons, weight_bytes=row.params * row.loihi_bits / 8, input_axons=math.prod(input_shape)
    )
    all_once = np.ones((1, *input_shape, 1), dtype=bool)  # every input spikes once: one SynOp per synapse
    return LayerReport(row, neurons, _synops(layer, all_once), spikes, synops, cores)


def report_table(report: NetworkReport) -> tuple[list[str], list[list[object]]]:
    """Headers and rows (with a total line): the exporter's table plus compression, activity and core columns."""
    before = " before pruning" if report.pruned else ""
    headers = [
        *SUMMARY_HEADERS,
        f"x float32{before}",
        "neurons",
        "synapses",
        "spikes",
        "SynOps",
        "cores (limit)",
        "max |u|",
        "max |v|",
    ]
    extra = [_extra_columns(layer) for layer in report.layers]
    extra.append(
        [
            f"{report.compression:.1f}",
            report.neurons,
            report.synapses,
            f"{report.spikes_per_sample:.1f}",
            f"{report.synops_per_sample:.1f}",
            report.cores,
            "",
            "",
        ]
    )
    rows = [[*base, *more] for base, more in zip(summary_rows([r.summary for r in report.layers]), extra, strict=True)]
    return headers, rows


def format_report(report: NetworkReport) -> str:
    """The report as terminal text: :func:`report_table`, then totals, ESTIMATES and the figures they use."""
    before = " before pruning" if report.pruned else ""
    energy = report.energy
    lines = [
        format_table(*report_table(report)),
        f"spikes and SynOps per sample: mean over the first {report.samples} test samples of {report.dataset} "
        f"(T = {report.time_steps}; accuracy on them {100 * report.accuracy:.2f}%). SynOps: synapses driven by "
        "input spikes, every stored synapse counted (zero weights too); spikes: each layer's output spikes",
        f"max |u|, max |v|: the largest current and voltage reached on them (% of Lava's 24-bit limit 2^23 = "
        f"{STATE_LIMIT:,}; Lava is exact below it)",
        f"packed weights {report.packed_bytes / 1024:.2f} KB: {report.compression:.1f}x smaller than float32{before} "
        f"({report.float32_bytes_before / 1024:.2f} KB)"
        + (f", {report.float32_bytes / report.packed_bytes:.1f}x than float32 after pruning" if report.pruned else ""),
        f"Loihi 2 ESTIMATE: {report.cores} neuro cores, {report.chips} chip(s)",
        f"energy ESTIMATE per inference: {energy.joules * 1e9:.2f} nJ = SynOps {energy.synop_joules * 1e9:.2f} nJ "
        f"+ neuron updates {energy.neuron_joules * 1e9:.2f} nJ + spikes {energy.spike_joules * 1e9:.2f} nJ",
        f"{ESTIMATE_NOTE}. Figures used:",
        format_table(
            ["figure", "value", "source", "assumption"],
            [[c.name, f"{c.value:,} {c.unit}", c.source, c.assumption or "-"] for c in LIMITS + ENERGIES],
        ),
        *(f"[{key}] {reference}" for key, reference in SOURCES.items()),
    ]
    return "\n".join(lines)


def _extra_columns(layer: LayerReport) -> list[object]:
    compression = "-" if layer.compression is None else f"{layer.compression:.1f}"
    spikes = "-" if layer.spikes_per_sample is None else f"{layer.spikes_per_sample:.1f}"
    synops = f"{layer.synops_per_sample:.1f}" if layer.cores else "-"
    cores = f"{layer.cores.cores} ({layer.cores.limited_by})" if layer.cores else "-"
    states = [_of_limit(value) for value in ((layer.peak.current, layer.peak.voltage) if layer.peak else (None, None))]
    return [compression, layer.neurons or "-", layer.synapses or "-", spikes, synops, cores, *states]


def _of_limit(value: int | None) -> str:
    return "-" if value is None else f"{value} ({100 * value / STATE_LIMIT:.1f}%)"
