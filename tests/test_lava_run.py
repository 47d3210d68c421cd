"""Spike-exact agreement between the PyTorch (slayer) model and Lava's fixed_pt run."""

import numpy as np
import pytest

from lava_qpsnn.data import encode_test_split, load_dataset
from lava_qpsnn.errors import DataError, NetxFileError
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.lava.run import _from_lava_layout, run_lava, to_lava_layout
from lava_qpsnn.training.loop import output_spikes


def _first_test_samples(encoding, count):
    _, test = load_dataset("digits")
    return encode_test_split(test, encoding)[:count]


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_lava_output_spikes_equal_pytorch(which, mlp_checkpoint, mlp_files, conv_checkpoint, conv_net):
    checkpoint, net = (mlp_checkpoint, mlp_files[1]) if which == "mlp" else (conv_checkpoint, conv_net)
    spikes = _first_test_samples(checkpoint.encoding, 3)
    expected = output_spikes(checkpoint.build(), spikes)
    got = run_lava(net, spikes, samples_per_run=2, progress=False)
    assert expected.sum() > 0, "the test needs output spikes to compare"
    np.testing.assert_array_equal(got, expected)


def test_an_all_zero_sample_between_others_stays_exact(mlp_checkpoint, mlp_files):
    spikes = _first_test_samples(mlp_checkpoint.encoding, 3)
    spikes[1] = 0
    expected = output_spikes(mlp_checkpoint.build(), spikes)
    np.testing.assert_array_equal(run_lava(mlp_files[1], spikes, progress=False), expected)


def test_lava_layout_reverses_spatial_axes_and_concatenates_samples():
    spikes = np.arange(2 * 3 * 4 * 5 * 2).reshape(2, 3, 4, 5, 2)  # N, C, H, W, T
    lava = to_lava_layout(spikes)
    assert lava.shape == (5, 4, 3, 4)
    assert lava[4, 3, 2, 3] == spikes[1, 2, 3, 4, 1]
    assert lava[1, 2, 0, 0] == spikes[0, 0, 2, 1, 0]


@pytest.mark.parametrize("shape", [(3, 4, 5), (7,)])
def test_every_layer_read_back_from_lava_is_in_slayer_layout(shape):
    """The inverse of the input layout (hand-indexed above), with the steps before the layer's latency zeroed."""
    spikes = np.random.default_rng(0).integers(0, 2, (2, *shape, 6)).astype(np.int8)
    back = _from_lava_layout(to_lava_layout(spikes), count=2, steps=6, latency=2)
    np.testing.assert_array_equal(back[..., 2:], spikes[..., 2:])
    assert not back[..., :2].any()


def test_every_layer_in_lava_matches_slayer(mlp_checkpoint, mlp_files):
    spikes = _first_test_samples(mlp_checkpoint.encoding, 3)
    layers = run_lava(mlp_files[1], spikes, progress=False, layers=True)
    expected = output_spikes(fixed_point_model(mlp_checkpoint), spikes, layers=True)
    assert [a.shape for a in layers] == [b.shape for b in expected] and expected[0].any()
    for a, b in zip(layers, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_wrong_input_shape(mlp_files):
    with pytest.raises(DataError, match="do not fit"):
        run_lava(mlp_files[1], np.zeros((2, 63, 12)), progress=False)


def test_not_an_hdf5_file(tmp_path):
    bad = tmp_path / "model.net"
    bad.write_text("not hdf5")
    with pytest.raises(NetxFileError, match="not an HDF5 file"):
        run_lava(bad, np.zeros((1, 64, 12)), progress=False)


def test_truncated_network_file(mlp_files, tmp_path):
    truncated = tmp_path / "model.net"
    truncated.write_bytes(mlp_files[1].read_bytes()[:3000])
    with pytest.raises(NetxFileError, match=r"cannot be read as HDF5 \(truncated file.*\): re-export or re-copy it"):
        run_lava(truncated, np.zeros((1, 64, 12)), progress=False)


def test_foreign_netx_file_without_metadata(mlp_files, tmp_path):
    import h5py

    foreign = tmp_path / "foreign.net"
    foreign.write_bytes(mlp_files[1].read_bytes())
    with h5py.File(foreign, "a") as f:
        del f.attrs["lava_qpsnn"]
    with pytest.raises(NetxFileError, match="no lava-qpsnn metadata"):
        run_lava(foreign, np.zeros((1, 64, 12)), progress=False)
