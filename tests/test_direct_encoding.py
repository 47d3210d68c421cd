"""Direct encoding: the image itself as graded input, identical in PyTorch, the simulator and Lava.

Oracles: hand arithmetic on the file's own integers (read with h5py, not the library's reader)
for a first-layer current; Lava's fixed-point models for whole networks; old files for compatibility.
"""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest

from lava_qpsnn import fixed_point_model, run_lava, simulate, train_checkpoint
from lava_qpsnn.data import Encoding, direct_encode, encode_test_split, load_dataset
from lava_qpsnn.errors import ConfigError, DataError, ExportError
from lava_qpsnn.netx import netx_call, read_net_info, read_netx
from lava_qpsnn.netx.metadata import METADATA_ATTR
from lava_qpsnn.sim import trace
from lava_qpsnn.training.loop import TrainConfig, output_spikes
from lava_qpsnn.training.models import input_payload_max
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx

T = 4


def direct_checkpoint(arch, *, weight_bits=4, payload_bits=4, norm="none", prune=None, epochs=1):
    return train_checkpoint(
        arch=arch,
        norm=norm,
        encoding=Encoding(time_steps=T, kind="direct", bits=payload_bits),
        config=TrainConfig(epochs=epochs, init_gain=1.0),
        quant=QuantConfig(weight_bits, first_last_bits=None),
        prune=prune,
        progress=False,
    )


def inputs(encoding: Encoding, samples: int = 6) -> np.ndarray:
    """Test images with the extremes: an all-zero image (payload 0) and an all-one image (the largest payload)."""
    images = load_dataset("digits")[1].images[:samples]
    extremes = np.stack([np.zeros_like(images[0]), np.ones_like(images[0])])
    return direct_encode(np.concatenate([extremes, images]), encoding.time_steps, encoding.bits)


