"""Comparing ``.net`` files entry by entry: what an edit changed, and what netx changes on loading."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from .groups import open_netx
from .layers import DenseLayer, NetxNetwork

__all__ = ["FILE_NAMES", "file_differences", "netx_changed_weights", "datasets"]


def netx_changed_weights(path: str | os.PathLike, network: NetxNetwork) -> list[int | None]:
    """Per neuron layer: dense weights whose value netx's weight-bit optimisation changes (None: conv, pooling)."""
    out = []
    with open_netx(path) as handle:
        for index, layer in enumerate(network.layers):
            if getattr(layer, "neuron", None) is None:
                continue
            if isinstance(layer, DenseLayer):
                stored = np.asarray(handle[f"layer/{index}/weight"][()], dtype=np.float64)
                acts = np.asarray(layer.weight, dtype=np.float64) * 2.0**layer.weight_exp
                out.append(int(np.count_nonzero(acts != stored.reshape(acts.shape))))
            else:
                out.append(None)
    return out


FILE_NAMES = {  # the /layer/i entries a user knows by another name
    "neuron/vThMant": "threshold",
    "neuron/iDecay": "current decay",
    "neuron/vDecay": "voltage decay",
    "weight": "weights",
    "bias": "bias",
    "delay": "delays",
}


def file_differences(path: str | os.PathLike, exported: Path) -> list[tuple[str, ...]]:
    """Per neuron layer: the entries of the file's ``/layer/i`` that differ from the checkpoint's own export."""
    out = []
    with open_netx(path) as mine, open_netx(exported) as theirs:
        for index in range(1, len(mine["layer"])):
            a, b = mine[f"layer/{index}"], theirs[f"layer/{index}"]
            if "neuron" not in a and "neuron" not in b:
                continue
            found = []
            for key in sorted(set(datasets(a)) | set(datasets(b))):
                name = FILE_NAMES.get(key, key)
                if key not in a or key not in b:
                    found.append(f"{name} ({'only in the file' if key in a else 'missing from the file'})")
                    continue
                x, y = np.asarray(a[key][()]), np.asarray(b[key][()])
                if x.shape != y.shape or not np.array_equal(x, y):
                    same_size = x.size == y.size == 1
                    found.append(f"{name} (file {x.item()}, checkpoint {y.item()})" if same_size else name)
            out.append(tuple(found))
    return out


def datasets(group: h5py.Group) -> list[str]:
    """Every dataset below an HDF5 group, by its path relative to the group."""
    names = []
    group.visititems(lambda name, item: names.append(name) if hasattr(item, "shape") else None)
    return names
