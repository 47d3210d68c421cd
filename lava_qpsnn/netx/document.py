"""The lava-qpsnn metadata of a ``.net`` file: one JSON attribute on the file's root.

It holds the data set, the input encoding, the number of classes and the arguments a
``lava.lib.dl.netx.hdf5.Network`` must be built with to compute the trained network
(:func:`netx_arguments`), so that evaluation and deployment need nothing but the ``.net`` file.
netx ignores root attributes, so the file stays a standard NetX file.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ..data import Encoding
from ..errors import NetxFileError, QpsnnError

__all__ = ["METADATA_ATTR", "RESET_OFFSET", "netx_arguments", "netx_call", "write_metadata", "read_document"]

METADATA_ATTR = "lava_qpsnn"
METADATA_VERSION = 1
# every sample window restarts each layer when the sample reaches it (see lava_qpsnn.lava.run)
RESET_OFFSET = 1
_TYPES = {"version": int, "dataset": str, "encoding": dict, "num_classes": int}
_LATER = {"netx": dict}  # written since direct encoding; earlier files imply the rate-coded call
_JSON_NAMES = {int: "integer", str: "string", dict: "object"}


def netx_arguments(encoding: Encoding) -> dict[str, int]:
    """The ``netx.hdf5.Network`` keyword arguments besides ``net_config`` under which the file is the trained network.

    ``reset_interval=T, reset_offset=1`` restart every layer at each sample window (netx's defaults
    never reset: a network then runs on from one sample into the next, and a layer's bias acts before
    the input reaches it); ``input_message_bits`` makes the first synapse read graded payloads.
    """
    arguments = {"reset_interval": encoding.time_steps, "reset_offset": RESET_OFFSET}
    if encoding.graded:
        arguments["input_message_bits"] = encoding.input_message_bits
    return arguments


def netx_call(encoding: Encoding, path: str = "model.net") -> str:
    """The Python call that builds the file's network in unmodified netx, e.g. for a guide or a summary."""
    arguments = ", ".join(f"{k}={v}" for k, v in netx_arguments(encoding).items())
    return f"netx.hdf5.Network(net_config={str(path)!r}, {arguments})"


def write_metadata(handle: h5py.File, *, dataset: str, encoding: Encoding, num_classes: int) -> None:
    """Store what evaluation needs beside the network (see module docstring)."""
    document = {
        "version": METADATA_VERSION,
        "dataset": dataset,
        "encoding": dict(vars(encoding)),
        "num_classes": num_classes,
        "netx": netx_arguments(encoding),
    }
    # fixed-length ASCII (json escapes the rest): a variable-length string would live outside any checksum
    handle.attrs[METADATA_ATTR] = np.bytes_(json.dumps(document).encode("ascii"))
    simulation = handle.create_group("simulation")
    simulation.create_dataset("Ts", data=1)
    simulation.create_dataset("tSample", data=encoding.time_steps)


def read_document(handle: h5py.File, path: Path) -> dict | None:
    """The file's metadata, checked, with ``encoding`` an :class:`Encoding`; None if the file has none."""
    try:
        raw = handle.attrs.get(METADATA_ATTR)
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise NetxFileError(f"{path}: unreadable lava-qpsnn metadata ({exc}): re-export the network") from None
    return None if raw is None else _parsed(raw, path)


def _parsed(raw: object, path: Path) -> dict:
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
    if not set(_TYPES) <= set(meta) <= {*_TYPES, *_LATER}:
        raise fail(f"keys {sorted(meta)}, expected {sorted(_TYPES)} and optionally {sorted(_LATER)}")
    for key, kind in {**_TYPES, **_LATER}.items():
        if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            raise fail(f"{key} is {meta[key]!r}, expected a JSON {_JSON_NAMES[kind]}")
    if not meta["dataset"] or meta["num_classes"] < 1:
        raise fail(f"dataset {meta['dataset']!r} and num_classes {meta['num_classes']}: expected a name and >= 1")
    try:
        meta["encoding"] = Encoding(**meta["encoding"])
    except (QpsnnError, TypeError) as exc:
        raise fail(f"encoding: {exc}") from None
    expected = netx_arguments(meta["encoding"])
    if meta.setdefault("netx", expected) != expected:
        raise fail(f"netx arguments {meta['netx']} disagree with the encoding, which needs {expected}")
    return meta