def test_payloads_are_the_pixel_values_on_the_payload_grid():
    images = np.array([[0.0, 1 / 255, 100 / 255, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(direct_encode(images, 2, 8)[0], [[0, 0], [1, 1], [100, 100], [255, 255]])
    np.testing.assert_array_equal(direct_encode(images, 1, 2)[0, :, 0], [0, 0, 1, 3])  # 100/255 * 3 = 1.18 -> 1
    assert direct_encode(images, 1, 12).max() == 4095


@pytest.mark.parametrize(
    "case",
    [
        dict(arch="16-10", weight_bits=1),
        dict(arch="16-10", weight_bits=2, payload_bits=8),
        dict(arch="16-10", weight_bits=8, payload_bits=2),
        dict(arch="4c3-p2-10", norm="bn"),
        dict(arch="4c3-8c3s2-10", prune=PruneConfig((0.5,), "svs", finetune_epochs=1, calibration_samples=64)),
    ],
    ids=["dense-1bit", "dense-2bit-8payload", "dense-8bit-2payload", "conv-bn-pool", "conv-pruned"],
)
def test_pytorch_simulator_and_lava_agree_on_graded_input(case, tmp_path):
    checkpoint = direct_checkpoint(**case)
    net = tmp_path / "model.net"
    export_netx(checkpoint, net)
    x = inputs(checkpoint.encoding)
    pytorch = output_spikes(fixed_point_model(checkpoint), x, layers=True)
    simulated = simulate(net, x, layers=True)
    lava = run_lava(net, x, progress=False, layers=True)
    for layer, (p, s, v) in enumerate(zip(pytorch, simulated, lava, strict=True)):
        np.testing.assert_array_equal(s, p, err_msg=f"layer {layer}: simulator vs PyTorch")
        np.testing.assert_array_equal(v, s, err_msg=f"layer {layer}: Lava vs simulator")
    assert simulated[0][1].any()  # the all-one image drives the first layer


def test_first_layer_current_by_hand(tmp_path):
    """u of layer 1 at step 1 is (W @ x) << 6 with the file's integers: the input reaches it one step late."""
    checkpoint = direct_checkpoint("16-10", weight_bits=4, payload_bits=8)
    net = tmp_path / "model.net"
    export_netx(checkpoint, net)
    x = inputs(checkpoint.encoding, samples=2)
    with h5py.File(net) as f:
        weight = f["layer/1/weight"][()].astype(np.int64)
    current = trace(net, x, limits=False)[0].current
    expected = x[:, :, :, :, 0].reshape(len(x), -1).astype(np.int64) @ weight.T * 64
    np.testing.assert_array_equal(current[:, :, 1], expected)
    assert (current[1, :, 1] != 0).any()  # the all-one image drives it


def test_float_network_sees_the_image_and_the_integer_network_the_payloads():
    checkpoint = direct_checkpoint("16-10", payload_bits=6)
    assert input_payload_max(checkpoint.build()) == 63
    assert input_payload_max(fixed_point_model(checkpoint)) == 1


def test_file_records_encoding_and_netx_call(tmp_path):
    checkpoint = direct_checkpoint("16-10", payload_bits=5)
    net = tmp_path / "model.net"
    export_netx(checkpoint, net)
    info = read_net_info(net)
    assert info.encoding == Encoding(time_steps=T, kind="direct", bits=5)
    assert read_netx(net).input_bits == 5
    with h5py.File(net) as f:
        assert json.loads(f.attrs[METADATA_ATTR])["netx"] == {
            "reset_interval": T,
            "reset_offset": 1,
            "input_message_bits": 5,
        }
    assert info.netx_call() == (
        "netx.hdf5.Network(net_config='model.net', reset_interval=4, reset_offset=1, input_message_bits=5)"
    )
    rate = Encoding(time_steps=8)
    assert netx_call(rate, "a.net") == "netx.hdf5.Network(net_config='a.net', reset_interval=8, reset_offset=1)"


def test_file_without_netx_record_reads_as_before(mlp_files, tmp_path):
    """A file exported before the netx record existed reads, simulates and keeps binary input."""
    _, net = mlp_files
    old = tmp_path / "old.net"
    old.write_bytes(net.read_bytes())
    with h5py.File(old, "a") as f:
        meta = json.loads(f.attrs[METADATA_ATTR])
        del meta["netx"]
        meta["encoding"].pop("bits")
        f.attrs[METADATA_ATTR] = json.dumps(meta)
    assert read_net_info(old).encoding == read_net_info(net).encoding
    assert read_netx(old).input_bits == 0
    x = encode_test_split(load_dataset("digits")[1], read_net_info(net).encoding, 4)
    np.testing.assert_array_equal(simulate(old, x), simulate(net, x))


def test_a_netx_record_that_contradicts_the_encoding_is_refused(mlp_files, tmp_path):
    _, net = mlp_files
    bad = tmp_path / "bad.net"
    bad.write_bytes(net.read_bytes())
    with h5py.File(bad, "a") as f:
        meta = json.loads(f.attrs[METADATA_ATTR])
        meta["netx"]["input_message_bits"] = 8
        f.attrs[METADATA_ATTR] = json.dumps(meta)
    with pytest.raises(Exception, match="netx arguments .* disagree with the encoding"):
        read_net_info(bad)


def test_bad_settings_and_input(mlp_files, tmp_path):
    for bits in (0, 17, 2.5):
        with pytest.raises(ConfigError, match="payload bits must be in 1..16"):
            Encoding(kind="direct", bits=bits)
    with pytest.raises(ConfigError, match="payload bits belong to direct encoding"):
        Encoding(kind="rate", bits=4)
    with pytest.raises(ConfigError, match="unknown encoding 'latency'"):
        Encoding(kind="latency")
    with pytest.raises(DataError, match=r"must be in \[0, 1\] for direct encoding, found 0.0..2.0"):
        direct_encode(np.array([[0.0, 2.0]]), 2, 8)
    _, rate_net = mlp_files
    payloads = direct_encode(load_dataset("digits")[1].images[:2], 12, 8)
    with pytest.raises(DataError, match="is rate-coded: its input must be spikes"):
        run_lava(rate_net, payloads, progress=False)
    checkpoint = direct_checkpoint("16-10", payload_bits=4)
    direct_net = tmp_path / "direct.net"
    export_netx(checkpoint, direct_net)
    with pytest.raises(DataError, match=r"direct-encoded: its input must be whole payloads 0..15 \(4 bits\)"):
        simulate(direct_net, np.full((1, 64, T), 16))
    with pytest.raises(DataError, match="direct-encoded: give it graded payloads"):
        run_lava(direct_net, np.ones((1, 64, T), dtype=bool), progress=False)


def test_pooling_first_is_refused_with_direct_encoding():
    with pytest.raises(ConfigError, match="first layer, which is pooling"):
        direct_checkpoint("p2-10")


def test_classifier_process_sends_the_payloads(tmp_path):
    """The Encoder inside a Classifier sends direct encoding's payloads: predictions equal the integer network's."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from lava_qpsnn.lava.processes import Classifier
    from lava_qpsnn.training.loop import classify

    checkpoint = direct_checkpoint("16-10", payload_bits=5, epochs=2)
    net = tmp_path / "model.net"
    export_netx(checkpoint, net)
    images = load_dataset("digits")[1].images[:8].copy()
    images[3] = 1.0  # every payload at its maximum
    clf = Classifier(net, images)
    try:
        clf.run(condition=RunSteps(num_steps=clf.num_steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        predictions = clf.predictions.get().astype(int)
    finally:
        clf.stop()
    payloads = direct_encode(images, T, 5)
    np.testing.assert_array_equal(predictions, classify(output_spikes(fixed_point_model(checkpoint), payloads)))


@pytest.mark.parametrize(
    "options, message",
    [
        (["--encoding", "direct", "--payload-bits", "0"], "payload bits must be in 1..16, got 0 [--payload-bits]"),
        (["--encoding", "rate", "--payload-bits", "4"], "payload bits belong to direct encoding"),
        (["--encoding", "direct", "--time-steps", "2", "--arch", "8-8-10"], "do not outlast the network's depth"),
    ],
)
def test_command_line_refuses_bad_encodings_in_one_line_and_writes_nothing(options, message, tmp_path, capsys):
    from lava_qpsnn.cli import main as qpsnn_main

    out = tmp_path / "model.pt"
    assert qpsnn_main(["--no-progress", "train", *options, "--epochs", "1", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def float_bn_checkpoint(first_bias: float):
    """An untrained float 8-10 network with BatchNorm, direct 8-bit payloads, layer 0's first bias set."""
    float_bn = train_checkpoint(
        arch="8-10", norm="bn", encoding=Encoding(time_steps=T, kind="direct", bits=8),
        config=TrainConfig(epochs=0), progress=False,
    )  # fmt: skip
    state = dict(float_bn.state_dict)
    shift = state["blocks.0.neuron.norm.shift"].clone()
    shift[0] = first_bias  # running mean 0: the folded bias is the shift
    return dataclasses.replace(float_bn, state_dict={**state, "blocks.0.neuron.norm.shift": shift})


def test_a_float_batchnorm_bias_beyond_13_bits_is_halved_with_the_even_weights(spike_exact_layers, tmp_path):
    """slayer's 8-bit hook stores even integers, so a folded bias that leaves Lava's 13 bits at the hook's
    scale halves exactly with them (it was refused, at the end of training, for BatchNorm after graded input)."""
    checkpoint = float_bn_checkpoint(0.37)  # times 64 (weight scale) x 255 (payload scale) = 6038 > 4095
    spike_exact_layers(checkpoint, tmp_path / "model.net", inputs(checkpoint.encoding))
    with h5py.File(tmp_path / "model.net") as f:
        weight, bias = f["layer/1/weight"][()], f["layer/1/bias"][()]
    assert bias[0] == 3019  # round(6038 / 2) by hand
    assert (weight % 2 == 1).any() and np.abs(weight).max() <= 127  # the hook's even -256..254, halved


def test_a_bias_the_payload_scale_puts_beyond_13_bits_names_the_payload_and_the_batchnorm():
    message = r"^weight layer 0 has a bias reaching 8160, .* retrain with fewer payload bits or without BatchNorm"
    with pytest.raises(ExportError, match=message) as err:
        fixed_point_model(float_bn_checkpoint(1.0))  # 1.0 x 64 x 255 = 16320: halved once (odd after), 8160
    assert err.value.settings == ("payload_bits", "norm")
