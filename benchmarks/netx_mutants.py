"""Seeded mutants of a ``.net`` file, to show that reading one never ends in anything but a
network or one :class:`~lava_qpsnn.errors.NetxFileError` line.

:func:`mutants` derives damaged copies of a valid file in three equal shares: truncation,
byte flips, and structured h5py edits (a value replaced by NaN, infinity, a huge number, a
string, an empty, boolean or compound array; a scalar turned into a vector or back; an entry,
a layer or the metadata deleted, moved, retyped or edited); :func:`byte_sweep` damages each
byte of a file in turn. :func:`outcome` reads a file as
the commands do (:func:`~lava_qpsnn.netx.metadata.read_net_info`, :func:`read_netx`) and
simulates two samples. :func:`run_isolated` does that for every mutant in a worker process,
so that a crash of the HDF5 C library itself (some damaged files make it segfault, which no
Python code can catch) or a hang is counted rather than ending the caller.
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lava_qpsnn.errors import NetxFileError
from lava_qpsnn.netx import read_net_info, read_netx
from lava_qpsnn.netx.metadata import METADATA_ATTR
from lava_qpsnn.sim import simulate

__all__ = ["Mutant", "mutants", "byte_sweep", "outcome", "run_isolated", "KINDS"]

KINDS = ("truncate", "flip", "edit")


@dataclass(frozen=True)
class Mutant:
    kind: str  # one of KINDS, or "sweep"
    description: str
    data: bytes


def mutants(path: str | os.PathLike, count: int, seed: int) -> Iterator[Mutant]:
    """``count`` mutants of the file at ``path``, the same for the same ``seed``."""
    original = Path(path).read_bytes()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "mutant.net"
        for i in range(count):
            kind = KINDS[i % len(KINDS)]
            if kind == "truncate":
                size = rng.randrange(len(original))
                yield Mutant(kind, f"truncated to {size} of {len(original)} bytes", original[:size])
            elif kind == "flip":
                data, where = bytearray(original), sorted(rng.sample(range(len(original)), rng.randint(1, 8)))
                for at in where:
                    data[at] ^= rng.randrange(1, 256)
                yield Mutant(kind, f"bytes flipped at {where}", bytes(data))
            else:
                scratch.write_bytes(original)
                with h5py.File(scratch, "a") as handle:
                    description = _edit(handle, rng)
                yield Mutant(kind, description, scratch.read_bytes())


def byte_sweep(path: str | os.PathLike) -> Iterator[Mutant]:
    """One mutant per byte of the file at ``path``, that byte inverted: every single-byte damage."""
    original = Path(path).read_bytes()
    for at in range(len(original)):
        data = bytearray(original)
        data[at] ^= 0xFF
        yield Mutant("sweep", f"byte {at} inverted", bytes(data))


def outcome(path: str | os.PathLike, steps: int = 5) -> str | None:
    """None if the file reads and simulates; the one-line message if it is refused. Anything else raises."""
    try:
        read_net_info(path)
        network = read_netx(path)
        spikes = np.random.default_rng(0).random((2, *network.input_shape, steps)) < 0.3
        simulate(network, spikes)
    except NetxFileError as exc:
        return str(exc)
    return None


def run_isolated(batch: Sequence[Mutant], name: str, *, timeout: float = 120.0) -> Iterator[tuple[Mutant, str]]:
    """Each mutant, written as a file called ``name``, with its outcome computed in a worker process.

    Outcomes: ``accepted``, ``refused: <message>``, ``exception: <type>: <message>`` (a bug),
    ``crash: signal N`` (the worker died) or ``hang`` (no answer within ``timeout`` seconds,
    the worker's start-up included). A new worker continues after a crash or a hang. Mutants
    keep the original file's name, which every refusal must give.
    """
    with tempfile.TemporaryDirectory() as folder:
        for i, mutant in enumerate(batch):
            (Path(folder) / str(i)).mkdir()
            (Path(folder) / str(i) / name).write_bytes(mutant.data)
        start = 0
        while start < len(batch):
            command = [sys.executable, __file__, folder, name, str(start), str(len(batch))]
            worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            with worker:
                for i in range(start, len(batch)):
                    answer = _answer(worker, timeout)
                    if answer is None:
                        worker.kill()
                        worker.wait()
                        failed = "hang" if worker.returncode == -9 else f"crash: signal {-worker.returncode}"
                        yield batch[i], failed
                        start = i + 1
                        break
                    yield batch[i], answer
                else:
                    start = len(batch)


def _answer(worker: subprocess.Popen, timeout: float) -> str | None:
    """The worker's next outcome line, or None if it died or stayed silent for ``timeout`` seconds."""
    while select.select([worker.stdout], [], [], timeout)[0]:
        line = worker.stdout.readline()
        if not line:
            return None
        if line.startswith("> "):  # ours; anything else is a library's chatter
            return line[2:].rstrip("\n")
    return None


def _worker(folder: str, name: str, start: int, stop: int) -> None:
    for i in range(start, stop):
        try:
            message = outcome(Path(folder) / str(i) / name)
            result = "accepted" if message is None else f"refused: {message}"
        except Exception as exc:  # the point of the run: any other exception is reported, not raised
            result = f"exception: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        print(f"> {result}", flush=True)


# ---------------------------------------------------------------- structured edits

_NAMES = ["", "dense", "conv", "flatten", "input", "pool", "average", "dense_rec", "CUBA", "LOIHI", "SDNN", "x" * 40]
_VALUES: dict[str, Callable[[np.ndarray, random.Random], np.ndarray]] = {
    "NaN": lambda v, r: _with(v, np.nan),
    "infinity": lambda v, r: _with(v, r.choice([np.inf, -np.inf])),
    "huge": lambda v, r: _numbers(v) * 1e30 + 1e30,
    "string": lambda v, r: np.array(b"abc"),
    "non-ASCII string": lambda v, r: np.array("\u00e9t\u00e9", dtype=h5py.string_dtype()),
    "empty": lambda v, r: np.zeros((0,)),
    "boolean": lambda v, r: _numbers(v).astype(bool),
    "compound": lambda v, r: np.zeros(max(v.size, 1), dtype=[("a", "<i4"), ("b", "<f4")]),
    "vector": lambda v, r: np.repeat(v.reshape(-1), 3),
    "first element": lambda v, r: v.reshape(-1)[:1],
    "negated": lambda v, r: -_numbers(v),
    "zeros": lambda v, r: np.zeros_like(_numbers(v)),
    "plus 0.5": lambda v, r: _numbers(v) + 0.5,
    "random integer": lambda v, r: np.array(r.randint(-(1 << 20), 1 << 20)),
    "times a random integer": lambda v, r: _numbers(v) * r.randint(-300, 300),
    "one more dimension": lambda v, r: v.reshape(1, *v.shape),
    "transposed": lambda v, r: v.T,
    "a name": lambda v, r: np.array(r.choice(_NAMES).encode()),
}
_METADATA: dict[str, Callable[[dict, random.Random], object]] = {
    "num_classes + 1": lambda m, r: m | {"num_classes": m["num_classes"] + 1},
    "num_classes as a string": lambda m, r: m | {"num_classes": str(m["num_classes"])},
    "version 2": lambda m, r: m | {"version": 2},
    "seed -1": lambda m, r: m | {"encoding": m["encoding"] | {"seed": -1}},
    "seed 'x'": lambda m, r: m | {"encoding": m["encoding"] | {"seed": "x"}},
    "time_steps 0": lambda m, r: m | {"encoding": m["encoding"] | {"time_steps": 0}},
    "time_steps 2.5": lambda m, r: m | {"encoding": m["encoding"] | {"time_steps": 2.5}},
    "encoding kind 'poisson'": lambda m, r: m | {"encoding": m["encoding"] | {"kind": "poisson"}},
    "empty dataset": lambda m, r: m | {"dataset": ""},
    "an extra key": lambda m, r: m | {"extra": 1},
    "a list": lambda m, r: [m],
}


def _numbers(value: np.ndarray) -> np.ndarray:
    """``value`` as float64; a name becomes one number."""
    return value.astype(np.float64) if value.dtype.kind in "biuf" else np.ones(1)


def _with(value: np.ndarray, special: float) -> np.ndarray:
    out = _numbers(value).copy()
    out.reshape(-1)[0] = special
    return out


def _edit(handle: h5py.File, rng: random.Random) -> str:
    """One random structured edit of an open file; returns what it did."""
    datasets: list[str] = []
    groups: list[str] = []
    handle["layer"].visititems(
        lambda name, obj: (datasets if isinstance(obj, h5py.Dataset) else groups).append(f"layer/{name}")
    )
    layers = sorted(handle["layer"].keys(), key=int)
    op = rng.choice(["value"] * 6 + ["delete", "group for dataset", "dataset for group", "layer", "add", "metadata"])
    if op == "value":
        name, change = rng.choice(datasets), rng.choice(list(_VALUES))
        value = _VALUES[change](np.asarray(handle[name][()]), rng)
        del handle[name]
        handle.create_dataset(name, data=value)
        return f"edit /{name}: {change}"
    if op == "delete":
        name = rng.choice(datasets + groups)
        del handle[name]
        return f"edit /{name}: deleted"
    if op == "group for dataset":
        name = rng.choice(datasets)
        del handle[name]
        handle.create_group(name)
        return f"edit /{name}: a group where a dataset was"
    if op == "dataset for group":
        name = rng.choice(groups + ["layer"])
        del handle[name]
        handle[name] = np.arange(3)
        return f"edit /{name}: a dataset where a group was"
    if op == "layer":
        i, j = rng.sample(layers, 2) if len(layers) > 1 else (layers[0], layers[0])
        how = rng.choice(["swapped", "moved", "deleted last"])
        if how == "swapped":
            handle.move(f"layer/{i}", "layer/tmp")
            handle.move(f"layer/{j}", f"layer/{i}")
            handle.move("layer/tmp", f"layer/{j}")
            return f"edit /layer/{i} and /layer/{j}: swapped"
        if how == "moved":
            handle.move(f"layer/{i}", f"layer/{len(layers) + 3}")
            return f"edit /layer/{i}: moved to /layer/{len(layers) + 3}"
        del handle[f"layer/{layers[-1]}"]
        return f"edit /layer/{layers[-1]}: deleted"
    if op == "add":
        layer = f"layer/{rng.choice(layers)}"
        key = rng.choice(["delay", "bias", "neuron/messageBits", "delay"])
        if key in handle[layer]:
            del handle[f"{layer}/{key}"]
        shape = rng.choice([(), (1,), (rng.randint(1, 20),), (rng.randint(1, 20), rng.randint(1, 130))])
        handle[f"{layer}/{key}"] = np.random.default_rng(rng.randrange(1 << 30)).integers(-5, 70, size=shape)
        return f"edit /{layer}/{key}: added, shape {shape}"
    change = rng.choice([*_METADATA, "deleted", "not JSON"])
    if change == "deleted":
        del handle.attrs[METADATA_ATTR]
    elif change == "not JSON":
        handle.attrs[METADATA_ATTR] = "{not json"
    else:
        handle.attrs[METADATA_ATTR] = json.dumps(_METADATA[change](json.loads(handle.attrs[METADATA_ATTR]), rng))
    return f"edit metadata: {change}"


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
