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

This is the one validated reading of a ``.net``: every HDF5 access is guarded and every
value is checked once against the table ``RULES`` (type, finiteness, shape, Lava's
ranges), conv geometry and the layer chain are checked. Values netx and Lava transform
(clipping, truncation) are accepted and transformed as they do; anything netx would
reject, crash on, silently skip or turn into nonsense raises :class:`NetxFileError` with
one line naming the file, the ``/layer/i/...`` entry, what was found and what was expected.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import NetxFileError

__all__ = [
    "lava_dense_weights",
    "Neuron",
    "InputLayer",
    "DenseLayer",
    "ConvLayer",
    "FlattenLayer",
    "Layer",
    "NetxNetwork",
    "open_netx",
    "read_netx",
    "RULES",
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


@dataclass(frozen=True)
class _Rule:
    """What a stored number must be: an integer in ``low..high`` (``why`` names the limit).

    ``truncate``: netx reads the entry with ``.astype(int)``, so floats are truncated toward
    zero as netx does; otherwise (entries netx passes on unconverted) integers are required.
    """

    low: int
    high: int
    why: str
    truncate: bool = False


_INT32 = (1 << 31) - 1
# Every number read from a layer, checked in one place. Values netx and Lava transform
# (dense weights clipped to [-256, 254], delays clipped to 62, floats truncated) are
# accepted within int32 and transformed as they do; anything else outside is refused.
RULES = {
    "shape": _Rule(1, _INT32, "layer sizes"),
    "stride": _Rule(1, _INT32, "conv strides"),
    "dilation": _Rule(1, _INT32, "conv dilations"),
    "padding": _Rule(0, _INT32, "conv padding"),
    "groups": _Rule(1, _INT32, "conv groups"),
    "vThMant": _Rule(0, (1 << 17) - 1, "Lava's 17-bit threshold"),
    "iDecay": _Rule(0, 4096, "Lava's 12-bit decays"),
    "vDecay": _Rule(0, 4096, "Lava's 12-bit decays"),
    "bias": _Rule(-(1 << 12), (1 << 12) - 1, "Lava's 13-bit bias mantissa", truncate=True),
    "delay": _Rule(0, _INT32, "delays; Lava drops synapses with negative ones silently", truncate=True),
    "weight": _Rule(-_INT32, _INT32, "integer weights (netx clips mixed-sign ones to [-256, 254])", truncate=True),
}
# conv weights go to Lava unclipped; one beyond Lava's 24-bit conv output cannot act as stored
CONV_WEIGHT = _Rule(-(1 << 24) + 1, (1 << 24) - 1, "Lava's 24-bit conv output", truncate=True)
NEURON_PARAMS = ("iDecay", "vDecay", "vThMant")
# what h5py raises for a damaged file once it is open
_H5_ERRORS = (OSError, RuntimeError, KeyError, TypeError, ValueError, AttributeError, SystemError, OverflowError)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:100] or type(exc).__name__).rstrip(".")


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _span(rule: _Rule) -> str:
    if rule.high < _INT32:
        return f"{rule.low}..{rule.high}"
    return f">= {rule.low}" if rule.low > -_INT32 else f"within +-{_INT32}"


