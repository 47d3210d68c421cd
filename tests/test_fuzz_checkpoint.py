"""Damaged and edited model.pt files: each loads, or is refused in one CheckpointError line naming the file.

Mutants of a saved checkpoint: byte flips and truncations of the file, and every entry of its
data dropped or given another type. A dropped entry the format always has must be refused
(read with a default it would describe another network).
"""

import copy
import random

import pytest
import torch

from lava_qpsnn.data import Encoding
from lava_qpsnn.errors import CheckpointError
from lava_qpsnn.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig, NeuronConfig, parse_arch

# absent in older files of the format: the old default ("*": any layer)
OPTIONAL = {
    ("training", "validation"),
    ("training", "augment_shift"),
    ("encoding", "bits"),
    ("model", "neuron", "requires_grad"),
    ("model", "layers", "*", "neuron"),
    ("model", "layers", "*", "neuron", "requires_grad"),
}
RETYPED = [None, "x", -1, 2.5, True, [], {}, float("nan"), torch.zeros(2)]


def _paths(value, prefix=()):
    """Every key path of nested dicts and lists, leaves and branches alike (tensors are leaves)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _at(data, path):
    for key in path[:-1]:
        data = data[key]
    return data


def _dropped(data, path):
    parent = _at(data, path)
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return data


def _retyped(data, path, value):
    _at(data, path)[path[-1]] = value
    return data


def _outcome(path) -> str:
    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc) and path.name in str(exc), str(exc)
        return "refused"
    return "accepted"


@pytest.fixture(scope="module")
def per_layer_checkpoint() -> Checkpoint:
    """Untrained: a neuron of its own in two layers (learnable decays everywhere), BatchNorm on the output only."""
    neuron = NeuronConfig(requires_grad=True)
    config = ModelConfig(parse_arch("16t0.5-12-10bnt2", neuron=neuron), (1, 8, 8), neuron=neuron)
    net = quantize_model(build_model(config), QuantConfig(4))
    return Checkpoint.of(net, dataset="digits", encoding=Encoding(time_steps=12, seed=3))


def _pattern(path: tuple) -> tuple:
    return tuple("*" if isinstance(key, int) else key for key in path)


@pytest.fixture(scope="module")
def saved(mlp_checkpoint, tmp_path_factory):
    return save_checkpoint(mlp_checkpoint, tmp_path_factory.mktemp("fuzz") / "model.pt")


@pytest.mark.parametrize("name", ["mlp_checkpoint", "per_layer_checkpoint"])
def test_every_dropped_setting_is_refused(name, request, tmp_path):
    """Metrics are a free record and the pruning record is None here; everything else the writer stores is needed."""
    checkpoint = request.getfixturevalue(name)
    paths = [p for p in _paths(checkpoint.to_dict()) if p[0] not in ("metrics", "format", "version")]
    assert len(paths) > 30
    accepted = []
    for path in paths:
        torch.save(_dropped(copy.deepcopy(checkpoint.to_dict()), path), tmp_path / "model.pt")
        if _outcome(tmp_path / "model.pt") == "accepted":
            accepted.append(_pattern(path))
    assert set(accepted) <= OPTIONAL, accepted


@pytest.mark.parametrize("name", ["mlp_checkpoint", "per_layer_checkpoint"])
def test_every_retyped_entry_loads_or_is_refused_in_one_line(name, request, tmp_path):
    checkpoint = request.getfixturevalue(name)
    rng = random.Random(5)
    outcomes = []
    for path in _paths(checkpoint.to_dict()):
        for value in rng.sample(RETYPED, 3):
            torch.save(_retyped(copy.deepcopy(checkpoint.to_dict()), path, value), tmp_path / "model.pt")
            outcomes.append(_outcome(tmp_path / "model.pt"))  # anything but CheckpointError fails the test
    assert outcomes.count("refused") > len(outcomes) // 2, outcomes.count("refused")


def test_damaged_bytes_load_or_are_refused_in_one_line(saved, tmp_path):
    """torch's zip format checks no record's bytes on load: a flip inside the weights' data loads as other
    weights (seen here), one in the pickled settings may load as another value. What is asked here is only
    that nothing but a one-line refusal comes out of a damaged file."""
    original, rng = saved.read_bytes(), random.Random(11)
    damaged = tmp_path / "model.pt"
    outcomes = []
    for i in range(90):
        data = bytearray(original)
        if i % 3 == 0:
            data = data[: rng.randrange(len(data))]
        else:
            for at in rng.sample(range(len(data)), rng.randint(1, 8)):
                data[at] ^= rng.randrange(1, 256)
        damaged.write_bytes(bytes(data))
        outcomes.append(_outcome(damaged))
    assert outcomes.count("refused") > len(outcomes) // 2, outcomes.count("refused")
