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
- the input is binary spikes, or graded payloads if our metadata says the network is
  direct-encoded (:attr:`NetxNetwork.input_bits`; netx's ``input_message_bits``);
- neurons (CUBA or LOIHI) become Lava's LIF: ``vth = vThMant``, ``du = iDecay - 1``,
  ``dv = vDecay``, bias mantissa ``bias`` with exponent 6; a dense layer without a
  ``neuron`` group gets netx's non-leaky integrator that never spikes.

This is the one validated reading of a ``.net``: every HDF5 access is guarded and every
value is checked once against the table :data:`~lava_qpsnn.netx.groups.RULES` (type, finiteness, shape, Lava's
ranges), conv geometry and the layer chain are checked. Values netx and Lava transform
(clipping, truncation) are accepted and transformed as they do; anything netx would
reject, crash on, silently skip or turn into nonsense raises :class:`NetxFileError` with
one line naming the file, the ``/layer/i/...`` entry, what was found and what was expected.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import NetxFileError
from ..loihi import DECAY_UNITY, MAX_DELAY, VTH_MAX, WEIGHT_MAX, WEIGHT_MIN
from .document import read_document
from .groups import CONV_WEIGHT, Group, layer_groups, open_netx
from .layers import ConvLayer, DenseLayer, FlattenLayer, InputLayer, Layer, NetxNetwork, Neuron

__all__ = ["read_netx", "lava_dense_weights"]

SUPPORTED_LAYERS = ("input", "dense", "conv", "flatten")
SUPPORTED_NEURONS = ("CUBA", "LOIHI")
NEURON_PARAMS = ("iDecay", "vDecay", "vThMant")
# netx's neuron for a dense layer without a 'neuron' group ('vThMant': 1 << 18 - 1 == 1 << 17, one past VTH_MAX)
NO_NEURON = {"iDecay": 0, "vDecay": DECAY_UNITY, "vThMant": VTH_MAX + 1}


def read_netx(path: str | os.PathLike, *, num_layers: int | None = None) -> NetxNetwork:
    """Read and check a ``.net`` file; ``num_layers`` reads only the first layer groups, like netx's argument."""
    path = Path(path)
    with open_netx(path) as handle:
        document = read_document(handle, path)
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
    input_bits = 0 if document is None else document["encoding"].input_message_bits
    return NetxNetwork(path.name, tuple(layers), input_bits)


def _read_layer(g: Group, previous: list[Layer]) -> Layer:
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


def _neuron(g: Group, shape: tuple[int, ...], *, with_bias: bool) -> Neuron:
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


def _bias(g: Group, shape: tuple[int, ...]) -> np.ndarray:
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


def _dense(g: Group, fan_in: int | None) -> DenseLayer:
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
    if high > WEIGHT_MAX and low < 0:  # netx's two clipping tests, in netx's order
        weight = np.clip(weight, WEIGHT_MIN, WEIGHT_MAX)
        high = int(weight.max())
    if low < WEIGHT_MIN and high > 0:
        weight = np.clip(weight, WEIGHT_MIN, WEIGHT_MAX)
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


def _delay(g: Group, weight_shape: tuple[int, int]) -> np.ndarray | None:
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


def _conv(g: Group, input_shape: tuple[int, ...]) -> ConvLayer:
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
