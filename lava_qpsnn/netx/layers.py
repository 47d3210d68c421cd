"""A ``.net`` network as the integers Lava computes with: the layer types the reader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Neuron", "InputLayer", "DenseLayer", "ConvLayer", "FlattenLayer", "Layer", "NetxNetwork"]


@dataclass(frozen=True, eq=False)
class Neuron:
    """Lava LIF parameters (fixed point). ``bias`` is the mantissa, broadcastable to the layer's C-order shape."""

    vth: int
    du: int
    dv: int
    bias: np.ndarray


@dataclass(frozen=True, eq=False)
class InputLayer:
    """``/layer/0``. With a neuron, the simulator's input drives that neuron's ``a_in`` directly."""

    shape: tuple[int, ...]
    neuron: Neuron | None = None


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """Dense synapse (``weight`` as Lava uses it after clipping and truncation) + LIF neuron.

    ``delay`` is None or an ``(out, in)`` integer array of axonal delays in steps.
    """

    shape: tuple[int]
    weight: np.ndarray
    weight_exp: int
    neuron: Neuron
    delay: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ConvLayer:
    """2D convolution (torch's ``(out, in / groups, kH, kW)`` correlation weights) + LIF neuron; ``C, H, W`` shape."""

    shape: tuple[int, int, int]
    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    neuron: Neuron


@dataclass(frozen=True, eq=False)
class FlattenLayer:
    """C-order flatten of ``C, H, W`` (netx's ``transpose([2, 1, 0]).flatten()`` of Lava's ``W, H, C``)."""

    shape: tuple[int]


Layer = InputLayer | DenseLayer | ConvLayer | FlattenLayer


@dataclass(frozen=True, eq=False)
class NetxNetwork:
    """A ``.net`` file's layers in file order; shapes are C-order (``(F,)`` or ``(C, H, W)``).

    ``input_bits``: the payload bits of graded input spikes into the first synapse (a direct-encoded
    network, netx's ``input_message_bits``); 0 for binary spikes.
    """

    name: str
    layers: tuple[Layer, ...]
    input_bits: int = 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].shape

    @property
    def neuron_layers(self) -> tuple[Layer, ...]:
        """The layers netx turns into processes, in the order of ``netx.hdf5.Network.layers``."""
        return tuple(layer for layer in self.layers if getattr(layer, "neuron", None) is not None)

    @property
    def input_latency(self) -> int:
        """The earliest window step at which a sample's input can reach the output layer: one step per dense or conv
        synapse, plus each delayed layer's smallest delay among its non-zero synapses (no path is quicker)."""
        steps = 0
        for layer in self.layers:
            if isinstance(layer, DenseLayer | ConvLayer):
                delay = getattr(layer, "delay", None)
                used = np.zeros(0) if delay is None else delay[layer.weight != 0]
                steps += 1 + (int(used.min()) if used.size else 0)
        return steps

    @property
    def latencies(self) -> tuple[int, ...]:
        """Per neuron layer, the steps a sample takes to reach it: one per dense or conv synapse on the way."""
        out, latency = [], 0
        for layer in self.layers:
            latency += isinstance(layer, DenseLayer | ConvLayer)
            if getattr(layer, "neuron", None) is not None:
                out.append(latency)
        return tuple(out)
