"""A chain of NIR nodes as lava-qpsnn layers: each synapse fused with the neuron node after it.

- ``Affine``/``Linear`` or ``Conv2d``, then a neuron (``IF``, ``LIF``, ``CubaLIF``): a dense or conv
  layer; the neuron's input gain (:mod:`~lava_qpsnn.interchange.neurons`) folds into the weights
  and the bias. Loihi adds a layer's bias to the voltage each step, where NIR's synapse feeds it
  into the neuron's current: a ``CubaLIF``'s current accumulates it, to ``1 / (current decay)`` times
  one step's input, so the bias is mapped to that steady state (reached at once on Loihi, after
  ``tau_syn`` in the source; the importer says so). Pooling between a ``Conv2d`` and its neuron is
  linear, so it folds into the conv exactly: a larger kernel with stride times the pooling size.
- ``SumPool2d``/``AvgPool2d`` on spikes, then a neuron: a spike-pooling layer (non-overlapping
  windows), which fires on any input spike; a neuron that needs more is mapped with a warning.
- ``Flatten`` of a ``C, H, W`` input: a flatten layer.

What does not map is refused in one line naming the node; what maps inexactly is one
:class:`~lava_qpsnn.errors.NirMappingWarning` line each (a decay rounded to 1/4096 of Loihi, a
subtract reset declared in the node's metadata, pooling that needs several spikes).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, NirFileError, NirMappingWarning
from ..loihi import DECAY_UNITY
from ..training.layer_specs import Conv, Dense, Flatten, LayerSpec, Pool, output_shape
from .neurons import Cuba, cuba_of_node, rounding, voltage_bias
from .reader import NEURONS, POOLS, NirChain, array, uniform

__all__ = ["MappedLayer", "map_chain"]

NEURON_FIELDS = {
    "IF": ("r", "v_threshold"),
    "LIF": ("tau", "r", "v_threshold"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "w_in", "v_threshold"),
}


@dataclass(frozen=True)
class MappedLayer:
    """One layer: its spec (no neuron yet), its neuron, and for conv/dense layers the weights in torch's layout
    and the bias per output channel (None: no bias) as Loihi adds it to the voltage each step, both with the
    neuron's input gain folded in."""

    spec: LayerSpec
    names: tuple[str, ...]
    nodes: tuple[object, ...]
    cuba: Cuba | None = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None


def map_chain(chain: NirChain, dt: float) -> list[MappedLayer]:
    """The layers of ``chain`` (see the module docstring); ``dt``: the time step the continuous parameters use."""
    nodes, layers, shape, i = list(chain.nodes), [], chain.input_shape, 0
    while i < len(nodes):
        name, node = nodes[i]
        kind = type(node).__name__
        if kind in NEURONS:
            raise _fail(chain, name, f"is a {kind} neuron without a synapse or pooling node before it")
        if kind == "Flatten":
            if len(shape) != 3:
                raise _fail(chain, name, f"flattens a {'x'.join(map(str, shape))} input: expected C x H x W")
            layers.append(MappedLayer(Flatten(), (name,), (node,)))
            shape, i = (math.prod(shape),), i + 1
            continue
        group = [(name, node)]
        i += 1
        while i < len(nodes) and type(nodes[i][1]).__name__ in POOLS and kind not in POOLS:
            group.append(nodes[i])
            i += 1
        if i == len(nodes) or type(nodes[i][1]).__name__ not in NEURONS:
            raise _fail(
                chain,
                group[-1][0],
                f"({type(group[-1][1]).__name__}) is not followed by a neuron node "
                f"({', '.join(NEURONS)}): each synapse or pooling maps together with the neuron after it",
            )
        layer = _layer(chain, group, nodes[i], shape, dt, len(layers))
        layers.append(layer)
        shape, i = output_shape(len(layers) - 1, layer.spec, shape), i + 1
    if not layers or not isinstance(layers[-1].spec, Dense):
        raise NirFileError(f"{chain.name}: the graph must end with a dense layer (Affine or Linear, then a neuron)")
    return layers


def _fail(chain: NirChain, name: str, problem: str) -> NirFileError:
    return NirFileError(f"{chain.name}: node {name!r} {problem}")


