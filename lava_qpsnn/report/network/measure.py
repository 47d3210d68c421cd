"""Measuring an exported network: its layers read back, and its activity on test samples in the simulator."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import torch
from torch.nn import functional as F

from ...data import load_dataset, spike_batches, stream_test_split
from ...errors import ConfigError
from ...export.limits import StatePeak, measured_peaks
from ...export.summary import LayerSummary, signed_weight_bits, with_unpruned_sizes
from ...netx import ConvLayer, DenseLayer, FlattenLayer, InputLayer, Layer, NetxNetwork
from ...netx.metadata import check_exported_from, read_net_info, squeeze_shape
from ...sim import default_batch_size, simulate
from ...training.checkpoint import Checkpoint
from ...training.loop import classify
from ...training.models import weight_blocks
from ...training.quantize import synapse_bits
from ..loihi2 import layer_cores
from .result import LayerReport, NetworkReport

__all__ = ["report_network"]

KINDS = {InputLayer: "input", DenseLayer: "dense", ConvLayer: "conv", FlattenLayer: "flatten"}


def report_network(
    net_path: str | os.PathLike,
    *,
    checkpoint: Checkpoint | None = None,
    samples: int | None = 32,
    batch_size: int | None = None,
) -> NetworkReport:
    """Report on ``net_path``, measuring activity on its data set's first ``samples`` test samples (None: all).

    Only those samples are encoded, ``batch_size`` at a time (default: the simulator's
    :func:`~lava_qpsnn.sim.default_batch_size`); the figures do not depend on it.

    With ``checkpoint`` (the one the file was exported from), bits are the trained grid's and
    sizes are also given before pruning; a checkpoint of another data set, encoding or shape
    is a :class:`~lava_qpsnn.errors.ConfigError`.
    """
    if samples is not None and samples < 1:
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
        encoding=info.encoding,
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
