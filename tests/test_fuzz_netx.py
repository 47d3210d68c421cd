"""Damaged and edited .net files: each reads and simulates, or is refused in one NetxFileError line."""

import json
from collections import Counter

import h5py
import numpy as np
import pytest
from netx_mutants import KINDS, mutants, run_isolated

from lava_qpsnn.errors import NetxFileError
from lava_qpsnn.netx import read_netx
from lava_qpsnn.netx.metadata import METADATA_ATTR, read_net_info


def test_every_mutant_is_a_network_or_a_one_line_refusal(conv_net, tmp_path):
    """150 seeded mutants (truncations, byte flips, structured h5py edits) of an exported conv net."""
    results = list(run_isolated(list(mutants(conv_net, 150, seed=7)), conv_net.name))
    outcomes = Counter((mutant.kind, result.split(":")[0]) for mutant, result in results)
    wrong = [
        (mutant.description, result)
        for mutant, result in results
        if result.split(":")[0] not in ("accepted", "refused")
    ]
    assert not wrong, wrong
    for _, result in results:
        if result.startswith("refused: "):
            assert "\n" not in result and conv_net.name in result, result
    assert all(outcomes[kind, "refused"] > 0 for kind in KINDS), outcomes
    assert outcomes["edit", "accepted"] > 0, outcomes
    original = _fields(read_netx(conv_net))
    for mutant, result in results:  # every byte HDF5 reads is checksummed: damage that reads is damage to nothing
        if mutant.kind == "flip" and result == "accepted":
            damaged = tmp_path / conv_net.name
            damaged.write_bytes(mutant.data)
            assert _fields(read_netx(damaged)) == original, mutant.description


def _fields(network) -> list:
    """Every value of every layer and neuron of a read network, as plain comparable data."""

    def plain(value):
        if isinstance(value, np.ndarray):
            return (value.dtype.str, value.shape, value.tobytes())
        if hasattr(value, "__dataclass_fields__"):
            return [(name, plain(getattr(value, name))) for name in value.__dataclass_fields__]
        return value

    return [plain(layer) for layer in network.layers]


META = {"version": 1, "dataset": "digits", "encoding": {"time_steps": 4, "seed": 0, "kind": "rate"}, "num_classes": 3}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_classes": 4}, r"num_classes=4, but the output layer has 3 neurons"),
        ({"version": 2}, r"metadata version 2, this lava-qpsnn reads version 1"),
        ({"encoding": {**META["encoding"], "seed": -1}}, r"seed must be an integer >= 0, got -1"),
        ({"encoding": {**META["encoding"], "seed": "x"}}, r"seed must be an integer >= 0, got 'x'"),
        ({"num_classes": 3.0}, r"num_classes is 3.0, expected a JSON integer"),
        ({"extra": 1}, r"keys \['dataset', 'encoding', 'extra', 'num_classes', 'version'\]"),
    ],
)
def test_metadata_is_checked_against_the_network(tmp_path, change, message):
    path = tmp_path / "meta.net"
    with h5py.File(path, "w") as handle:
        handle["layer/0/type"], handle["layer/0/shape"] = np.array([b"input"]), np.array([4])
        handle["layer/1/type"], handle["layer/1/shape"] = np.array([b"dense"]), np.array([3])
        handle["layer/1/weight"] = np.ones((3, 4))
        handle.attrs[METADATA_ATTR] = json.dumps(META)
    assert read_net_info(path).num_classes == 3
    with h5py.File(path, "a") as handle:
        handle.attrs[METADATA_ATTR] = json.dumps({**META, **change})
    with pytest.raises(NetxFileError, match=message) as info:
        read_net_info(path)
    assert "\n" not in str(info.value)


def _edited(source, tmp_path, entry, value):
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "a") as handle:
        if entry in handle:
            del handle[entry]
        handle[entry] = value
    return path


# entries netx passes on or broadcasts in ways Lava cannot build or run (found by running edited files in Lava)
UNBUILDABLE = [
    ("mlp", "layer/1/bias", np.zeros((32, 1), np.int16), r"bias of shape \(32, 1\), which netx cannot broadcast"),
    ("mlp", "layer/1/neuron/iDecay", np.float64(4096), r"iDecay of type float64, netx passes it to Lava as it is"),
    ("mlp", "layer/1/neuron/vThMant", np.uint64(100), r"vThMant of type uint64"),
    ("mlp", "layer/1/shape", np.array([32], np.uint16), r"shape of type uint16"),
    ("mlp", "layer/0/shape", np.int64(64), r"a shape of 0 dimensions, which netx cannot reverse"),
    ("conv", "layer/1/stride", np.array([1]), r"stride \[1\]: expected one integer \(a scalar\) or two"),
    ("conv", "layer/1/groups", np.array([1]), r"groups of shape \(1,\): expected one number \(a scalar\)"),
]


@pytest.mark.parametrize("net, entry, value, message", UNBUILDABLE, ids=[case[1] for case in UNBUILDABLE])
def test_what_netx_cannot_build_is_refused(mlp_files, conv_net, tmp_path, net, entry, value, message):
    path = _edited(mlp_files[1] if net == "mlp" else conv_net, tmp_path, entry, value)
    with pytest.raises(NetxFileError, match=message) as info:
        read_netx(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


def test_a_bias_netx_broadcasts_runs_in_lava_as_read(mlp_files, tmp_path):
    """A (1, 32) bias is assigned to Lava's (32,) Var as its builder does: Lava's spikes are the simulator's."""
    from lava_qpsnn.lava.run import run_lava
    from lava_qpsnn.sim import simulate

    path = _edited(mlp_files[1], tmp_path, "layer/1/bias", np.arange(-16, 16, dtype=np.int16).reshape(1, 32) * 40)
    network = read_netx(path)
    spikes = np.random.default_rng(1).random((2, *network.input_shape, read_net_info(path).encoding.time_steps)) < 0.3
    np.testing.assert_array_equal(run_lava(path, spikes, progress=False), simulate(network, spikes))
