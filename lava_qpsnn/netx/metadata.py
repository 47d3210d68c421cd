"""What lava-qpsnn reads from and adds to a NetX HDF5 (``.net``) file.

The exporter stores, as a JSON attribute on the file's root, the data set, the spike
encoding and the number of classes, so that evaluation and deployment need nothing but
the ``.net`` file. netx ignores root attributes, so the file stays a standard NetX file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from ..data import Encoding
from ..errors import ConfigError, NetxFileError, QpsnnError
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

METADATA_ATTR = "lava_qpsnn"
METADATA_VERSION = 1


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


def write_metadata(handle: h5py.File, *, dataset: str, encoding: Encoding, num_classes: int) -> None:
    """Store what evaluation needs beside the network (see module docstring)."""
    document = {
        "version": METADATA_VERSION,
        "dataset": dataset,
        "encoding": dict(vars(encoding)),
        "num_classes": num_classes,
    }
    # fixed-length ASCII (json escapes the rest): a variable-length string would live outside any checksum
    handle.attrs[METADATA_ATTR] = np.bytes_(json.dumps(document).encode("ascii"))
    simulation = handle.create_group("simulation")
    simulation.create_dataset("Ts", data=1)
    simulation.create_dataset("tSample", data=encoding.time_steps)


def read_net_info(path: str | os.PathLike) -> NetInfo:
    """Read and check a ``.net`` file's layers (:func:`read_netx`) and its lava-qpsnn metadata against them."""
    path = Path(path)
    network = read_netx(path)
    with open_netx(path) as handle:
        try:
            raw = handle.attrs.get(METADATA_ATTR)
        except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise NetxFileError(f"{path}: unreadable lava-qpsnn metadata ({exc}): re-export the network") from None
    if raw is None:
        raise NetxFileError(
            f"{path} has no lava-qpsnn metadata (data set, encoding): export it with 'python -m netx_export'"
        )
    meta = _metadata(raw, path)
    output_size = math.prod(network.layers[-1].shape)
    if meta["num_classes"] != output_size:
        raise NetxFileError(
            f"{path}: metadata num_classes={meta['num_classes']}, but the output layer has {output_size} neurons: "
            "re-export the network"
        )
    return NetInfo(
        path=path,
        dataset=meta["dataset"],
        encoding=meta["encoding"],
        input_shape=network.input_shape,
        num_classes=meta["num_classes"],
        num_spiking_layers=sum(isinstance(layer, DenseLayer | ConvLayer) for layer in network.layers),
        network=network,
    )


def _metadata(raw: object, path: Path) -> dict:
    """The metadata attribute parsed and checked: known version, exactly the keys we write, each of its type."""

    def fail(problem: str) -> NetxFileError:
        return NetxFileError(f"{path}: damaged lava-qpsnn metadata ({problem}): re-export the network")

    try:
        meta = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError, RecursionError) as exc:
        raise fail(f"not JSON: {' '.join(str(exc).split())[:80]}") from None
    if not isinstance(meta, dict):
        raise fail(f"a JSON {type(meta).__name__}, expected an object")
    if meta.get("version") != METADATA_VERSION or isinstance(meta.get("version"), bool):
        raise NetxFileError(
            f"{path} has lava-qpsnn metadata version {meta.get('version')!r}, this lava-qpsnn reads version "
            f"{METADATA_VERSION}: re-export the network with this version"
        )
    if set(meta) != set(_METADATA_TYPES):
        raise fail(f"keys {sorted(meta)}, expected {sorted(_METADATA_TYPES)}")
    for key, kind in _METADATA_TYPES.items():
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise fail(f"{key} is {meta[key]!r}, expected a JSON {_JSON_NAMES[kind]}")
    if not meta["dataset"] or meta["num_classes"] < 1:
        raise fail(f"dataset {meta['dataset']!r} and num_classes {meta['num_classes']}: expected a name and >= 1")
    try:
        meta["encoding"] = Encoding(**meta["encoding"])
    except (QpsnnError, TypeError) as exc:
        raise fail(f"encoding: {exc}") from None
    return meta


_METADATA_TYPES = {"version": int, "dataset": str, "encoding": dict, "num_classes": int}
_JSON_NAMES = {int: "integer", str: "string", dict: "object"}


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
