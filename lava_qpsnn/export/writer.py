"""Checkpoint -> NetX HDF5.

What is exported is the checkpoint's fixed-point network (:func:`lava_qpsnn.export.fixed_point.to_fixed_point`):
integer weights on the trained b-bit grid, the weight scale folded into each layer's
threshold, a BatchNorm folded into the weights and an integer bias. Each slayer block is
written by its own ``export_hdf5`` (lava-dl's format, unchanged) except pooling, which netx
cannot build: a spike-pooling layer is written as what it computes, a grouped (depthwise)
conv with one constant weight and stride = kernel. Axonal delays go onto the synapses of the dense
layer the delayed spikes feed (:func:`_place_delays`). This module chooses the writer per block
type (an explicit registry: an unknown block is an error, never skipped), adds the input
layer and our metadata, checks that weights and biases are integers and stores them as such
(netx truncates floats toward zero), and writes atomically.

Lava's limits, checked on the written file before it is moved into place. Lava differs from
slayer's fixed-point model, silently, where its state leaves 24 bits (``u`` wraps, ``v`` is
clipped below ``-2^23``; :mod:`lava_qpsnn.export.limits`) and where netx cannot store a layer as it is.
Per layer, over one window of T steps:

- worst case inside ``2^23`` (every same-signed input firing on every step): nothing to say;
- worst case beyond it: quantized layers avoid this by design (a smaller weight exponent,
  :func:`lava_qpsnn.export.fixed_point.to_fixed_point`); where that cannot help, the largest ``|u|``
  and ``|v|`` reached on the first ``LIMIT_SAMPLES`` test samples are measured with the
  simulator, without the limits. Below ``2^23``: exported, with one
  :class:`~lava_qpsnn.errors.StateLimitWarning` line naming the layer, the measured maximum
  and its margin. At or above it: refused;
- refused (:class:`~lava_qpsnn.errors.ExportError`, one line, no file written): weights
  beyond Loihi's 8-bit synapse (-256..254; int16 storage), a bias beyond 13 bits
  (-4096..4095), an all-zero dense matrix (netx's ``optimize_weight_bits`` fails), and an
  all-non-positive dense matrix that netx distorts (e.g. [-2, -4] acts as [-2, -2]) in a
  layer whose positive bias can make it fire. Other all-non-positive matrices are stored
  exactly (e.g. [-2, -3]), or drive a layer that can never fire: no exact fix exists for
  the rest, as netx rescales whatever integers are written to the same 8-bit pattern.
"""

from __future__ import annotations

import math
import os
import uuid
import warnings
from collections.abc import Callable
from functools import cache

import h5py
import numpy as np
import torch

from ..data import encode_test_split, load_dataset
from ..errors import ExportError, StateLimitWarning
from ..files import atomic_output
from ..loihi import STATE_LIMIT, WEIGHT_MAX, check_bias_range, check_weight_range
from ..netx import ConvLayer, DenseLayer, lava_dense_weights, read_netx
from ..netx.metadata import write_metadata
from ..training.checkpoint import Checkpoint
from ..training.hooks import IntegerWeights
from .fixed_point import check_on_grid, fixed_point_model
from .limits import layer_worst_case, measured_peaks
from .summary import LayerSummary, pool_synapses, signed_weight_bits, with_unpruned_sizes

__all__ = ["export_netx", "LIMIT_SAMPLES"]

LIMIT_SAMPLES = 64  # test samples that measure a layer whose worst case leaves Lava's 24-bit state


BlockWriter = Callable[[int, torch.nn.Module, h5py.Group], LayerSummary]


