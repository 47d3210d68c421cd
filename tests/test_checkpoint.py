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
