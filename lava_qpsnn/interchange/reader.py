"""Reading a ``.nir`` file as a chain of nodes, every failure one line naming the file or the node.

``nir.read`` parses the HDF5 file into node objects; any exception it raises on a damaged or
foreign file becomes :class:`~lava_qpsnn.errors.NirFileError`. The graph must then be a chain
from its one ``Input`` to its one ``Output`` through known nodes: branches, recurrence, subgraphs
and node types lava-qpsnn cannot map are refused, naming the node. :func:`uniform` reads a node's
parameter as the one value every neuron shares.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import NirFileError

__all__ = ["NirChain", "read_chain", "uniform", "array", "record_of", "KNOWN"]

SYNAPSES = ("Affine", "Linear", "Conv2d")
POOLS = ("SumPool2d", "AvgPool2d")
NEURONS = ("IF", "LIF", "CubaLIF")
KNOWN = ("Input", "Output", "Flatten", *SYNAPSES, *POOLS, *NEURONS)


@dataclass(frozen=True)
class NirChain:
    """A graph's nodes in order from input to output (both excluded), the input shape and the graph's metadata."""

    name: str
    input_shape: tuple[int, ...]
    nodes: tuple[tuple[str, object], ...]
    metadata: dict


def read_chain(path: str | os.PathLike) -> NirChain:
    """Read ``path`` and check that its graph is a chain of known nodes (see the module docstring)."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise NirFileError(f"no NIR graph at {path}: give a .nir file (e.g. written by nir.write)")
    try:
        if not h5py.is_hdf5(path):
            raise NirFileError(f"{path} is not an HDF5 file: give a .nir file written by nir.write")
        graph = nir.read(path, type_check=False)
    except NirFileError:
        raise
    except Exception as exc:  # nir.read raises whatever its parsing of a damaged or foreign file meets
        detail = " ".join(str(exc).split())[:100] or type(exc).__name__
        raise NirFileError(f"{path} is not a readable NIR graph ({detail}): re-export or re-copy it") from None
    if not isinstance(graph, nir.NIRGraph) or not isinstance(graph.nodes, dict):
        raise NirFileError(f"{path.name} holds a {type(graph).__name__}, not a NIR graph of nodes")
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "NIRGraph":
            raise NirFileError(f"{path.name}: node {name!r} is a subgraph: flatten it into one graph first")
        if kind not in KNOWN:
            raise NirFileError(
                f"{path.name}: node {name!r} is a {kind}, which lava-qpsnn cannot map onto Loihi's CUBA layers "
                f"(it maps {', '.join(KNOWN)})"
            )
    order = _walk(path.name, graph.nodes, graph.edges)
    shape = array(path.name, order[0][0], order[0][1].input_type.get("input"), "input shape")
    if shape.ndim != 1 or shape.size not in (1, 3) or (shape < 1).any() or (shape != np.round(shape)).any():
        raise NirFileError(f"{path.name}: input {order[0][0]!r} has shape {shape.tolist()}: expected (F,) or (C, H, W)")
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    return NirChain(path.name, tuple(int(s) for s in shape), tuple(order[1:-1]), metadata)


def _walk(file_name: str, nodes: dict, edges: object) -> list[tuple[str, object]]:
    """The nodes from the one Input to the one Output along the edges; one line for anything but a chain."""
    inputs = [n for n, node in nodes.items() if type(node).__name__ == "Input"]
    outputs = [n for n, node in nodes.items() if type(node).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirFileError(
            f"{file_name} has {len(inputs)} Input and {len(outputs)} Output nodes: lava-qpsnn maps one of each"
        )
    targets: dict[str, list[str]] = {name: [] for name in nodes}
    for edge in edges if isinstance(edges, list | tuple) else ():
        if len(edge) != 2 or not all(isinstance(e, str) and e in nodes for e in edge):
            raise NirFileError(f"{file_name} has an edge {edge!r} between nodes it does not hold")
        targets[edge[0]].append(edge[1])
    _refuse_cycles(file_name, targets)
    sources: dict[str, str] = {}
    for source, following in targets.items():
        if len(following) > 1:
            raise NirFileError(
                f"{file_name}: node {source!r} feeds {', '.join(map(repr, following))} (a branch): "
                "lava-qpsnn maps chains of layers only"
            )
        for target in following:
            if target in sources:
                raise NirFileError(
                    f"{file_name}: node {target!r} has two inputs (a merge): lava-qpsnn maps chains only"
                )
            sources[target] = source
    order = [inputs[0]]
    while targets[order[-1]]:
        order.append(targets[order[-1]][0])
    if order[-1] != outputs[0] or len(order) != len(nodes):
        stray = next(n for n in [*nodes, outputs[0]] if n not in order)
        raise NirFileError(f"{file_name}: node {stray!r} is not on the one path from the input to the output")
    return [(name, nodes[name]) for name in order]


def _refuse_cycles(file_name: str, targets: dict[str, list[str]]) -> None:
    """One line naming an edge that closes a loop (recurrence), found by depth-first search."""
    state: dict[str, str] = {}
    for root in targets:
        stack = [(root, iter(targets[root]))]
        state[root] = state.get(root, "open")
        while stack:
            node, following = stack[-1]
            target = next(following, None)
            if target is None:
                state[node] = "done"
                stack.pop()
            elif state.get(target) == "open":
                raise NirFileError(
                    f"{file_name}: node {node!r} feeds back into {target!r} (recurrence), which lava-qpsnn "
                    "cannot map: its layers are feed-forward"
                )
            elif target not in state:
                state[target] = "open"
                stack.append((target, iter(targets[target])))


def array(file_name: str, name: str, value: object, what: str) -> np.ndarray:
    """A node's parameter as a finite float64 array; one line naming the node otherwise."""
    try:
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NirFileError(f"{file_name}: node {name!r} has a {what} that is not numbers: re-export it") from None
    if values.size == 0 or not np.isfinite(values).all():
        raise NirFileError(f"{file_name}: node {name!r} has an empty, NaN or infinite {what}: re-export it")
    return values


def uniform(file_name: str, name: str, node: object, field: str, size: int) -> float:
    """The one value of parameter ``field`` that all ``size`` neurons of ``node`` share; refused otherwise."""
    values = array(file_name, name, getattr(node, field, None), field)
    if values.size not in (1, size):
        raise NirFileError(f"{file_name}: node {name!r} has {values.size} values of {field} for {size} neurons")
    if (values != values.flat[0]).any():
        raise NirFileError(
            f"{file_name}: node {name!r} has per-neuron values of {field} (from {values.min():g} to {values.max():g}): "
            "a Loihi layer shares one neuron, so give every neuron of the layer the same value in the source"
        )
    return float(values.flat[0])


def record_of(file_name: str, name: str, metadata: object) -> dict | None:
    """Our JSON record in a node's or the graph's metadata (see :mod:`~lava_qpsnn.interchange.writer`), or None."""
    text = metadata.get("lava_qpsnn") if isinstance(metadata, dict) else None
    if text is None:
        return None
    try:
        record = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise NirFileError(f"{file_name}: {name} has damaged lava-qpsnn metadata: re-export the graph") from None
    if not isinstance(record, dict):
        raise NirFileError(f"{file_name}: {name} has lava-qpsnn metadata that is not a JSON object: re-export it")
    return record