def _write_synaptic(index: int, block: torch.nn.Module, group: h5py.Group) -> LayerSummary:
    block.export_hdf5(group)
    weight = group["weight"][()]
    integers = np.rint(weight)
    name = f"layer {index} ({type(block).__name__})"
    if not np.allclose(weight, integers, rtol=0, atol=1e-4):
        raise ExportError(
            f"{name} has weights off the integer grid: train with a quantization hook (slayer's default "
            "quantize_8bit or a QuantConfig)",
            settings=("bits",),
        )
    check_weight_range(integers, name)
    hook = block.synapse.pre_hook_fx
    loihi_bits = signed_weight_bits(integers)
    bits = loihi_bits
    if isinstance(hook, IntegerWeights) and hook.bits is not None:
        check_on_grid(integers, hook.bits, name, hook.grid, hook.exponent)
        bits = hook.bits
    del group["weight"]
    group.create_dataset("weight", data=integers.astype(np.int16))  # |n| <= 256: 2 bytes
    bias = None
    if "bias" in group:  # slayer writes the neuron norm's bias as floats; ours are integers
        bias = np.rint(group["bias"][()])
        check_bias_range(bias, name)
        del group["bias"]
        group.create_dataset("bias", data=bias.astype(np.int16))
    kind = type(block).__name__.lower()
    if kind == "dense":
        _check_dense_matrix(name, integers, bias)
    shape = tuple(int(s) for s in block.shape)
    return LayerSummary(index, kind, shape, weight.size, bits, loihi_bits, int(group["neuron/vThMant"][()]))


def _check_dense_matrix(name: str, integers: np.ndarray, bias: np.ndarray | None) -> None:
    """Refuse the dense matrices netx cannot build (all zero) or builds distorted where it matters."""
    if not integers.any():
        raise ExportError(
            f"{name} has all-zero weights, which netx cannot build (OverflowError): prune it less or use more "
            "bits so that the layer keeps a non-zero weight",
            settings=("prune", "bits"),
        )
    if integers.max() > 0:
        return  # mixed or all-positive matrices within -256..254: netx stores them exactly
    lava, exponent = lava_dense_weights(integers.astype(np.int64))
    acts = lava * 2.0**exponent
    if np.array_equal(acts, integers) or bias is None or bias.max() <= 0:
        return  # exact, or a layer that can never fire (u <= 0 and no positive bias): the same spikes either way
    wrong = np.flatnonzero(acts != integers)[0]
    raise ExportError(
        f"{name} has no positive weight, and netx stores this matrix distorted (weight {int(integers.flat[wrong])} "
        f"acts as {acts.flat[wrong]:g} in Lava) while the layer's positive bias can make it fire: retrain or prune "
        "less so that the layer keeps an excitatory weight"
    )


def _write_pool(index: int, block: torch.nn.Module, group: h5py.Group) -> LayerSummary:
    """Spike pooling as the grouped conv netx builds: channel c sums its own K x K window."""
    synapse, neuron = block.synapse, block.neuron
    shape = tuple(int(s) for s in neuron.shape)
    channels, kernel = shape[0], int(synapse.kernel_size[0])
    weights = synapse.pre_hook_fx(synapse.weight, descale=True).flatten()
    value = float(weights[0])
    if (weights != value).any() or value != round(value) or not 0 < value <= WEIGHT_MAX:
        raise ExportError(
            f"layer {index} (pooling) has weights {weights.tolist()}: expected one integer in 1..{WEIGHT_MAX}"
        )
    group.create_dataset("type", (1,), "S10", [b"conv"])
    group.create_dataset("shape", data=np.array(shape))
    group.create_dataset("inChannels", data=channels)
    group.create_dataset("outChannels", data=channels)
    group.create_dataset("kernelSize", data=np.array([kernel, kernel]))
    group.create_dataset("stride", data=np.array([kernel, kernel]))
    group.create_dataset("padding", data=np.array([0, 0]))
    group.create_dataset("dilation", data=np.array([1, 1]))
    group.create_dataset("groups", data=channels)
    group.create_dataset("weight", data=np.full((channels, 1, kernel, kernel), round(value), dtype=np.int16))
    for key, item in neuron.device_params.items():
        group.create_dataset(f"neuron/{key}", data=item)
    # the chip stores these synapses (one constant each): counted at their signed bits, like the report does
    bits = signed_weight_bits(np.array([round(value)]))
    return LayerSummary(index, "pool", shape, pool_synapses(block), bits, bits, int(group["neuron/vThMant"][()]))


def _write_flatten(index: int, block: torch.nn.Module, group: h5py.Group) -> LayerSummary:
    block.export_hdf5(group)
    return LayerSummary(index, "flatten", tuple(int(s) for s in block.shape))


