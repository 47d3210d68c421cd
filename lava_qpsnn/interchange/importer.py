"""A NIR graph as an ordinary lava-qpsnn checkpoint, which export, evaluation and pruning take as any other.

The nodes map onto layers (:mod:`~lava_qpsnn.interchange.mapping`). Then either:

- the graph was written by :func:`~lava_qpsnn.interchange.writer.export_nir` and every node still
  agrees with the integers in its metadata: the checkpoint is that network again, with the
  quantization settings it was trained with. Each layer is rebuilt on a scale ``u`` (weights
  ``n u``, threshold ``vth u``, bias ``b u``) under which the fixed-point conversion
  (:func:`~lava_qpsnn.export.to_fixed_point`) gives back exactly the stored integers ``n``, ``vth``, ``b``
  and weight exponent, so export writes the same ``.net``;
- otherwise (another framework's graph) the float network: the weights of each layer scaled,
  with its bias and threshold, so that the largest fills slayer's 8-bit weight range and the threshold
  lies on slayer's grid of 1/64ths, which it truncates thresholds to (spikes do not change when weights,
  bias and threshold scale together and the neuron resets to 0); no quantization.
  One warning says what differs from the source in time: each layer adds one step of delay, as in Lava.

A bias becomes the layer's own learnable bias (:class:`~lava_qpsnn.training.norm.Bias`, a BatchNorm whose
statistics stay fixed at scale 1): evaluation and export add it as it is, and training adapts it without
renormalising the current, so fine-tuning starts from the function the graph computes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from dataclasses import replace

import numpy as np
import torch

from ..data import Encoding, load_dataset
from ..errors import NirFileError, NirMappingWarning
from ..loihi import DECAY_UNITY, WEIGHT_MAX
from ..netx import lava_dense_weights
from ..training.checkpoint import Checkpoint
from ..training.hooks import grid_max
from ..training.layer_specs import Conv, Dense, Flatten, NeuronConfig, Pool
from ..training.models import build_model, scale_input, weight_blocks
from ..training.quantize import QuantConfig, quantize_model
from ..training.specs import ModelConfig
from .mapping import MappedLayer, map_chain
from .neurons import DEFAULT_DT
from .reader import NirChain, read_chain, record_of

__all__ = ["import_nir"]

W_SCALE = 64  # slayer's weight scale: a float weight w is the integer w * 64 on Loihi
TRAINING_FIELDS = ("tau_grad", "scale_grad", "requires_grad")


def import_nir(
    path: str | os.PathLike, *, dataset: str | None = None, time_steps: int | None = None, dt: float | None = None
) -> Checkpoint:
    """The checkpoint of the NIR graph at ``path`` (see the module docstring).

    ``dataset`` and ``time_steps`` default to those a graph of ours records (another framework's graph
    needs ``dataset``); ``dt``, the step in seconds its time constants are discretized with, to the
    recorded one or NIR's usual 1e-4.
    """
    chain = read_chain(path)
    record = record_of(chain.name, "the graph", chain.metadata) or {}
    try:
        dt = float(dt if dt is not None else record.get("dt", DEFAULT_DT))
        encoding = Encoding(**record["encoding"]) if "encoding" in record else Encoding()
        quant = QuantConfig(**record["quant"]) if record.get("quant") else None
    except (TypeError, ValueError) as exc:
        raise NirFileError(f"{chain.name}: damaged lava-qpsnn graph metadata ({exc}): re-export the graph") from None
    if time_steps is not None:
        encoding = replace(encoding, time_steps=time_steps)
    dataset = dataset or record.get("dataset")
    if not isinstance(dataset, str):
        raise NirFileError(
            f"{chain.name} names no data set: give the one the network classifies", settings=("dataset",)
        )
    if not 0 < dt < math.inf:
        raise NirFileError(f"the time step dt must be a finite number > 0, got {dt}", settings=("dt",))
    layers = map_chain(chain, dt)
    exact = _integers(chain, layers) if record else None
    if exact is None:
        quant = None
        for layer in layers:
            if layer.bias is not None and layer.cuba.i_decay != DECAY_UNITY:
                warnings.warn(
                    f"{chain.name}: node {layer.names[0]!r} feeds a bias into a CubaLIF's synaptic current, which "
                    "Loihi adds to the voltage: mapped to the voltage the current's steady state gives, at once "
                    "instead of over tau_syn",
                    NirMappingWarning,
                    stacklevel=2,
                )
        synaptic = sum(isinstance(layer.spec, Conv | Dense | Pool) for layer in layers)
        warnings.warn(
            f"{chain.name}: each of the {synaptic} layers adds one step of delay, as in Lava: the output lags the "
            "source's by as many steps, and a bias acts from the step its layer's input first arrives",
            NirMappingWarning,
            stacklevel=2,
        )
    specs, weights, shifts, scales = _values(layers, exact, quant, encoding.payload_max)
    image_shape = _image_shape(chain, record, dataset)
    delays = _axonal_delays(chain, layers, specs, image_shape)
    specs = [replace(spec, delay=True) if i in delays else spec for i, spec in enumerate(specs)]
    counts = Counter(getattr(spec, "neuron", None) for spec in specs if not isinstance(spec, Flatten))
    config = ModelConfig(tuple(specs), image_shape, "none", counts.most_common(1)[0][0])
    net = scale_input(build_model(config), encoding.payload_max)
    if quant is not None:
        quantize_model(net, quant)
    with torch.no_grad():
        for i, delay in delays.items():
            net.blocks[i].delay.delay.copy_(torch.as_tensor(delay, dtype=torch.float32))
        for block, weight, shift in zip(weight_blocks(net), weights, shifts, strict=True):
            block.synapse.weight.copy_(torch.as_tensor(weight).reshape(block.synapse.weight.shape))
            if shift is not None:  # a plain learnable bias (lava_qpsnn.Bias: a BatchNorm of fixed scale 1)
                block.neuron.norm.shift.copy_(torch.as_tensor(shift))
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    scales = tuple(scales) if quant is not None else None
    checkpoint = Checkpoint(config, dataset, encoding, state, {}, quant, None, scales, None)
    checkpoint.build()
    return checkpoint


def _image_shape(chain: NirChain, record: dict, dataset: str) -> tuple[int, int, int]:
    """The data's ``C, H, W``: the graph's input, or for a flat input, the one recorded or the data set's."""
    if len(chain.input_shape) == 3:
        return chain.input_shape
    if isinstance(record.get("image_shape"), list) and len(record["image_shape"]) == 3:
        shape = tuple(record["image_shape"])
    else:
        shape = load_dataset(dataset)[1].images.shape[1:]
    if math.prod(shape) != chain.input_shape[0]:
        raise NirFileError(f"{chain.name} takes {chain.input_shape[0]} inputs; {dataset} images have {shape}")
    return tuple(int(s) for s in shape)


