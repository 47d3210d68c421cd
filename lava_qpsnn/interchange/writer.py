"""An exported network as a NIR graph: float parameters for other frameworks, the integers in metadata.

The graph is read from the ``.net`` file (netx's own numbers, nothing recomputed) and the
checkpoint it came from (the quantization record: bits, grid, weight exponent). Each layer becomes
a synapse node (``Conv2d``, ``Affine``, or ``SumPool2d`` for spike pooling) and a neuron node
(:func:`~lava_qpsnn.interchange.neurons.node_of_cuba`), or a ``Flatten``:

- float parameters: what Lava computes, in the units of its state (dense weights as netx's weight
  exponent makes them act, thresholds ``vThMant``, the bias; a pooling layer's constant weight is the
  neuron's input gain); other frameworks read these. Loihi adds the bias to the voltage, NIR feeds it
  into the current: a ``CubaLIF``'s bias is Loihi's times its current decay, so that its current settles
  on Loihi's bias (it gets there over ``tau_syn``, Loihi at once);
- ``metadata["netx"]``: the layer's datasets exactly as the ``.net`` stores them (weights, bias,
  ``iDecay``, ``vDecay``, ``vThMant``, ``refDelay``, conv geometry, delays if any);
- ``metadata["lava_qpsnn"]``: JSON with the layer's kind, weight bits, grid and exponent (synapse
  nodes) or its neuron's training settings (neuron nodes); the graph's own holds the data set, the
  encoding (with the reset schedule netx needs), the quantization settings and ``dt``.

:func:`~lava_qpsnn.interchange.importer.import_nir` rebuilds the very checkpoint network from them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..export import fixed_point_model
from ..files import atomic_output, check_output_path
from ..netx import ConvLayer, DenseLayer, FlattenLayer, netx_arguments, open_netx, read_netx
from ..netx.diff import datasets
from ..training.checkpoint import Checkpoint
from ..training.models import weight_blocks
from ..training.specs import Pool
from .neurons import DEFAULT_DT, Cuba, current_bias, node_of_cuba

__all__ = ["export_nir", "RECORD", "RECORD_VERSION"]

RECORD = "lava_qpsnn"  # the metadata key of our records (JSON text)
RECORD_VERSION = 1


def export_nir(
    checkpoint: Checkpoint,
    net_path: str | os.PathLike,
    nir_path: str | os.PathLike,
    *,
    dt: float = DEFAULT_DT,
    force: bool = False,
) -> Path:
    """Write ``checkpoint``'s exported network ``net_path`` (from :func:`~lava_qpsnn.export.export_netx`) as a
    NIR graph at ``nir_path`` (atomically; ``force`` replaces an existing file); ``dt``: the step in seconds."""
    import nir

    check_output_path(nir_path, force=force)
    if not 0 < dt < np.inf:
        raise ExportError(f"the time step dt must be a finite number > 0, got {dt}", settings=("dt",))
    network = read_netx(net_path)
    layers = checkpoint.model.layers
    if len(network.layers) != len(layers) + 1:
        raise ExportError(
            f"{Path(net_path).name} has {len(network.layers) - 1} layers, the checkpoint {len(layers)}: "
            "export the network of this checkpoint"
        )
    hooks = iter(b.synapse.pre_hook_fx for b in weight_blocks(fixed_point_model(checkpoint)))
    with open_netx(net_path) as handle:
        stored = [
            {key: handle[f"layer/{i}/{key}"][()] for key in datasets(handle[f"layer/{i}"])}
            for i in range(len(network.layers))
        ]
    nodes = {"input": nir.Input(input_type=np.array(network.input_shape))}
    shape = network.input_shape
    for i, (spec, layer) in enumerate(zip(layers, network.layers[1:], strict=True), start=1):
        entries = stored[i]
        if isinstance(layer, FlattenLayer):
            nodes[f"flatten{i}"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            shape = layer.shape
            continue
        synapse = {k: v for k, v in entries.items() if not k.startswith("neuron/")}
        record = {"layer": i, "kind": "pool" if isinstance(spec, Pool) else type(spec).__name__.lower()}
        gain = 1.0
        if isinstance(spec, Pool):
            gain = float(layer.weight.flat[0])
            kernel = np.array(layer.stride)
            node = nir.SumPool2d(kernel_size=kernel, stride=kernel, padding=np.zeros(2, dtype=np.int64))
        else:
            hook = next(hooks)
            record.update({key: getattr(hook, key, None) for key in ("bits", "grid", "exponent")})
            bias = np.broadcast_to(layer.neuron.bias, layer.shape).astype(np.float64)
            bias = current_bias(bias, int(entries["neuron/iDecay"]), gain)  # Loihi's is on the voltage
            if isinstance(layer, ConvLayer):
                if (bias != bias[:, :1, :1]).any():
                    raise ExportError(f"layer {i} has a bias per neuron, which NIR's Conv2d cannot hold")
                node = nir.Conv2d(
                    input_shape=tuple(shape[1:]),
                    weight=layer.weight.astype(np.float64),
                    stride=layer.stride,
                    padding=layer.padding,
                    dilation=layer.dilation,
                    groups=layer.groups,
                    bias=bias[:, 0, 0].copy(),
                )
            else:
                assert isinstance(layer, DenseLayer)
                weight = layer.weight.astype(np.float64) * 2.0**layer.weight_exp
                node = nir.Affine(weight=weight, bias=bias.copy())
        node.metadata = {RECORD: json.dumps(record), "netx": _nested(synapse)}
        nodes[f"{record['kind']}{i}"] = node
        neuron_entries = {k.removeprefix("neuron/"): v for k, v in entries.items() if k.startswith("neuron/")}
        cuba = Cuba(int(neuron_entries["iDecay"]), int(neuron_entries["vDecay"]), float(layer.neuron.vth), gain)
        try:
            neuron = node_of_cuba(cuba, layer.shape, dt)
        except ValueError as exc:
            raise ExportError(f"layer {i}: {exc}: NIR cannot describe this neuron") from None
        training = checkpoint.model.neuron_at(i - 1).to_dict()
        neuron.metadata = {RECORD: json.dumps(training), "netx": _nested(neuron_entries)}
        nodes[f"neuron{i}"] = neuron
        shape = layer.shape
    nodes["output"] = nir.Output(output_type=np.array(shape))
    names = list(nodes)
    record = {
        "version": RECORD_VERSION,
        "dt": dt,
        "dataset": checkpoint.dataset,
        "encoding": dict(vars(checkpoint.encoding)),
        "netx": netx_arguments(checkpoint.encoding),
        "num_classes": checkpoint.model.num_classes,
        "image_shape": list(checkpoint.model.image_shape),
        "quant": None if checkpoint.quant is None else checkpoint.quant.to_dict(),
    }
    graph = nir.NIRGraph(
        nodes=nodes, edges=list(zip(names, names[1:], strict=False)), metadata={RECORD: json.dumps(record)}
    )
    with atomic_output(nir_path, force=force) as tmp:
        nir.write(tmp, graph)
    return Path(nir_path)


def _nested(entries: dict[str, object]) -> dict[str, object]:
    """``{"a/b": x}`` as ``{"a": {"b": x}}``: how ``nir.write`` stores groups."""
    out: dict[str, object] = {}
    for key, value in entries.items():
        *groups, name = key.split("/")
        target = out
        for group in groups:
            target = target.setdefault(group, {})
        target[name] = value
    return out
