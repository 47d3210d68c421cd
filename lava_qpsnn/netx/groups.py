"""Guarded reads of a ``.net`` file's HDF5 groups: every access checked, every failure one line.

A damaged or foreign file must never show an h5py traceback or, worse, be read as another
network: :class:`Group` wraps each HDF5 group so that every read names the file and the
``/layer/i/...`` entry on failure, and :data:`RULES` says once what each stored number must be
(type, finiteness, Lava's ranges).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import NetxFileError
from ..loihi import BIAS_MAX, BIAS_MIN, CONV_OUTPUT_LIMIT, DECAY_UNITY, VTH_MAX

__all__ = ["Rule", "RULES", "CONV_WEIGHT", "Group", "open_netx", "layer_groups"]


@dataclass(frozen=True)
class Rule:
    """What a stored number must be: an integer in ``low..high`` (``why`` names the limit).

    ``truncate``: netx reads the entry with ``.astype(int)``, so floats are truncated toward
    zero as netx does; otherwise (entries netx passes on unconverted) integers are required.
    """

    low: int
    high: int
    why: str
    truncate: bool = False


_INT32 = (1 << 31) - 1
# Every number read from a layer, checked in one place. Values netx and Lava transform
# (dense weights clipped to [-256, 254], delays clipped to 62, floats truncated) are
# accepted within int32 and transformed as they do; anything else outside is refused.
RULES = {
    "shape": Rule(1, _INT32, "layer sizes"),
    "stride": Rule(1, _INT32, "conv strides"),
    "dilation": Rule(1, _INT32, "conv dilations"),
    "padding": Rule(0, _INT32, "conv padding"),
    "groups": Rule(1, _INT32, "conv groups"),
    "vThMant": Rule(0, VTH_MAX, "Lava's 17-bit threshold"),
    "iDecay": Rule(0, DECAY_UNITY, "Lava's 12-bit decays"),
    "vDecay": Rule(0, DECAY_UNITY, "Lava's 12-bit decays"),
    "bias": Rule(BIAS_MIN, BIAS_MAX, "Lava's 13-bit bias mantissa", truncate=True),
    "delay": Rule(0, _INT32, "delays; Lava drops synapses with negative ones silently", truncate=True),
    "weight": Rule(-_INT32, _INT32, "integer weights (netx clips mixed-sign ones to [-256, 254])", truncate=True),
}
# conv weights go to Lava unclipped; one beyond Lava's 24-bit conv output cannot act as stored
CONV_WEIGHT = Rule(-CONV_OUTPUT_LIMIT + 1, CONV_OUTPUT_LIMIT - 1, "Lava's 24-bit conv output", truncate=True)
# what h5py raises for a damaged file once it is open
_H5_ERRORS = (OSError, RuntimeError, KeyError, TypeError, ValueError, AttributeError, SystemError, OverflowError)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:100] or type(exc).__name__).rstrip(".")


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _span(rule: Rule) -> str:
    if rule.high < _INT32:
        return f"{rule.low}..{rule.high}"
    return f">= {rule.low}" if rule.low > -_INT32 else f"within +-{_INT32}"


class Group:
    """An HDF5 group of a ``.net`` whose every read is guarded and checked, naming itself in errors."""

    def __init__(self, group: h5py.Group, file_name: str, name: str) -> None:
        self.group, self.file_name, self.name = group, file_name, name

    def fail(self, problem: str) -> NetxFileError:
        return NetxFileError(f"{self.file_name}: {self.name} {problem}")

    def _entry(self, key: str) -> h5py.Group | h5py.Dataset | None:
        try:
            return self.group[key] if key in self.group else None
        except _H5_ERRORS as exc:
            raise self.fail(
                f"has an unreadable '{key}' entry ({_reason(exc)}): re-export or re-copy the file"
            ) from None

    def has(self, key: str) -> bool:
        return self._entry(key) is not None

    def keys(self) -> list[str]:
        try:
            names = list(self.group.keys())
        except _H5_ERRORS as exc:
            raise self.fail(f"cannot be listed ({_reason(exc)}): re-export or re-copy the file") from None
        for name in names:
            if not isinstance(name, str):  # h5py gives names that are not UTF-8 as bytes
                raise self.fail(f"has an entry named {name!r}, not text: re-export or re-copy the file")
        return names

    def child(self, key: str) -> Group:
        entry = self._entry(key)
        if entry is None:
            raise self.fail(f"has no '{key}' group, which netx requires: re-export the network")
        if not isinstance(entry, h5py.Group):
            raise self.fail(f"has a dataset '{key}' where netx expects a group: re-export the network")
        return Group(entry, self.file_name, f"{self.name.rstrip('/')}/{key}")

    def raw(self, key: str) -> np.ndarray:
        entry = self._entry(key)
        if entry is None:
            raise self.fail(f"has no '{key}' entry, which netx requires: re-export the layer")
        if not isinstance(entry, h5py.Dataset):
            raise self.fail(f"has a group '{key}' where netx expects a dataset: re-export the layer")
        try:
            return np.asarray(entry[()])
        except _H5_ERRORS as exc:
            raise self.fail(f"has an unreadable '{key}' ({_reason(exc)}): re-export or re-copy the file") from None

    def text(self, key: str) -> str:
        """A name such as ``type``: one ASCII string, as netx's ``decode('ascii')`` reads it."""
        value = self.raw(key)
        item = value.reshape(-1)[0] if value.size == 1 and value.ndim <= 1 else None
        if isinstance(item, bytes):
            item = item.decode("ascii", errors="replace")
        if not isinstance(item, str):
            raise self.fail(f"has {key} of type {value.dtype} and shape {value.shape}: expected one string")
        if not item or not item.isascii() or not item.isprintable():
            raise self.fail(f"has {key} {item!r}: expected a non-empty ASCII name")
        return item

    def ints(self, key: str, rule: Rule | None = None) -> np.ndarray:
        """The entry as int64, checked against ``rule`` (default ``RULES[key]``)."""
        rule = rule or RULES[key]
        value = self.raw(key)
        stored = value.dtype
        if stored.kind not in "iuf":
            raise self.fail(f"has {key} of type {stored}: expected {rule.why} as numbers")
        if value.size == 0:
            raise self.fail(f"has an empty {key}: expected {rule.why}")
        if value.dtype.kind == "f":
            if not np.isfinite(value).all():
                raise self.fail(f"has {key} with NaN or infinite values: expected {rule.why} as finite numbers")
            whole = np.trunc(value)
            if not rule.truncate and (whole != value).any():
                raise self.fail(f"has {key}={_show(value[whole != value][0])}: expected integers")
            value = whole
        if not rule.truncate and stored.kind != "i":  # Lava's shifts and slices fail on floats and uint64
            raise self.fail(f"has {key} of type {stored}, netx passes it to Lava as it is: store integers")
        low, high = value.min(), value.max()
        if low < rule.low or high > rule.high:
            found = low if low < rule.low else high
            raise self.fail(f"has {key}={_show(found)}: expected {_span(rule)} ({rule.why})")
        return value.astype(np.int64)

    def scalar(self, key: str, *, bare: bool = False) -> int:
        """One number; ``bare``: stored as a scalar, not a list of one (netx passes it to Lava as it is)."""
        value = self.ints(key)
        if value.size != 1 or value.ndim > (0 if bare else 1):
            raise self.fail(f"has {key} of shape {value.shape}: expected one number{' (a scalar)' if bare else ''}")
        return int(value.reshape(-1)[0])

    def pair(self, key: str) -> tuple[int, int]:
        """A conv argument, a scalar or ``(y, x)`` (netx reverses a list and indexes two entries)."""
        value = self.ints(key)
        if value.shape not in ((), (2,)):
            raise self.fail(f"has {key} {value.tolist()}: expected one integer (a scalar) or two")
        value = value.reshape(-1)
        return (int(value[0]), int(value[-1]))

    def shape(self, *, listed: bool = False) -> tuple[int, ...]:
        """``(F,)`` or ``(C, H, W)``; ``listed``: stored as a list, for the layers whose shape netx reverses."""
        value = self.ints("shape")
        if listed and value.ndim != 1:
            raise self.fail(f"has a shape of {value.ndim} dimensions, which netx cannot reverse: store it as a list")
        if value.ndim > 1 or value.size not in (1, 3):
            raise self.fail(f"has shape {value.tolist()}: expected (F,) or (C, H, W)")
        return tuple(int(s) for s in value.reshape(-1))