def _layer(chain: NirChain, group: list, neuron: tuple, shape: tuple, dt: float, index: int) -> MappedLayer:
    (name, node), kind = group[0], type(group[0][1]).__name__
    names, nodes = tuple(n for n, _ in [*group, neuron]), tuple(n for _, n in [*group, neuron])
    if kind in POOLS:
        kernel, scale = _pool(chain, name, node)
        spec = Pool(kernel)
        cuba = _cuba(chain, neuron, _shape(chain, name, index, spec, shape), dt, scale)
        ratio = cuba.gain / cuba.threshold
        if ratio <= 1 or cuba.i_decay != DECAY_UNITY:
            current = " and a current that lasts over steps" if cuba.i_decay != DECAY_UNITY else ""
            warnings.warn(
                f"{chain.name}: pooling {name!r} feeds {neuron[0]!r} with {ratio:.3g} x its threshold per spike"
                f"{current}; lava-qpsnn's spike pooling fires once on any input spike in its window",
                NirMappingWarning,
                stacklevel=4,
            )
        return MappedLayer(spec, names, nodes, cuba)
    weight = array(chain.name, name, getattr(node, "weight", None), "weight")
    bias = None if kind == "Linear" else array(chain.name, name, getattr(node, "bias", None), "bias")
    if kind == "Conv2d":
        spec, weight, bias = _conv(chain, group, weight, bias, shape)
    else:
        if len(group) > 1:
            raise _fail(chain, group[1][0], "pools the output of a dense layer: pooling acts on C x H x W layers")
        if len(shape) != 1 or weight.ndim != 2 or weight.shape[1] != shape[0]:
            raise _fail(
                chain,
                name,
                f"has weight {weight.shape} for an input of shape {shape}: expected (out, "
                f"{math.prod(shape)}){' after a Flatten' if len(shape) == 3 else ''}",
            )
        spec = Dense(weight.shape[0])
    out = _shape(chain, name, index, spec, shape)
    if bias is not None:
        if bias.size not in (1, out[0]):
            raise _fail(chain, name, f"has {bias.size} bias values for {out[0]} channels")
        bias = np.broadcast_to(bias.reshape(-1), (out[0],))
        bias = bias if bias.any() else None
    cuba = _cuba(chain, neuron, out, dt, 1.0)
    if cuba.gain <= 0:
        raise _fail(chain, neuron[0], f"has input gain {cuba.gain:g} (r, w_in): expected > 0")
    if bias is not None and cuba.i_decay == 0:
        raise _fail(
            chain,
            neuron[0],
            "keeps its whole current from step to step (tau_syn rounds its decay to 0), so a bias into it grows "
            "without bound: Loihi's bias cannot follow; use a shorter tau_syn or no bias",
        )
    gained = None if bias is None else voltage_bias(bias, cuba.i_decay, cuba.gain)
    return MappedLayer(spec, names, nodes, cuba, weight * cuba.gain, gained)


def _shape(chain: NirChain, name: str, index: int, spec: LayerSpec, shape: tuple) -> tuple[int, ...]:
    try:
        return output_shape(index, spec, shape)
    except ConfigError as exc:
        raise _fail(chain, name, f"does not fit its input: {exc}") from None


def _pair(chain: NirChain, name: str, value: object, what: str) -> int:
    values = array(chain.name, name, value, what).reshape(-1)
    if values.size not in (1, 2) or values[0] != values[-1] or values[0] != round(values[0]) or values[0] < 0:
        raise _fail(chain, name, f"has {what} {values.tolist()}: lava-qpsnn maps one whole number for height and width")
    return int(values[0])


def _pool(chain: NirChain, name: str, node: object) -> tuple[int, float]:
    """A pooling node's kernel and the weight of each input (1 summing, 1 / k^2 averaging); windows must not overlap."""
    kernel = _pair(chain, name, node.kernel_size, "kernel_size")
    if kernel < 1 or _pair(chain, name, node.stride, "stride") != kernel or _pair(chain, name, node.padding, "padding"):
        raise _fail(chain, name, "pools with overlap or padding: lava-qpsnn maps stride == kernel, no padding")
    return kernel, 1.0 if type(node).__name__ == "SumPool2d" else 1.0 / kernel**2


