"""A ``.net`` file exported by lava-qpsnn: its layers with our metadata (:mod:`.document`), checked together.

:func:`read_net_info` gives evaluation and deployment everything they need from the file alone;
:func:`check_exported_from` tells whether a checkpoint is the one a file was exported from.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import Encoding
from ..errors import ConfigError, NetxFileError
from .document import METADATA_ATTR, netx_call, read_document, write_metadata
from .groups import open_netx
from .layers import ConvLayer, DenseLayer, NetxNetwork
from .reader import read_netx

if TYPE_CHECKING:
    from ..training.checkpoint import Checkpoint

__all__ = [
    "NetInfo",
    "check_exported_from",
    "read_net_info",
    "squeeze_shape",
    "write_metadata",
    "METADATA_ATTR",
]


@dataclass(frozen=True)
class NetInfo:
    """Summary of a ``.net`` file exported by lava-qpsnn.

    Attributes
    ----------
    input_shape : one time step of input, C-order as in the file (``(F,)`` or ``(C, H, W)``)
    num_classes : size of the output layer
    num_spiking_layers : dense and conv layers; each adds one step of latency in Lava
    network : the validated layers the metadata was checked against (read once, reused by callers)
    """

    path: Path
    dataset: str
    encoding: Encoding
    input_shape: tuple[int, ...]
    num_classes: int
    num_spiking_layers: int
    network: NetxNetwork = field(repr=False, compare=False)

    def netx_call(self) -> str:
        """The ``netx.hdf5.Network(...)`` call that builds this file as the trained network."""
        return netx_call(self.encoding, self.path.name)


def read_net_info(path: str | os.PathLike) -> NetInfo:
    """Read and check a ``.net`` file's layers (:func:`read_netx`) and its lava-qpsnn metadata against them."""
    path = Path(path)
    network = read_netx(path)
    with open_netx(path) as handle:
        meta = read_document(handle, path)
    if meta is None:
        raise NetxFileError(
            f"{path} has no lava-qpsnn metadata (data set, encoding): export it with 'python -m netx_export'"
        )
    output_size = math.prod(network.layers[-1].shape)
    if meta["num_classes"] != output_size:
        raise NetxFileError(
            f"{path}: metadata num_classes={meta['num_classes']}, but the output layer has {output_size} neurons: "
            "re-export the network"
        )
    depth = sum(isinstance(layer, DenseLayer | ConvLayer) for layer in network.layers)
    _check_window(path, network, depth, meta["encoding"].time_steps)
    return NetInfo(
        path=path,
        dataset=meta["dataset"],
        encoding=meta["encoding"],
        input_shape=network.input_shape,
        num_classes=meta["num_classes"],
        num_spiking_layers=depth,
        network=network,
    )


def _check_window(path: Path, network: NetxNetwork, depth: int, time_steps: int) -> None:
    """Refuse a window that ends before a sample's input can reach the output (one step per spiking layer, ``depth``
    of them, and the axonal delays on the quickest path): its output would not depend on the input."""
    latency = network.input_latency
    if time_steps <= latency:
        delays = f", and at least {latency - depth} steps of axonal delay on every path" if latency > depth else ""
        raise NetxFileError(
            f"{path.name}: a window of {time_steps} time steps is not longer than the network's depth ({depth} "
            f"spiking layers, one step each{delays}): no input of a sample would reach the output in its window; "
            f"export it with more than {latency} time steps"
        )


def squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing 1s (slayer's flatten is ``n x 1 x 1``, the file's ``n``), keeping one dimension."""
    shape = tuple(shape)
    while len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def check_exported_from(checkpoint: Checkpoint, info: NetInfo) -> None:
    """Refuse (one line) a checkpoint that is not the one a ``.net`` was exported from.

    ``info`` is the file as read by :func:`read_net_info`. Compared: data set, encoding, and every
    layer's shape; weights are not.
    """
    if (checkpoint.dataset, checkpoint.encoding) != (info.dataset, info.encoding):
        raise ConfigError(
            f"checkpoint ({checkpoint.dataset}, {checkpoint.encoding}) and {info.path.name} "
            f"({info.dataset}, {info.encoding}) differ: give the checkpoint the network was exported from"
        )
    expected = [squeeze_shape(checkpoint.model.input_shape), *map(squeeze_shape, checkpoint.model.shapes)]
    found = [squeeze_shape(layer.shape) for layer in info.network.layers]
    if expected != found:
        describe = ", ".join
        raise ConfigError(
            f"checkpoint layers ({describe(map(_shape_text, expected))}) and {info.path.name} layers "
            f"({describe(map(_shape_text, found))}) differ: give the checkpoint the network was exported from"
        )


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
