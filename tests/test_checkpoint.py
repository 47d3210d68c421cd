import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from lava_qpsnn.data import encode_test_split, load_dataset
from lava_qpsnn.errors import CheckpointError, OutputPathError
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.training.checkpoint import VERSION, load_checkpoint, save_checkpoint
from lava_qpsnn.training.loop import output_spikes


def test_round_trip_rebuilds_the_same_network(mlp_checkpoint, tmp_path):
    path = save_checkpoint(mlp_checkpoint, tmp_path / "model.pt")
    loaded = load_checkpoint(path)
    assert loaded.model == mlp_checkpoint.model
    assert loaded.encoding == mlp_checkpoint.encoding and loaded.dataset == "digits"
    assert loaded.metrics == mlp_checkpoint.metrics
    _, test = load_dataset("digits")
    spikes = encode_test_split(test, loaded.encoding)[:20]
    np.testing.assert_array_equal(output_spikes(loaded.build(), spikes), output_spikes(mlp_checkpoint.build(), spikes))


def test_save_refuses_to_overwrite_without_force(mlp_checkpoint, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"good file")
    with pytest.raises(OutputPathError, match=r"exists: allow replacing it \(force\)"):
        save_checkpoint(mlp_checkpoint, path)
    assert path.read_bytes() == b"good file"
    save_checkpoint(mlp_checkpoint, path, force=True)
    assert load_checkpoint(path).model == mlp_checkpoint.model
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*: give the path of a model.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_file(mlp_checkpoint, tmp_path):
    good = save_checkpoint(mlp_checkpoint, tmp_path / "good.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable lava-qpsnn checkpoint"):
        load_checkpoint(bad)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(text)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a lava-qpsnn checkpoint"):
        load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="not a lava-qpsnn checkpoint"):
        load_checkpoint(path)


def test_other_format_version(mlp_checkpoint, tmp_path):
    path = tmp_path / "future.pt"
    data = mlp_checkpoint.to_dict() | {"version": VERSION + 1}
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(path)


def test_damaged_entries(mlp_checkpoint, tmp_path):
    path = tmp_path / "damaged.pt"
    data = mlp_checkpoint.to_dict()
    del data["encoding"]
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)
    data = mlp_checkpoint.to_dict()
    data["model"]["norm"] = "layernorm"
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="invalid settings.*unknown normalization"):
        load_checkpoint(path)
    data = mlp_checkpoint.to_dict()
    data["state_dict"] = {"blocks.0.synapse.weight": torch.zeros(1)}
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="do not fit its model"):
        load_checkpoint(path).build()


@pytest.mark.parametrize("grid", ["zero-free", "symmetric"])
def test_quantization_settings_round_trip(grid, quantized_checkpoints, tmp_path):
    checkpoint = quantized_checkpoints[2, grid]
    loaded = load_checkpoint(save_checkpoint(checkpoint, tmp_path / "q.pt"))
    assert loaded.quant == checkpoint.quant and loaded.quant.grid == grid
    _, test = load_dataset("digits")
    spikes = encode_test_split(test, loaded.encoding)[:20]
    np.testing.assert_array_equal(
        output_spikes(fixed_point_model(loaded), spikes), output_spikes(fixed_point_model(checkpoint), spikes)
    )


@pytest.mark.parametrize(
    "path",
    [
        ("quant",),
        ("quant", "grid"),
        ("quant", "bits"),
        ("scales",),
        ("encoding", "time_steps"),
        ("encoding", "seed"),
        ("model", "norm"),
        ("model", "neuron", "threshold"),
        ("model", "layers", 0, "features"),
        ("training", "lr"),
        ("metrics",),
    ],
)
def test_every_setting_a_checkpoint_always_has_is_required(path, quantized_checkpoints, tmp_path):
    """A dropped setting is not read as its default: that would be another network than the one trained."""
    data = quantized_checkpoints[2, "zero-free"].to_dict()
    record = data
    for key in path[:-1]:
        record = record[key]
    del record[path[-1]]
    torch.save(data, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=rf"m.pt is damaged .*'{path[-1]}'") as info:
        load_checkpoint(tmp_path / "m.pt")
    assert "\n" not in str(info.value)


def test_a_checkpoint_from_before_held_out_validation_loads():
    """``training.validation`` came later in format version 2: the shipped model lacks it and means none."""
    shipped = Path(__file__).parents[1] / "models" / "mnist" / "mnist-4bit-svs50.pt"
    assert "validation" not in torch.load(shipped, weights_only=True)["training"]
    assert load_checkpoint(shipped).training.validation is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"quant": None}, r"has quantizer scales but no 'quant'"),
        ({"scales": None}, r"has 'quant' but no quantizer scales"),
    ],
)
def test_settings_that_contradict_the_weights_are_refused(change, message, quantized_checkpoints, tmp_path):
    torch.save(quantized_checkpoints[4, "symmetric"].to_dict() | change, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "m.pt")


def test_a_pruning_record_that_contradicts_the_weights_is_refused(pruned_conv_checkpoint, tmp_path):
    data = copy.deepcopy(pruned_conv_checkpoint.to_dict())  # to_dict shares the checkpoint's records
    assert data["pruning"]["kept_channels"][0] and data["pruning"]["widths_before"][0] == 4
    for kept in ([0], [3, 1], [0, 4], [2, 2]):  # too few; unordered; beyond the 4 channels; repeated
        data["pruning"]["kept_channels"][0] = kept
        torch.save(data, tmp_path / "m.pt")
        with pytest.raises(CheckpointError, match=r"kept channels of layer 0 are not 2 distinct ones of its 4"):
            load_checkpoint(tmp_path / "m.pt")