@cache
def _writers() -> dict[type, BlockWriter]:
    from lava.lib.dl import slayer

    cuba = slayer.block.cuba
    return {
        cuba.Dense: _write_synaptic,
        cuba.Conv: _write_synaptic,
        cuba.Pool: _write_pool,
        cuba.Flatten: _write_flatten,
    }


def _place_delays(net: torch.nn.Module, layers: h5py.Group) -> None:
    """Store each block's axonal delays on the synapses of the dense layer its spikes feed.

    slayer delays a block's output spikes; netx delays the synapses of a dense layer, as an
    ``(out, in)`` matrix. lava-dl writes a block's delays into its own layer, where netx applies
    them to that layer's input current: the same spikes only for a layer without bias. Moved to
    the next dense layer (column j: the delay of input j's channel, in netx's C-order flatten),
    they delay the very spikes slayer delayed, bias or not. :class:`~lava_qpsnn.training.specs.ModelConfig`
    ensures a dense layer follows.
    """
    pending = None  # per input feature of the next dense layer: the delay of the spikes on their way to it
    for i, block in enumerate(net.blocks, start=1):
        group = layers[str(i)]
        if "delay" in group:
            del group["delay"]
        if pending is not None and "weight" in group and group["weight"].ndim == 2:
            group.create_dataset("delay", data=np.broadcast_to(pending, group["weight"].shape).astype(np.int16))
            pending = None
        if getattr(block, "delay", None) is not None:
            per_channel = torch.floor(block.delay.delay.clamp(0, block.delay.max_delay)).cpu().numpy()
            pending = np.repeat(per_channel.astype(np.int64), math.prod(block.neuron.shape[1:]))


def _check_exportable(net: torch.nn.Module) -> None:
    writers = _writers()
    for i, block in enumerate(net.blocks):
        if type(block) not in writers:
            names = ", ".join(f"slayer.block.cuba.{t.__name__}" for t in writers)
            raise ExportError(f"cannot export blocks.{i} ({type(block).__name__}): NetX export supports {names}")
        synapse = getattr(block, "synapse", None)
        if synapse is not None and synapse.weight_norm_enabled:
            raise ExportError(f"blocks.{i} uses weight norm: fold it before export (slayer disables it in place)")


def export_netx(checkpoint: Checkpoint, path: str | os.PathLike, *, force: bool = False) -> list[LayerSummary]:
    """Write ``checkpoint``'s network to ``path`` as NetX HDF5; return the per-layer table.

    The file is written to a temporary name and renamed into place, so a failure leaves
    no file and an existing one untouched. ``force`` allows replacing an existing file.
    """
    net = fixed_point_model(checkpoint)
    _check_exportable(net)
    rows = [LayerSummary(0, "input", tuple(checkpoint.model.input_shape))]
    with atomic_output(path, force=force) as tmp:
        with h5py.File(f"draft-{uuid.uuid4().hex}", "w", driver="core", backing_store=False) as draft:
            layers = draft.create_group("layer")
            inp = layers.create_group("0")
            inp.create_dataset("type", (1,), "S10", [b"input"])
            inp.create_dataset("shape", data=np.array(checkpoint.model.input_shape))
            with torch.no_grad():
                for i, block in enumerate(net.blocks, start=1):
                    rows.append(_writers()[type(block)](i, block, layers.create_group(str(i))))
                _place_delays(net, layers)
            write_metadata(
                draft,
                dataset=checkpoint.dataset,
                encoding=checkpoint.encoding,
                num_classes=checkpoint.model.num_classes,
            )
            with h5py.File(tmp, "w", libver=("v110", "v110")) as handle:
                _copy_checksummed(draft, handle)
        _check_state_limits(tmp, checkpoint)
    return with_unpruned_sizes(rows, checkpoint)


COMPACT_BYTES = 2048  # datasets up to this size live in their (checksummed) object header