def _entries(file_name: str, name: str, node: object) -> tuple[dict, dict]:
    """A node's lava-qpsnn record and netx datasets (empty where it has none)."""
    metadata = node.metadata if isinstance(node.metadata, dict) else {}
    netx = metadata.get("netx")
    return (record_of(file_name, f"node {name!r}", metadata) or {}), (netx if isinstance(netx, dict) else {})


def _integers(chain: NirChain, layers: list[MappedLayer]) -> list[dict | None] | None:
    """Per layer, the stored integers of our graph, if every node still computes them; else None (one warning)."""
    out = []
    try:
        for layer in layers:
            if isinstance(layer.spec, Flatten):
                out.append(None)
                continue
            synapse, stored = _entries(chain.name, layer.names[0], layer.nodes[0])
            training, neuron = _entries(chain.name, layer.names[-1], layer.nodes[-1])
            entry = {
                "n": np.asarray(stored["weight"], dtype=np.int64),
                "bias": np.asarray(stored["bias"], dtype=np.int64).reshape(-1) if "bias" in stored else None,
                "vth": int(neuron["vThMant"]),
                "decays": (int(neuron["iDecay"]), int(neuron["vDecay"])),
                "training": {k: training[k] for k in TRAINING_FIELDS if k in training},
                **{k: synapse.get(k) for k in ("bits", "grid", "exponent")},
            }
            if not _agrees(layer, entry):
                raise ValueError(f"node {layer.names[0]!r} no longer computes its recorded integers")
            out.append(entry)
    except (KeyError, TypeError, ValueError) as exc:
        warnings.warn(
            f"{chain.name}: its lava-qpsnn metadata does not describe its nodes ({exc}): importing the float "
            "parameters",
            NirMappingWarning,
            stacklevel=3,
        )
        return None
    return out


def _axonal_delays(
    chain: NirChain, layers: list[MappedLayer], specs: list, image_shape: tuple[int, int, int]
) -> dict[int, np.ndarray]:
    """Per delayed layer, one delay per output channel: what our graph stores on the synapses of the dense layer
    its spikes feed (:func:`lava_qpsnn.export.export_netx` puts slayer's axonal delays there), in the synapse
    node's netx metadata; read whether or not the rest of the graph is imported exactly.

    Any other pattern (a delay per output neuron, as lava-dl's own export writes, or per synapse) has no
    slayer layer that trains it: refused in one line naming the node.
    """
    shapes = ModelConfig(tuple(specs), image_shape).shapes
    out = {}
    for i, layer in enumerate(layers):
        if isinstance(layer.spec, Flatten):
            continue
        _, stored = _entries(chain.name, layer.names[0], layer.nodes[0])
        if "delay" not in stored:
            continue
        source = max((j for j in range(i) if not isinstance(specs[j], Flatten)), default=None)
        try:
            matrix = np.asarray(stored["delay"], dtype=np.int64).reshape(np.shape(layer.weight)[:2])
        except (TypeError, ValueError):
            raise NirFileError(f"node {layer.names[0]!r} has delays that do not fit its weights") from None
        channels = shapes[source][0] if source is not None else 0
        per_channel = matrix.reshape(matrix.shape[0], channels, -1) if channels else None
        if per_channel is None or not (per_channel == per_channel[:1, :, :1]).all():
            raise NirFileError(
                f"node {layers[i].names[0]!r} has synaptic delays that are not one per channel of the layer before "
                "it: lava-qpsnn trains slayer's axonal delays (a delay per output channel of a layer); re-export the "
                "network from such delays, or without delays"
            )
        out[source] = per_channel[0, :, 0]
    return out