class _Group:
    """An HDF5 group of a ``.net`` whose every read is guarded and checked, naming itself in errors."""

    def __init__(self, group: h5py.Group, file_name: str, name: str) -> None:
        self.group, self.file_name, self.name = group, file_name, name

    def fail(self, problem: str) -> NetxFileError:
        return NetxFileError(f"{self.file_name}: {self.name} {problem}")

    def _entry(self, key: str) -> h5py.Group | h5py.Dataset | None:
        try:
            return self.group[key] if key in self.group else None
        except _H5_ERRORS as exc:
            raise self.fail(
                f"has an unreadable '{key}' entry ({_reason(exc)}): re-export or re-copy the file"
            ) from None

    def has(self, key: str) -> bool:
        return self._entry(key) is not None

    def keys(self) -> list[str]:
        try:
            names = list(self.group.keys())
        except _H5_ERRORS as exc:
            raise self.fail(f"cannot be listed ({_reason(exc)}): re-export or re-copy the file") from None
        for name in names:
            if not isinstance(name, str):  # h5py gives names that are not UTF-8 as bytes
                raise self.fail(f"has an entry named {name!r}, not text: re-export or re-copy the file")
        return names

    def child(self, key: str) -> _Group:
        entry = self._entry(key)
        if entry is None:
            raise self.fail(f"has no '{key}' group, which netx requires: re-export the network")
        if not isinstance(entry, h5py.Group):
            raise self.fail(f"has a dataset '{key}' where netx expects a group: re-export the network")
        return _Group(entry, self.file_name, f"{self.name.rstrip('/')}/{key}")

    def raw(self, key: str) -> np.ndarray:
        entry = self._entry(key)
        if entry is None:
            raise self.fail(f"has no '{key}' entry, which netx requires: re-export the layer")
        if not isinstance(entry, h5py.Dataset):
            raise self.fail(f"has a group '{key}' where netx expects a dataset: re-export the layer")
        try:
            return np.asarray(entry[()])
        except _H5_ERRORS as exc:
            raise self.fail(f"has an unreadable '{key}' ({_reason(exc)}): re-export or re-copy the file") from None

    def text(self, key: str) -> str:
        """A name such as ``type``: one ASCII string, as netx's ``decode('ascii')`` reads it."""
        value = self.raw(key)
        item = value.reshape(-1)[0] if value.size == 1 and value.ndim <= 1 else None
        if isinstance(item, bytes):
            item = item.decode("ascii", errors="replace")
        if not isinstance(item, str):
            raise self.fail(f"has {key} of type {value.dtype} and shape {value.shape}: expected one string")
        if not item or not item.isascii() or not item.isprintable():
            raise self.fail(f"has {key} {item!r}: expected a non-empty ASCII name")
        return item

    def ints(self, key: str, rule: _Rule | None = None) -> np.ndarray:
        """The entry as int64, checked against ``rule`` (default ``RULES[key]``)."""
        rule = rule or RULES[key]
        value = self.raw(key)
        stored = value.dtype
        if stored.kind not in "iuf":
            raise self.fail(f"has {key} of type {stored}: expected {rule.why} as numbers")
        if value.size == 0:
            raise self.fail(f"has an empty {key}: expected {rule.why}")
        if value.dtype.kind == "f":
            if not np.isfinite(value).all():
                raise self.fail(f"has {key} with NaN or infinite values: expected {rule.why} as finite numbers")
            whole = np.trunc(value)
            if not rule.truncate and (whole != value).any():
                raise self.fail(f"has {key}={_show(value[whole != value][0])}: expected integers")
            value = whole
        if not rule.truncate and stored.kind != "i":  # Lava's shifts and slices fail on floats and uint64
            raise self.fail(f"has {key} of type {stored}, netx passes it to Lava as it is: store integers")
        low, high = value.min(), value.max()
        if low < rule.low or high > rule.high:
            found = low if low < rule.low else high
            raise self.fail(f"has {key}={_show(found)}: expected {_span(rule)} ({rule.why})")
        return value.astype(np.int64)

    def scalar(self, key: str, *, bare: bool = False) -> int:
        """One number; ``bare``: stored as a scalar, not a list of one (netx passes it to Lava as it is)."""
        value = self.ints(key)
        if value.size != 1 or value.ndim > (0 if bare else 1):
            raise self.fail(f"has {key} of shape {value.shape}: expected one number{' (a scalar)' if bare else ''}")
        return int(value.reshape(-1)[0])

    def pair(self, key: str) -> tuple[int, int]:
        """A conv argument, a scalar or ``(y, x)`` (netx reverses a list and indexes two entries)."""
        value = self.ints(key)
        if value.shape not in ((), (2,)):
            raise self.fail(f"has {key} {value.tolist()}: expected one integer (a scalar) or two")
        value = value.reshape(-1)
        return (int(value[0]), int(value[-1]))

    def shape(self, *, listed: bool = False) -> tuple[int, ...]:
        """``(F,)`` or ``(C, H, W)``; ``listed``: stored as a list, for the layers whose shape netx reverses."""
        value = self.ints("shape")
        if listed and value.ndim != 1:
            raise self.fail(f"has a shape of {value.ndim} dimensions, which netx cannot reverse: store it as a list")
        if value.ndim > 1 or value.size not in (1, 3):
            raise self.fail(f"has shape {value.tolist()}: expected (F,) or (C, H, W)")
        return tuple(int(s) for s in value.reshape(-1))