def _copy_checksummed(source: h5py.Group, target: h5py.Group) -> None:
    """Copy a draft file so that every byte HDF5 reads from the copy is covered by a checksum.

    A damaged file is then a read error naming the entry rather than a silently different network
    (any single damaged byte; checksums miss some multi-byte damage), and HDF5 refuses it before
    parsing damaged structures (which can crash its C library). The target is
    written in the HDF5 1.10 format, whose superblock, object headers, B-trees and heaps carry
    checksums; attributes must be fixed-length (a variable-length value lives in the unchecked
    global heap); a dataset of up to ``COMPACT_BYTES`` is stored inside its object header, a larger
    one in chunks with Fletcher-32. netx reads such files unchanged.
    """
    for key, value in source.attrs.items():
        target.attrs[key] = value
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_checksummed(item, target.create_group(name))
            continue
        data = np.asarray(item[()])
        if data.dtype.kind == "O":  # variable-length strings (an array of them) become fixed-length
            data = data.astype(bytes)
        if data.nbytes <= COMPACT_BYTES:  # low-level: h5py's create_dataset drops the layout of a scalar
            layout = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            layout.set_layout(h5py.h5d.COMPACT)
            space = h5py.h5s.create_simple(data.shape) if data.shape else h5py.h5s.create(h5py.h5s.SCALAR)
            dtype = h5py.h5t.py_create(data.dtype, logical=True)
            h5py.h5d.create(target.id, name.encode(), dtype, space, dcpl=layout).write(
                h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data)
            )
        else:
            target.create_dataset(name, data=data, fletcher32=True)
        for key, value in item.attrs.items():
            target[name].attrs[key] = value


def _check_state_limits(path: os.PathLike, checkpoint: Checkpoint) -> None:
    """Lava's 24-bit state, layer by layer: the rule of the module docstring."""
    network = read_netx(path)
    encoding = checkpoint.encoding
    synaptic = [i for i, layer in enumerate(network.layers) if isinstance(layer, DenseLayer | ConvLayer)]
    graded = synaptic[0] if encoding.graded else None  # the layer that reads the payloads; spikes after it
    risky = {}
    for index in synaptic:
        input_max = encoding.payload_max if index == synaptic[0] else 1
        if not (worst := layer_worst_case(network.layers[index], encoding.time_steps, input_max)).within:
            risky[index] = worst
    if not risky:
        return
    _, test_set = load_dataset(checkpoint.dataset)
    spikes = encode_test_split(test_set, checkpoint.encoding, LIMIT_SAMPLES)
    peaks = dict(zip(map(id, network.neuron_layers), measured_peaks(network, spikes), strict=True))
    samples = f"the first {len(spikes)} test samples"
    messages = []
    for index, worst in risky.items():
        layer, peak = network.layers[index], peaks[id(network.layers[index])]
        name = f"layer {index} ({'dense' if isinstance(layer, DenseLayer) else 'conv'})"
        reached = f"|u| {peak.current:,} and |v| {peak.voltage:,}"
        if not peak.within and index == graded:
            over = math.ceil(math.log2(peak.largest / (STATE_LIMIT - 1)))
            fewer = f"{over} fewer bit{'s' * (over > 1)}"
            raise ExportError(
                f"{name} reads {encoding.bits}-bit graded payloads and reaches {reached} on {samples}, beyond "
                f"Lava's 24-bit limit {STATE_LIMIT:,} (Lava would wrap or clip it): payloads times its weights need "
                f"{fewer}: send fewer payload bits (e.g. {max(encoding.bits - over, 1)}) or give the first layer "
                "fewer weight bits",
                settings=("payload_bits", "first_last_bits"),
            )
        if not peak.within:
            raise ExportError(
                f"{name} reaches {reached} on {samples}, beyond Lava's 24-bit limit {STATE_LIMIT:,} (Lava would "
                "wrap or clip it and its spikes differ): quantize it (fewer bits fit wider layers) or give "
                "the layer fewer inputs",
                settings=("bits",),
            )
        messages.append(
            f"{name}: worst case |u| {worst.current:,}, |v| {worst.voltage:,} is beyond Lava's 24-bit limit "
            f"{STATE_LIMIT:,}; on {samples} it reaches {reached}, {STATE_LIMIT / max(peak.largest, 1):.1f}x "
            "below the limit (other inputs may come closer)"
        )
    for message in messages:
        warnings.warn(message, StateLimitWarning, stacklevel=3)