def _agrees(layer: MappedLayer, entry: dict) -> bool:
    """Whether the node's float parameters are the ones :func:`~lava_qpsnn.interchange.writer.export_nir` wrote."""
    cuba = layer.cuba
    if (cuba.i_decay, cuba.v_decay) != entry["decays"] or cuba.threshold != entry["vth"]:
        return False
    if isinstance(layer.spec, Pool):
        return entry["n"].size > 0 and np.allclose(entry["n"], cuba.gain, rtol=1e-9, atol=0)
    if isinstance(layer.spec, Dense):
        lava, exponent = lava_dense_weights(entry["n"])
        acts = lava * 2.0**exponent
    else:
        acts = entry["n"]
    bias = np.zeros(1) if entry["bias"] is None else entry["bias"]
    mapped = np.zeros(1) if layer.bias is None else layer.bias
    same = acts.shape == layer.weight.shape and np.allclose(acts, layer.weight, rtol=1e-9, atol=0)
    return same and np.allclose(np.broadcast_to(bias, mapped.shape), mapped, rtol=1e-9, atol=0)


def _on_slayer_grid(threshold: float, vth: int, fold: float) -> float:
    """``threshold`` on the grid slayer keeps it on (it truncates to whole 1/64ths): the point the fixed-point
    conversion folds (times ``fold``) back into the stored integer ``vth``, else the nearest."""
    nearest = round(threshold * W_SCALE)
    for k in (nearest, nearest + 1, nearest - 1):
        if k > 0 and round(k / W_SCALE * fold) == vth:
            return k / W_SCALE
    return max(nearest, 1) / W_SCALE


def _values(layers: list[MappedLayer], exact: list | None, quant: QuantConfig | None, payload_max: int) -> tuple:
    """Specs with their neurons and BatchNorm, and per weight layer: weights, bias (None: none), quantizer scale."""
    specs, weights, shifts, scales = [], [], [], []
    for i, layer in enumerate(layers):
        if isinstance(layer.spec, Flatten):
            specs.append(layer.spec)
            continue
        cuba, entry = layer.cuba, None if exact is None else exact[i]
        if isinstance(layer.spec, Pool):
            threshold = 1.0 if entry is None else entry["vth"] / W_SCALE
        elif entry is None:  # float: the largest weight fills slayer's 8-bit range, the threshold on its grid
            fill = WEIGHT_MAX / W_SCALE / max(np.abs(layer.weight).max(), np.finfo(np.float32).tiny)
            steps = max(math.floor(cuba.threshold * fill * W_SCALE), 1)  # slayer keeps thresholds in 1/64ths
            unit = steps / (W_SCALE * cuba.threshold)
            threshold, weight = steps / W_SCALE, layer.weight * unit
            bias = None if layer.bias is None else layer.bias * unit
        else:
            gain = payload_max if not weights else 1  # the float layer 0 reads payloads / payload_max
            if quant is None:
                unit, gamma = 1 / (W_SCALE * gain), None
            else:
                levels = grid_max(entry["bits"], entry["grid"]) << entry["exponent"]
                gamma = 1.0 if quant.quantizer == "baseline" else levels * gain / entry["vth"]
                unit = gamma / (levels * gain)
            threshold, weight = _on_slayer_grid(entry["vth"] * unit, entry["vth"], 1 / unit), entry["n"] * unit * gain
            bias = None if entry["bias"] is None else entry["bias"] * unit
            scales.append(gamma)
        training = {} if entry is None else entry["training"]
        neuron = NeuronConfig(threshold, cuba.i_decay / DECAY_UNITY, cuba.v_decay / DECAY_UNITY, **training)
        if isinstance(layer.spec, Pool):
            specs.append(replace(layer.spec, neuron=neuron))
            continue
        specs.append(replace(layer.spec, neuron=neuron, norm=None if bias is None else "bias"))
        weights.append(np.asarray(weight, dtype=np.float32))
        shifts.append(None if bias is None else np.asarray(bias, dtype=np.float32))
    return specs, weights, shifts, scales