@contextlib.contextmanager
def open_netx(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a ``.net`` for reading, with one-line errors for a missing, non-HDF5 or non-NetX file."""
    path = Path(path)
    if not path.is_file():
        raise NetxFileError(f"no network file at {path}: export one with 'python -m netx_export model.pt'")
    try:
        if not h5py.is_hdf5(path):
            raise NetxFileError(f"{path} is not an HDF5 file: give a NetX .net file (e.g. written by netx_export)")
        handle = h5py.File(path, "r")
    except _H5_ERRORS as exc:  # e.g. a truncated copy
        reason = str(exc).split(" (")[-1].rstrip(")") if " (" in str(exc) else _reason(exc)
        raise NetxFileError(f"{path} cannot be read as HDF5 ({reason}): re-export or re-copy it") from None
    with handle:
        root = Group(handle, path.name, "/")
        if not root.has("layer") or not root.child("layer").has("0"):
            raise NetxFileError(f"{path.name} has no /layer/0 group: it is not a NetX network file")
        yield handle


def layer_groups(handle: h5py.File, file_name: str) -> list[Group]:
    """``/layer/0 .. /layer/N-1`` in order; one-line error for gaps or foreign names."""
    layers = Group(handle, file_name, "/").child("layer")
    names = sorted(layers.keys(), key=lambda k: (len(k), k))  # numeric order for decimal names
    if names != [str(i) for i in range(len(names))]:
        raise NetxFileError(
            f"{file_name}: layer groups must be /layer/0../layer/N-1 without gaps, found {', '.join(names)}"
        )
    return [layers.child(name) for name in names]