@contextlib.contextmanager
def open_netx(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a ``.net`` for reading, with one-line errors for a missing, non-HDF5 or non-NetX file."""
    path = Path(path)
    if not path.is_file():
        raise NetxFileError(f"no network file at {path}: export one with 'python -m netx_export model.pt'")
    try:
        if not h5py.is_hdf5(path):
            raise NetxFileError(f"{path} is not an HDF5 file: give a NetX .net file (e.g. written by netx_export)")
        handle = h5py.File(path, "r")
    except _H5_ERRORS as exc:  # e.g. a truncated copy
        reason = str(exc).split(" (")[-1].rstrip(")") if " (" in str(exc) else _reason(exc)
        raise NetxFileError(f"{path} cannot be read as HDF5 ({reason}): re-export or re-copy it") from None
    with handle:
        root = _Group(handle, path.name, "/")
        if not root.has("layer") or not root.child("layer").has("0"):
            raise NetxFileError(f"{path.name} has no /layer/0 group: it is not a NetX network file")
        yield handle


def layer_groups(handle: h5py.File, file_name: str) -> list[_Group]:
    """``/layer/0 .. /layer/N-1`` in order; one-line error for gaps or foreign names."""
    layers = _Group(handle, file_name, "/").child("layer")
    names = sorted(layers.keys(), key=lambda k: (len(k), k))  # numeric order for decimal names
    if names != [str(i) for i in range(len(names))]:
        raise NetxFileError(
            f"{file_name}: layer groups must be /layer/0../layer/N-1 without gaps, found {', '.join(names)}"
        )
    return [layers.child(name) for name in names]


def read_netx(path: str | os.PathLike, *, num_layers: int | None = None) -> NetxNetwork:
    """Read and check a ``.net`` file; ``num_layers`` reads only the first layer groups, like netx's argument."""
    path = Path(path)
    with open_netx(path) as handle:
        groups = layer_groups(handle, path.name)[:num_layers]
        layers: list[Layer] = []
        for g in groups:
            layer = _read_layer(g, layers)
            if not layers and not isinstance(layer, InputLayer):  # netx infers the input from the weights
                layers.append(InputLayer((layer.weight.shape[1],)))
            layers.append(layer)
    if not any(isinstance(layer, DenseLayer | ConvLayer) for layer in layers):
        raise NetxFileError(f"{path.name} has no dense or conv layer: there is no network to run")
    if isinstance(layers[-1], FlattenLayer):
        raise NetxFileError(
            f"{path.name}: {groups[-1].name} is a flatten layer at the end: netx connects it to nothing"
        )
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
    if kind == "conv" and not g.has("neuron"):
        raise g.fail("is a conv layer without a 'neuron' group, which netx cannot build: re-export the layer")
    if kind == "input":
        shape = g.shape(listed=True)
        if not g.has("neuron"):
            return InputLayer(shape)
        for key in ("weight", "bias"):  # netx reads them with int() and then ignores them
            if g.has(key) and g.raw(key).size != 1:
                raise g.fail(f"has an input {key} of shape {g.raw(key).shape}, which netx reads as one number")
        return InputLayer(shape, _neuron(g, shape, with_bias=False))
    before = previous[-1]
    if isinstance(before, FlattenLayer) and kind != "dense":
        raise g.fail(f"is {kind!r} after a flatten layer: netx only connects a flatten to a dense layer")
    if kind == "flatten":
        size = math.prod(before.shape)
        if g.has("shape") and math.prod(g.shape()) != size:
            raise g.fail(f"has shape {list(g.shape())}, but flattens a layer of shape {before.shape} ({size} values)")
        return FlattenLayer((size,))
    if kind == "dense":
        if len(before.shape) != 1:
            raise g.fail(f"is dense after a {before.shape} layer: insert a 'flatten' layer before it")
        return _dense(g, before.shape[0])
    if len(before.shape) != 3:
        raise g.fail(f"is conv after a layer of shape {before.shape}: a conv input must be C, H, W")
    return _conv(g, before.shape)


def _neuron(g: _Group, shape: tuple[int, ...], *, with_bias: bool) -> Neuron:
    """netx's ``get_neuron_params`` for CUBA/LOIHI; a dense layer without a neuron gets netx's integrator."""
    if g.has("neuron"):
        neuron = g.child("neuron")
        kind = neuron.text("type")
        if kind not in SUPPORTED_NEURONS:
            raise neuron.fail(
                f"has neuron type {kind!r}, which the simulator does not support "
                f"(supported: {', '.join(SUPPORTED_NEURONS)})"
            )
        if neuron.has("messageBits"):
            raise neuron.fail("has 'messageBits', which breaks netx's build: remove it (spikes are binary)")
        if neuron.has("gradedSpike") and neuron.raw("gradedSpike").tolist() not in (False, [False]):
            raise neuron.fail("has gradedSpike not False: netx makes every spike binary; export binary spikes")
        config = {key: neuron.scalar(key) for key in NEURON_PARAMS}
    else:
        config = NO_NEURON
    bias = _bias(g, shape) if with_bias and g.has("bias") else np.zeros(1, dtype=np.int64)
    return Neuron(vth=config["vThMant"], du=config["iDecay"] - 1, dv=config["vDecay"], bias=bias)


def _bias(g: _Group, shape: tuple[int, ...]) -> np.ndarray:
    """netx's bias broadcasting (``AbstractBlock._neuron``), returned in C-order."""
    bias = g.ints("bias")
    beyond_leading_ones = bias.shape[next((i for i, n in enumerate(bias.shape) if n != 1), max(bias.ndim - 1, 0)) :]
    if len(shape) == 1 and beyond_leading_ones in ((), (1,), shape):  # what Lava's builder can assign to (F,)
        return bias.reshape(-1)
    if len(shape) == 3 and bias.shape == (shape[0],):  # channel-wise
        return bias.reshape(-1, 1, 1)
    if len(shape) == 3 and bias.shape == shape[::-1]:  # neuron-wise, Lava's W, H, C
        return bias.transpose(2, 1, 0)
    raise g.fail(f"has bias of shape {bias.shape}, which netx cannot broadcast to neurons of shape {shape}")


def _dense(g: _Group, fan_in: int | None) -> DenseLayer:
    size = math.prod(g.shape())
    weight = g.ints("weight")
    if weight.ndim == 1 and weight.size % size == 0:
        weight = weight.reshape(size, -1)
    if weight.ndim != 2 or weight.shape != (size, weight.shape[1] if fan_in is None else fan_in):
        expected = f"({size}, {'inputs' if fan_in is None else fan_in})"
        raise g.fail(f"has weight of shape {weight.shape}, expected {expected} (out, in) for its shape and input")
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
    delay = np.minimum(g.ints("delay"), MAX_DELAY)
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
    shape = g.shape(listed=True)
    weight = g.ints("weight", CONV_WEIGHT)
    if weight.ndim == 5 and weight.shape[-1] == 1:
        weight = weight[..., 0]
    groups = g.scalar("groups", bare=True)
    stride, padding, dilation = g.pair("stride"), g.pair("padding"), g.pair("dilation")
    if weight.ndim != 4 or input_shape[0] != weight.shape[1] * groups or weight.shape[0] % groups:
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
