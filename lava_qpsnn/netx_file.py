"""What lava-qpsnn reads from and adds to a NetX HDF5 (``.net``) file.

The exporter stores, as a JSON attribute on the file's root, the data set, the spike
encoding and the number of classes, so that evaluation and deployment need nothing but
the ``.net`` file. netx ignores root attributes, so the file stays a standard NetX file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .data import Encoding
from .errors import NetxFileError

__all__ = ["NetInfo", "open_netx", "read_net_info", "write_metadata", "METADATA_ATTR"]

METADATA_ATTR = "lava_qpsnn"
METADATA_VERSION = 1
SPIKING_LAYER_TYPES = ("dense", "conv")


@dataclass(frozen=True)
class NetInfo:
    """Summary of a ``.net`` file exported by lava-qpsnn.

    Attributes
    ----------
    input_shape : one time step of input, C-order as in the file (``(F,)`` or ``(C, H, W)``)
    num_classes : size of the output layer
    num_spiking_layers : dense and conv layers; each adds one step of latency in Lava
    """

    path: Path
    dataset: str
    encoding: Encoding
    input_shape: tuple[int, ...]
    num_classes: int
    num_spiking_layers: int


def write_metadata(handle: h5py.File, *, dataset: str, encoding: Encoding, num_classes: int) -> None:
    """Store what evaluation needs beside the network (see module docstring)."""
    handle.attrs[METADATA_ATTR] = json.dumps(
        {
            "version": METADATA_VERSION,
            "dataset": dataset,
            "encoding": dict(vars(encoding)),
            "num_classes": num_classes,
        }
    )
    simulation = handle.create_group("simulation")
    simulation.create_dataset("Ts", data=1)
    simulation.create_dataset("tSample", data=encoding.time_steps)


@contextlib.contextmanager
def open_netx(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a ``.net`` for reading, with one-line errors for a missing, non-HDF5 or non-NetX file."""
    path = Path(path)
    if not path.is_file():
        raise NetxFileError(f"no network file at {path}: export one with 'python -m netx_export model.pt'")
    if not h5py.is_hdf5(path):
        raise NetxFileError(f"{path} is not an HDF5 file: give a NetX .net file (e.g. written by netx_export)")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:  # e.g. a truncated copy
        reason = str(exc).split(" (")[-1].rstrip(")") if " (" in str(exc) else str(exc)
        raise NetxFileError(f"{path} cannot be read as HDF5 ({reason}): re-export or re-copy it") from None
    with handle:
        if "layer" not in handle or "0" not in handle["layer"]:
            raise NetxFileError(f"{path.name} has no /layer/0 group: it is not a NetX network file")
        yield handle


def read_net_info(path: str | os.PathLike) -> NetInfo:
    """Read and check a ``.net`` file's layers and lava-qpsnn metadata."""
    path = Path(path)
    with open_netx(path) as handle:
        layers = handle["layer"]
        types = [_layer_type(layers, str(i), path) for i in range(len(layers))]
        if types[0] != "input" or "shape" not in layers["0"]:
            raise NetxFileError(f"{path}: /layer/0 must be an input layer with a shape, found {types[0]!r}")
        input_shape = tuple(int(s) for s in np.atleast_1d(layers["0"]["shape"][()]))
        raw = handle.attrs.get(METADATA_ATTR)
    if raw is None:
        raise NetxFileError(
            f"{path} has no lava-qpsnn metadata (data set, encoding): export it with 'python -m netx_export'"
        )
    try:
        meta = json.loads(raw)
        encoding = Encoding(**meta["encoding"])
        return NetInfo(
            path=path,
            dataset=str(meta["dataset"]),
            encoding=encoding,
            input_shape=input_shape,
            num_classes=int(meta["num_classes"]),
            num_spiking_layers=sum(t in SPIKING_LAYER_TYPES for t in types),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise NetxFileError(f"{path}: damaged lava-qpsnn metadata ({exc}): re-export the network") from None


def _layer_type(layers: h5py.Group, name: str, path: Path) -> str:
    if name not in layers or "type" not in layers[name]:
        raise NetxFileError(
            f"{path}: layer groups must be numbered 0..N-1 with a 'type'; /layer/{name} is missing or has none"
        )
    raw = layers[name]["type"][()]
    value = raw[0] if np.ndim(raw) else raw
    return value.decode("ascii") if isinstance(value, bytes) else str(value)
