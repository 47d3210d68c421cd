"""``report``: every figure checked against arithmetic done by hand on a network written by hand.

The hand network (``tiny.net``), on digits' 1x8x8 input, T = 4, neurons without memory
(iDecay = vDecay = 4096, so ``v = a << 6`` and a neuron spikes at step t iff the input it
received from step t - 1 exceeds vth):

- conv 1 -> 2 channels, 3x3, stride 2, padding 1 (output 2x4x4); channel 0 weights all +1,
  channel 1 all -1; vth 0: channel 0 spikes iff any pixel of its receptive field spiked.
- flatten (32), dense 32 -> 3: rows of +2, +1 and -1; vth 1.

Input (two samples): sample 0 spikes at pixel (0, 0) at t = 0 and at (3, 3) at t = 1;
sample 1 never spikes. Output row o of the conv covers input rows 2o-1 .. 2o+1.
"""

from __future__ import annotations

import dataclasses
import json
import math

import h5py
import numpy as np
import pytest

import lava_qpsnn.report.network.measure as report_module
from lava_qpsnn.cli import main
from lava_qpsnn.data import Encoding
from lava_qpsnn.errors import ConfigError, NetxFileError
from lava_qpsnn.netx.metadata import write_metadata
from lava_qpsnn.report.loihi2 import chips_needed, layer_cores
from lava_qpsnn.report.network import format_report, report_network
from lava_qpsnn.report.plots import PLOT_NAMES
from netx_export import export_netx

T = 4


def _group(layers: h5py.Group, index: int, kind: str, **data) -> h5py.Group:
    group = layers.create_group(str(index))
    group.create_dataset("type", (1,), "S10", [kind.encode()])
    for key, value in data.items():
        group.create_dataset(key, data=np.asarray(value))
    return group


def _neuron(group: h5py.Group, vth: int) -> None:
    neuron = group.create_group("neuron")
    neuron.create_dataset("type", (1,), "S10", [b"CUBA"])
    for key, value in {"iDecay": 4096, "vDecay": 4096, "vThMant": vth}.items():
        neuron.create_dataset(key, data=value)


