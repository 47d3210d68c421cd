"""Reading a NetX HDF5 (``.net``) file into the integers Lava actually computes with.

Every transformation netx (``lava/lib/dl/netx/hdf5.py``) and Lava's fixed-point
ProcessModels apply is done here, once, so that the simulator only sums and shifts:

- every ``weight``/``bias`` is read with ``.astype(int)`` (floats truncate toward zero);
- dense weights go through netx's ``optimize_weight_bits`` (mixed-sign weights clipped to
  [-256, 254], shifted left by ``scale_bits``, ``weight_exp = -scale_bits``) and then
  through Lava's first-step ``clip_weights``/``truncate_weights`` with the sign mode Lava
  itself detects (which differs from netx's for matrices with no positive entry);
- conv weights are raw integers: no clipping, no exponent (Lava's fixed-point conv
  ignores ``weight_exp``);
- neurons (CUBA or LOIHI) become Lava's LIF: ``vth = vThMant``, ``du = iDecay - 1``,
  ``dv = vDecay``, bias mantissa ``bias`` with exponent 6; a dense layer without a
  ``neuron`` group gets netx's non-leaky integrator that never spikes.

Anything netx would reject, crash on or silently skip raises :class:`NetxFileError`
with one line naming the file, the layer and the problem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import NetxFileError
from ..netx_file import open_netx

__all__ = [
    "lava_dense_weights",
    "Neuron",
    "InputLayer",
    "DenseLayer",
    "ConvLayer",
    "FlattenLayer",
    "Layer",
    "NetxNetwork",
    "read_netx",
]

SUPPORTED_LAYERS = ("input", "dense", "conv", "flatten")
SUPPORTED_NEURONS = ("CUBA", "LOIHI")
MAX_DELAY = 62  # netx clips axonal delays to [0, 62] when any exceeds 62
# netx's neuron for a dense layer without a 'neuron' group ('vThMant': 1 << 18 - 1 == 1 << 17)
NO_NEURON = {"iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}


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
    """A ``.net`` file's layers in file order; shapes are C-order (``(F,)`` or ``(C, H, W)``)."""

    name: str
    layers: tuple[Layer, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].shape

    @property
    def neuron_layers(self) -> tuple[Layer, ...]:
        """The layers netx turns into processes, in the order of ``netx.hdf5.Network.layers``."""
        return tuple(layer for layer in self.layers if getattr(layer, "neuron", None) is not None)

    @property
    def latencies(self) -> tuple[int, ...]:
        """Per neuron layer, the steps a sample takes to reach it: one per dense or conv synapse on the way."""
        out, latency = [], 0
        for layer in self.layers:
            latency += isinstance(layer, DenseLayer | ConvLayer)
            if getattr(layer, "neuron", None) is not None:
                out.append(latency)
        return tuple(out)


class _Group:
    """An HDF5 layer group that names itself in errors."""

    def __init__(self, group: h5py.Group, file_name: str) -> None:
        self.group = group
        self.file_name = file_name

    def fail(self, problem: str) -> NetxFileError:
        return NetxFileError(f"{self.file_name}: {self.group.name} {problem}")

    def has(self, key: str) -> bool:
        return key in self.group

    def raw(self, key: str) -> np.ndarray:
        if key not in self.group:
            raise self.fail(f"has no '{key}' entry, which netx requires: re-export the layer")
        return self.group[key][()]

    def ints(self, key: str) -> np.ndarray:
        """netx's ``.astype(int)`` read (floats truncate toward zero)."""
        return np.asarray(self.raw(key)).astype(np.int64)

    def text(self, key: str) -> str:
        value = self.raw(key)
        value = value[0] if np.ndim(value) else value
        return value.decode("ascii") if isinstance(value, bytes) else str(value)

    def pair(self, key: str) -> tuple[int, int]:
        """A conv argument, scalar or ``(y, x)``."""
        value = np.asarray(self.raw(key)).astype(np.int64).ravel()
        if value.size not in (1, 2):
            raise self.fail(f"has {key} {value.tolist()}: expected one or two integers")
        return (int(value[0]), int(value[-1]))


def read_netx(path: str | os.PathLike, *, num_layers: int | None = None) -> NetxNetwork:
    """Read a ``.net`` file; ``num_layers`` reads only the first layer groups, like netx's argument."""
    path = Path(path)
    with open_netx(path) as handle:
        names = sorted(handle["layer"].keys(), key=lambda k: (len(k), k))  # numeric order for decimal names
        if names != [str(i) for i in range(len(names))]:
            raise NetxFileError(
                f"{path.name}: layer groups must be /layer/0../layer/N-1 without gaps, found {', '.join(names)}"
            )
        count = len(names) if num_layers is None else min(num_layers, len(names))
        layers: list[Layer] = []
        for i in range(count):
            layer = _read_layer(_Group(handle["layer"][str(i)], path.name), layers)
            if not layers and not isinstance(layer, InputLayer):  # netx infers the input from the weights
                layers.append(InputLayer((layer.weight.shape[1],)))
            layers.append(layer)
    return NetxNetwork(path.name, tuple(layers))


def _read_layer(g: _Group, previous: list[Layer]) -> Layer:
    kind = g.text("type")
    if kind not in SUPPORTED_LAYERS:
        raise g.fail(
            f"has type {kind!r}, which the simulator does not support (supported: {', '.join(SUPPORTED_LAYERS)})"
        )
    if kind == "input" and previous:
        raise g.fail("is a second 'input' layer: only /layer/0 may be one")
    if not previous and kind != "input":
        if kind != "dense":
            raise g.fail(f"is {kind!r}: /layer/0 must be an 'input' layer (or a dense layer, whose input netx infers)")
        return _dense(g, None)
    if kind == "input":
        shape = tuple(int(s) for s in np.atleast_1d(g.raw("shape")))
        return InputLayer(shape, _neuron(g, shape, with_bias=False) if g.has("neuron") else None)
    before = previous[-1]
    if isinstance(before, FlattenLayer) and kind != "dense":
        raise g.fail(f"is {kind!r} after a flatten layer: netx only connects a flatten to a dense layer")
    if kind == "flatten":
        return FlattenLayer((math.prod(before.shape),))
    if kind == "dense":
        if len(before.shape) != 1 and not isinstance(before, InputLayer):
            raise g.fail(f"is dense after a {before.shape} layer: insert a 'flatten' layer before it")
        return _dense(g, math.prod(before.shape))
    if len(before.shape) != 3:
        raise g.fail(f"is conv after a layer of shape {before.shape}: a conv input must be C, H, W")
    return _conv(g, before.shape)


def _neuron(g: _Group, shape: tuple[int, ...], *, with_bias: bool) -> Neuron:
    """netx's ``get_neuron_params`` for CUBA/LOIHI; a dense layer without a neuron gets netx's integrator."""
    if g.has("neuron"):
        neuron = _Group(g.group["neuron"], g.file_name)
        kind = neuron.text("type")
        if kind not in SUPPORTED_NEURONS:
            raise neuron.fail(
                f"has neuron type {kind!r}, which the simulator does not support "
                f"(supported: {', '.join(SUPPORTED_NEURONS)})"
            )
        if neuron.has("messageBits"):
            raise neuron.fail("has 'messageBits', which breaks netx's build: remove it (spikes are binary)")
        config = {key: int(np.asarray(neuron.raw(key)).ravel()[0]) for key in NO_NEURON}
    else:
        config = NO_NEURON
    for key in ("iDecay", "vDecay"):
        if not 0 <= config[key] <= 4096:
            raise g.fail(f"has neuron {key}={config[key]}: Lava's decays are 12-bit, expected 0..4096")
    bias = _bias(g, shape) if with_bias and g.has("bias") else np.zeros(1, dtype=np.int64)
    return Neuron(vth=config["vThMant"], du=config["iDecay"] - 1, dv=config["vDecay"], bias=bias)


def _bias(g: _Group, shape: tuple[int, ...]) -> np.ndarray:
    """netx's bias broadcasting (``AbstractBlock._neuron``), returned in C-order.

    Lava stores the mantissa as int16 (``bias_mant``), so it wraps to 16 bits.
    """
    bias = (g.ints("bias") + (1 << 15)) % (1 << 16) - (1 << 15)
    if len(shape) == 1 and bias.size in (1, shape[0]):
        return bias.reshape(-1)
    if len(shape) == 3 and bias.shape == (shape[0],):  # channel-wise
        return bias.reshape(-1, 1, 1)
    if len(shape) == 3 and bias.shape == shape[::-1]:  # neuron-wise, Lava's W, H, C
        return bias.transpose(2, 1, 0)
    raise g.fail(f"has bias of shape {bias.shape}, which netx cannot broadcast to neurons of shape {shape}")


def _dense(g: _Group, fan_in: int | None) -> DenseLayer:
    size = math.prod(int(s) for s in np.atleast_1d(g.raw("shape")))
    weight = g.ints("weight")
    if weight.ndim == 1 and weight.size % size == 0:
        weight = weight.reshape(size, -1)
    fan_in = weight.shape[-1] if fan_in is None else fan_in
    if weight.shape != (size, fan_in):
        raise g.fail(f"has weight of shape {weight.shape}, expected {(size, fan_in)} (out, in) for its shape and input")
    lava_weight, weight_exp = lava_dense_weights(weight, g.fail)
    return DenseLayer((size,), lava_weight, weight_exp, _neuron(g, (size,), with_bias=True), _delay(g, weight.shape))


def lava_dense_weights(weight: np.ndarray, fail: Callable[[str], Exception] = NetxFileError) -> tuple[np.ndarray, int]:
    """Integer weights -> (weights Lava's Dense sums, weight_exp): netx's optimize_weight_bits, Lava's clip/truncate.

    ``fail`` makes the error for weights netx or Lava cannot represent (message in, exception out).
    """
    weight = np.asarray(weight, dtype=np.int64)
    high, low = int(weight.max()), int(weight.min())
    if high > 254 and low < 0:  # netx's two clipping tests, in netx's order
        weight = np.clip(weight, -256, 254)
        high = int(weight.max())
    if low < -256 and high > 0:
        weight = np.clip(weight, -256, 254)
        low = int(weight.min())
    if high == low == 0:
        raise fail("has all-zero weights, which netx cannot build (OverflowError): remove the layer's inputs")
    if (high > 255 and low >= 0) or low < -256:
        raise fail(f"has same-sign weights in [{low}, {high}], beyond Loihi's 8-bit synapse: rescale them")
    signed = int(high >= 0 and low < 0)  # netx: MIXED unless max < 0 or min >= 0
    if signed:
        scale = min(math.inf if high == 0 else 127 / high, -128 / low)
    else:
        scale = 255 / high if low >= 0 else -256 / low
    scale_bits = int(np.floor(np.log2(scale))) + signed
    shared = next((n for n in range(8, 0, -1) if not np.any(weight % (1 << n))), 0)
    num_weight_bits = 8 - scale_bits - (shared - signed)
    weight = weight << scale_bits
    # Lava's Dense (fixed_pt), first step: its own sign mode, clip to 8 bits, drop low bits
    lava_mixed = int(weight.min() < 0 < weight.max())
    negate = -1 if weight.min() < 0 and not lava_mixed else 1
    truncate = 8 - num_weight_bits + lava_mixed
    weight = np.clip(negate * weight, -256 * lava_mixed, 255)
    if truncate < 0:  # odd weights, no positive one: numpy shifts by -1 give 0, so Lava zeroes every weight
        return np.zeros_like(weight), -scale_bits
    return negate * ((weight >> truncate) << truncate), -scale_bits


def _delay(g: _Group, weight_shape: tuple[int, int]) -> np.ndarray | None:
    """netx's delay handling: clip to [0, 62] when any exceeds 62; per output, per input, scalar or full matrix."""
    if not g.has("delay"):
        return None
    delay = np.asarray(g.raw("delay"))
    if delay.max() > MAX_DELAY:
        delay = np.clip(delay, 0, MAX_DELAY)
    delay = delay.astype(np.int64)
    if delay.min() < 0:
        raise g.fail(f"has negative delay {delay.min()}: Lava drops such synapses silently; use delays >= 0")
    out, fan_in = weight_shape
    if delay.ndim == 0:
        return np.full(weight_shape, int(delay))
    if delay.ndim == 1 and delay.size == out:  # axonal, netx checks this first
        return np.repeat(delay.reshape(-1, 1), fan_in, axis=1)
    if delay.ndim == 1 and delay.size == fan_in:
        return np.repeat(delay.reshape(1, -1), out, axis=0)
    if delay.shape == weight_shape:
        return delay
    raise g.fail(f"has delay of shape {delay.shape}, incompatible with weight of shape {weight_shape}")


def _conv(g: _Group, input_shape: tuple[int, ...]) -> ConvLayer:
    if g.has("delay"):
        raise g.fail("has conv delays, which netx ignores silently: remove them")
    shape = tuple(int(s) for s in np.atleast_1d(g.raw("shape")))
    weight = g.ints("weight")
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    groups = int(np.asarray(g.raw("groups")).ravel()[0])
    stride, padding, dilation = g.pair("stride"), g.pair("padding"), g.pair("dilation")
    if weight.ndim != 4 or groups < 1 or input_shape[0] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise g.fail(
            f"has weight of shape {weight.shape} with groups={groups}: "
            f"expected (out, {input_shape[0]} / groups, kH, kW)"
        )
    out_hw = tuple(
        (size + 2 * pad - dil * (kernel - 1) - 1) // step + 1
        for size, pad, dil, kernel, step in zip(
            input_shape[1:], padding, dilation, weight.shape[2:], stride, strict=True
        )
    )
    if len(shape) != 3 or shape != (weight.shape[0], *out_hw):
        raise g.fail(f"has shape {shape}, but its weight and input {input_shape} give {(weight.shape[0], *out_hw)}")
    return ConvLayer(shape, weight, stride, padding, dilation, groups, _neuron(g, shape, with_bias=True))