def _conv(chain: NirChain, group: list, weight: np.ndarray, bias, shape: tuple) -> tuple[Conv, np.ndarray, object]:
    name, node = group[0]
    if len(shape) != 3 or weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
        raise _fail(
            chain, name, f"has weight {weight.shape} on a {shape} input: expected square (out, in, k, k) on C, H, W"
        )
    stride = _pair(chain, name, node.stride, "stride")
    dilation = _pair(chain, name, node.dilation, "dilation")
    groups = _pair(chain, name, node.groups, "groups")
    kernel = weight.shape[2]
    if isinstance(node.padding, str):
        span = dilation * (kernel - 1)
        if node.padding == "same" and (stride != 1 or span % 2):
            raise _fail(chain, name, "has padding 'same' with stride > 1 or an even kernel: give the padding in pixels")
        padding = span // 2 if node.padding == "same" else 0
    else:
        padding = _pair(chain, name, node.padding, "padding")
    if min(stride, dilation, groups) < 1 or weight.shape[1] * groups != shape[0]:
        raise _fail(chain, name, f"has weight {weight.shape} with groups={groups} on {shape[0]} input channels")
    for pool_name, pool in group[1:]:  # pooling of the current: one conv with a larger kernel and stride
        size, scale = _pool(chain, pool_name, pool)
        span = dilation * (kernel - 1) + 1
        dense = np.zeros((*weight.shape[:2], span, span))
        dense[:, :, ::dilation, ::dilation] = weight
        kernel = span + stride * (size - 1)
        weight = np.zeros((*weight.shape[:2], kernel, kernel))
        for dy in range(size):
            for dx in range(size):
                weight[:, :, dy * stride : dy * stride + span, dx * stride : dx * stride + span] += dense * scale
        stride, dilation = stride * size, 1
        bias = None if bias is None else bias * size**2 * scale
    return Conv(weight.shape[0], kernel, stride, padding, dilation, groups), weight, bias


def _cuba(chain: NirChain, neuron: tuple, shape: tuple, dt: float, input_weight: float) -> Cuba:
    """The node's CUBA neuron (``input_weight`` times its gain); refusals and warnings as the module docstring says."""
    name, node = neuron
    kind, size = type(node).__name__, math.prod(shape)
    params = {f: uniform(chain.name, name, node, f, size) for f in NEURON_FIELDS[kind]}
    for field in ("v_leak", "v_reset"):
        if hasattr(node, field) and getattr(node, field) is not None:
            value = uniform(chain.name, name, node, field, size)
            if value:
                what = "leaks toward" if field == "v_leak" else "resets to"
                raise _fail(chain, name, f"{what} {value:g}: Loihi's CUBA neuron leaks toward 0 and resets to 0")
    if params["v_threshold"] <= 0:
        raise _fail(chain, name, f"has threshold {params['v_threshold']:g}: expected > 0")
    for field in ("tau", "tau_syn", "tau_mem"):
        if field in params and not 0 < dt <= params[field]:
            raise _fail(chain, name, f"has {field} {params[field]:g} < dt {dt:g}: forward Euler needs tau >= dt")
    cuba = cuba_of_node(params, kind, dt)
    for label, decay in (("current", cuba.i_decay), ("voltage", cuba.v_decay)):
        if rounding(decay) > 1e-6:
            warnings.warn(
                f"{chain.name}: {name!r} has {label} decay {decay:.6g}/4096 at dt {dt:g}; "
                f"Loihi uses {round(decay)}/4096",
                NirMappingWarning,
                stacklevel=5,
            )
    reset = node.metadata.get("reset_mechanism") if isinstance(node.metadata, dict) else None
    if reset == "subtract":
        warnings.warn(
            f"{chain.name}: {name!r} resets by subtracting its threshold; Loihi's CUBA neuron resets to 0",
            NirMappingWarning,
            stacklevel=5,
        )
    return Cuba(float(round(cuba.i_decay)), float(round(cuba.v_decay)), cuba.threshold, cuba.gain * input_weight)