@pytest.fixture(scope="module")
def tiny_net(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.net"
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        _group(layers, 0, "input", shape=[1, 8, 8])
        kernel = np.stack([np.ones((1, 3, 3)), -np.ones((1, 3, 3))]).astype(np.int16)
        conv = _group(
            layers, 1, "conv", shape=[2, 4, 4], weight=kernel, stride=[2, 2], padding=[1, 1], dilation=[1, 1], groups=1
        )
        _neuron(conv, vth=0)
        _group(layers, 2, "flatten", shape=[32])
        dense = _group(layers, 3, "dense", shape=[3], weight=np.array([[2] * 32, [1] * 32, [-1] * 32], np.int16))
        _neuron(dense, vth=1)
        write_metadata(f, dataset="digits", encoding=Encoding(time_steps=T), num_classes=3)
    return path


@pytest.fixture
def known_input(monkeypatch):
    """Replace the encoded test split with the two samples of the module docstring."""
    spikes = np.zeros((2, 1, 8, 8, T), np.float32)
    spikes[0, 0, 0, 0, 0] = 1
    spikes[0, 0, 3, 3, 1] = 1
    monkeypatch.setattr(report_module, "stream_test_split", lambda test_set, encoding: spikes)


def test_figures_of_the_hand_network(tiny_net, known_input):
    report = report_network(tiny_net)
    inp, conv, flatten, dense = report.layers
    assert report.samples == 2 and report.time_steps == T

    # weights: conv 2*1*3*3 = 18, dense 3*32 = 96. Loihi bits: conv +-1 -> 2 signed bits;
    # dense [2, 1, -1] -> 3 signed bits. packed: 18*2/8 = 4.5 B and 96*3/8 = 36 B
    assert (conv.summary.params, dense.summary.params, report.weights) == (18, 96, 114)
    assert (conv.summary.weight_bits, dense.summary.weight_bits) == (2, 3)
    assert (conv.summary.packed_bytes, dense.summary.packed_bytes, report.packed_bytes) == (4.5, 36, 40.5)
    assert report.float32_bytes == report.float32_bytes_before == 114 * 4
    assert report.compression == pytest.approx(456 / 40.5) and conv.compression == pytest.approx(72 / 4.5)

    # neurons 2*4*4 + 3; synapses: per axis the 4 output rows reach 2 + 3 + 3 + 3 = 11 input
    # rows, so 11 * 11 pixel-position pairs, times 2 output channels; dense 3 * 32
    assert (inp.neurons, conv.neurons, flatten.neurons, dense.neurons, report.neurons) == (0, 32, 0, 3, 35)
    assert (conv.synapses, dense.synapses, report.synapses) == (11 * 11 * 2, 96, 242 + 96)

    # spikes, sample 0: input 2; conv channel 0 spikes at t=1 at output (0,0) (pixel (0,0)
    # at t=0) and at t=2 at (1,1), (1,2), (2,1), (2,2) (pixel (3,3) at t=1): 5; dense,
    # driven by the conv's spikes of the step before: t=2 (1 conv spike: a = 2, 1, -1 ->
    # row 0 only) and t=3 (4 spikes: a = 8, 4, -4 -> rows 0 and 1): 3. Sample 1: none.
    assert (inp.spikes_per_sample, conv.spikes_per_sample, dense.spikes_per_sample) == (2 / 2, 5 / 2, 3 / 2)
    assert flatten.spikes_per_sample is None and report.spikes_per_sample == 10 / 2
    np.testing.assert_array_equal(report.example_output, [[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert report.example_prediction == 0

    # SynOps: pixel (0,0) is reached only by output (0,0): 1 position * 2 channels = 2;
    # pixel (3,3) by rows 1, 2 and columns 1, 2: 4 positions * 2 channels = 8 (not 3*3*2 = 18).
    # dense: 5 conv spikes * 3 outputs = 15
    assert (conv.synops_per_sample, dense.synops_per_sample) == ((2 + 8) / 2, 15 / 2)
    assert report.synops_per_sample == 25 / 2

    # largest |u| and |v| (no memory: v = u = 64 a before a spike). conv: one input pixel per window, |a| = 1 ->
    # 64 (channel 0 spikes and resets, channel 1 holds v = -64); dense at t = 3: a = 8, 4, -4 -> |u| 512; rows 0
    # and 1 spike, row 2 holds v = -256
    assert (conv.peak.current, conv.peak.voltage, dense.peak.current, dense.peak.voltage) == (64, 64, 512, 256)
    assert inp.peak is None and flatten.peak is None

    # cores: each layer fits one core (32 and 3 neurons, <= 36 B of weights, 64 and 32 axons)
    assert (conv.cores.cores, dense.cores.cores, report.cores, report.chips) == (1, 1, 2, 1)
    # energy per sample: 12.5 SynOps * 23.6 pJ + 35 neurons * 4 steps * 81 pJ + 5 spikes * 1.7 pJ
    assert report.energy.joules == pytest.approx((12.5 * 23.6 + 35 * 4 * 81 + 5 * 1.7) * 1e-12)


def test_core_and_chip_limits_by_hand():
    # 9,000 neurons: ceil(9000 / 8192) = 2; 5,000 x 9,000 8-bit weights = 45e6 B:
    # ceil(45e6 / 131072) = 344; 5,000 axons: ceil(5000 / 4096) = 2 -> memory binds
    big = layer_cores(neurons=9000, weight_bytes=5000 * 9000, input_axons=5000)
    assert (big.cores, big.limited_by) == (344, "synapse memory")
    assert layer_cores(neurons=20000, weight_bytes=100, input_axons=10).limited_by == "neurons"
    assert layer_cores(neurons=10, weight_bytes=100, input_axons=10000) == layer_cores(
        neurons=10, weight_bytes=0, input_axons=8193
    )  # ceil(10000 / 4096) = ceil(8193 / 4096) = 3
    assert chips_needed(cores=344, neurons=9000, synapses=45_000_000) == 3  # ceil(344 / 128)
    assert chips_needed(cores=1, neurons=10, synapses=120_000_001) == 2  # 120M synapses per chip
    assert chips_needed(cores=1, neurons=1_000_001, synapses=1) == 2  # 1M neurons per chip


def test_pruned_checkpoint_sizes_before_and_after(pruned_conv_checkpoint, tmp_path):
    net = tmp_path / "pruned.net"
    export_netx(pruned_conv_checkpoint, net)
    report = report_network(net, checkpoint=pruned_conv_checkpoint, samples=4)
    conv1, conv2, dense = (layer.summary for layer in report.layers if layer.cores is not None)
    # widths (4, 8) -> (2, 4) on 1x8x8 digits; the conv2's stride 2 makes 4x4 maps
    assert (conv1.shape_before, conv1.shape) == ((4, 8, 8), (2, 8, 8))
    assert (conv2.shape_before, conv2.shape) == ((8, 4, 4), (4, 4, 4))
    assert report.layers[3].summary.shape_before == (128,) and report.layers[3].summary.shape == (64,)
    # weights before: 4*1*9 = 36, 8*4*9 = 288, 10*8*16 = 1280; after: 18, 72, 640
    assert [(s.params_before, s.params) for s in (conv1, conv2, dense)] == [(36, 18), (288, 72), (1280, 640)]
    # trained bits 8 (first), 4, 8 (last): packed 18 + 36 + 640 B vs float32 unpruned 1604 * 4 B
    assert [s.weight_bits for s in (conv1, conv2, dense)] == [8, 4, 8]
    assert report.packed_bytes == 694
    assert report.compression == pytest.approx(1604 * 4 / 694)
    text = format_report(report)
    assert "36 -> 18" in text and "9.2x smaller than float32 before pruning" in text


def test_checkpoint_of_another_network_is_refused(conv_net, conv_checkpoint, mlp_checkpoint):
    with pytest.raises(ConfigError, match=r"checkpoint layers \(64, 32, 10\) and model.net layers .* differ"):
        report_network(conv_net, checkpoint=mlp_checkpoint)
    other = dataclasses.replace(conv_checkpoint, encoding=Encoding(time_steps=5, seed=3))
    with pytest.raises(ConfigError, match="differ: give the checkpoint the network was exported from"):
        report_network(conv_net, checkpoint=other)
    with pytest.raises(ConfigError, match="samples must be >= 1"):
        report_network(conv_net, samples=0)


def test_cli_json_is_the_hand_figures(tiny_net, known_input, capsys):
    assert main(["report", str(tiny_net), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    totals = data["totals"]
    assert (totals["synops_per_sample"], totals["spikes_per_sample"], totals["packed_bytes"]) == (12.5, 5.0, 40.5)
    assert [layer["synops_per_sample"] for layer in data["layers"]] == [0.0, 5.0, 0.0, 7.5]
    assert data["loihi2_estimate"]["cores"] == 2 and "ESTIMATE" in data["energy_estimate_per_inference"]["note"]
    assert math.isclose(data["energy_estimate_per_inference"]["joules"], 11643.5e-12)
    assert {limit["name"] for limit in data["loihi2_estimate"]["limits"]} >= {"neuro cores per chip"}
    assert [(layer["max_current"], layer["max_voltage"]) for layer in data["layers"]] == [
        (None, None),
        (64, 64),
        (None, None),
        (512, 256),
    ]
    assert data["layers"][1]["state_limit"] == 2**23


def test_cli_table_and_plots(conv_net, tmp_path, capsys):
    plots = tmp_path / "plots"
    assert main(["report", str(conv_net), "--samples", "3", "--plot", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "SynOps" in out and "Loihi 2 ESTIMATE" in out and "energy ESTIMATE per inference" in out
    assert "first 3 test samples" in out and "[Davies2018]" in out
    assert "max |u|" in out and "24-bit limit 2^23 = 8,388,608" in out
    for name in PLOT_NAMES:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in plots.iterdir()) == sorted(PLOT_NAMES)  # no temporary files left

    (plots / "memory.png").write_text("an earlier plot the user keeps")
    assert main(["report", str(conv_net), "--samples", "3", "--plot", str(plots)]) == 2
    assert "already has memory.png" in _error(capsys)
    assert (plots / "memory.png").read_text() == "an earlier plot the user keeps"
    assert main(["report", str(conv_net), "--samples", "3", "--plot", str(plots), "--force"]) == 0
    assert (plots / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_leave_the_callers_matplotlib_alone(conv_net, tmp_path):
    """A notebook keeps its inline backend (write_report_plots used to switch pyplot to Agg)."""
    import matplotlib

    from lava_qpsnn.report.plots import write_report_plots

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands for the caller's own choice (inline in a notebook)
    try:
        write_report_plots(report_network(conv_net, samples=2), tmp_path / "plots")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("lava_qpsnn: error: ") and "\n" not in err, err
    return err


def test_cli_errors(tmp_path, capsys, mlp_files, conv_net):
    pt, net = mlp_files
    cases = [
        (["report", str(tmp_path / "none.net")], "no network file"),
        (["report", str(pt)], "not an HDF5 file"),
        (["report", str(pt), str(conv_net)], "differ"),
        (["report", str(net), "--plot", str(tmp_path / "no" / "plots")], "cannot be created"),
        (["report", str(net), "--plot", str(pt)], "is not a folder"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        assert message in _error(capsys)
    assert not (tmp_path / "no").exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse's own check, the same type on every command
        main(["report", str(net), "--samples", "0"])
    assert exit_info.value.code == 2
    assert "expected a number of samples >= 1 or 'all', got '0'" in capsys.readouterr().err


def test_report_of_a_file_without_metadata(tmp_path):
    path = tmp_path / "bare.net"
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        _group(layers, 0, "input", shape=[64])
        _group(layers, 1, "dense", shape=[10], weight=np.ones((10, 64)))
    with pytest.raises(NetxFileError, match="no lava-qpsnn metadata"):
        report_network(path)


def test_import_loads_no_matplotlib(run_python):
    result = run_python("import sys, lava_qpsnn, lava_qpsnn.report.plots; print('matplotlib' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr
