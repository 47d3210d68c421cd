"""``diagnose``: a healthy export shows no divergence between the fixed-point model, the simulator
and Lava; faults built on purpose (a file edited after export, a layer quantized into silence, a
layer past Lava's 24-bit state, weights netx changes) are each named with their layer, and fail."""

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

import lava_qpsnn as qp
from lava_qpsnn import data, training
from lava_qpsnn.cli import main
from lava_qpsnn.training.models import weight_blocks
from netx_export import export_netx
from netx_export.cli import main as export_main

SAMPLES = ["--samples", "8"]


@pytest.fixture(scope="module")
def healthy(bn_pool_checkpoint, tmp_path_factory):
    """(model.pt, model.net) of a 4-bit, BatchNorm, pooling, SVS-pruned conv net."""
    folder = tmp_path_factory.mktemp("diagnose")
    pt = qp.save_checkpoint(bn_pool_checkpoint, folder / "model.pt")
    export_netx(bn_pool_checkpoint, folder / "model.net")
    return pt, folder / "model.net"


def _edited(net, tmp_path, edit) -> str:
    """A copy of ``net`` changed by ``edit(h5py file)``, as someone editing the file by hand would."""
    copy = tmp_path / "edited.net"
    shutil.copy(net, copy)
    with h5py.File(copy, "r+") as handle:
        edit(handle)
    return str(copy)


def _diagnose(capsys, *args) -> tuple[int, str]:
    status = main(["--no-progress", "diagnose", *map(str, args)])
    return status, capsys.readouterr().out


def test_a_healthy_export_agrees_in_every_layer_of_the_simulator_and_lava(healthy, capsys):
    pt, net = healthy
    status, out = _diagnose(capsys, pt, net, *SAMPLES, "--lava-samples", "2")
    assert status == 0, out
    assert "fixed-point, simulator, lava: identical spikes in every layer" in out and out.rstrip().endswith("healthy")
    result = qp.diagnose(pt, net, samples=8, lava_samples=2, progress=False)
    assert result.stages == ("float", "trained", "fixed-point", "simulator", "lava")
    assert result.healthy and not [d for d in result.divergences if d.exact]
    with h5py.File(net) as handle:  # the layers named are the file's layers with neurons
        assert [layer.index for layer in result.layers] == [
            int(name) for name in sorted(handle["layer"], key=int) if "neuron" in handle[f"layer/{name}"]
        ]
    assert [layer.kind for layer in result.layers] == ["conv", "pool", "conv", "dense"]
    assert all(layer.spikes["simulator"] > 0 for layer in result.layers)
    assert json.loads(json.dumps(result.to_dict()))["healthy"] is True


def test_a_threshold_edited_in_the_file_is_named_with_its_layer(healthy, tmp_path, capsys):
    pt, net = healthy

    def double_threshold(handle):
        handle["layer/3/neuron/vThMant"][()] = 2 * int(handle["layer/3/neuron/vThMant"][()])

    edited = _edited(net, tmp_path, double_threshold)
    status, out = _diagnose(capsys, pt, edited, *SAMPLES, "--lava-samples", "1", "--plot", tmp_path / "plots")
    assert status == 1
    assert "problem: the file's threshold of layer 3 (conv) differs from the checkpoint's (file " in out
    assert "problem: fixed-point and simulator diverge first at layer 3, step " in out
    assert "simulator and lava diverge" not in out  # both run the file: they still agree
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["divergence.png", "stage_rates.png"]
    result = qp.diagnose(pt, edited, samples=8, lava_samples=0, progress=False)
    assert result.raster.layer == 3 and (result.raster.first_spikes != result.raster.second_spikes).any()
    assert json.loads(json.dumps(result.to_dict()))["healthy"] is False


@pytest.fixture(scope="module")
def silenced(tmp_path_factory):
    """A hidden layer whose weights all round to 0 on the baseline 2-bit grid, while its float twin spikes."""
    torch.manual_seed(0)
    net = training.build_model(training.ModelConfig.from_arch("32-32-10", (1, 8, 8), 10))
    training.quantize_model(net, qp.QuantConfig(2, "baseline"))  # the hidden layer ternary; first and last 8-bit
    first, hidden, last = weight_blocks(net)
    with torch.no_grad():
        first.synapse.weight.uniform_(-0.5, 0.5)
        hidden.synapse.weight.fill_(0.4)  # below half a level (gamma is 1 for the baseline): every weight is 0
        last.synapse.weight.uniform_(-0.5, 1.0)
    checkpoint = qp.Checkpoint.of(net, dataset="digits", encoding=qp.Encoding(time_steps=8, seed=0))
    return qp.save_checkpoint(checkpoint, tmp_path_factory.mktemp("silenced") / "model.pt")


def test_a_layer_quantized_into_silence_is_named_with_advice(silenced, capsys):
    status, out = _diagnose(capsys, silenced, *SAMPLES)
    assert status == 1
    assert (
        "problem: layer 2 (dense) has only zero weights after 2-bit quantization: "
        "try the rescaw quantizer or keep it at 4 bits [when training: --quantizer, --bits]"
    ) in out
    assert "problem: layer 3 (dense) is silent because layer 2 before it is" in out
    result = qp.diagnose(silenced, samples=8)
    hidden = result.layers[1]
    assert hidden.spikes["float"] > 0 and hidden.spikes["trained"] == hidden.spikes["fixed-point"] == 0
    assert (hidden.levels_used, hidden.levels_available) == (1, 3)  # of the ternary grid -1, 0, 1 only 0 is left


def test_an_unquantized_network_without_a_file_is_healthy(mlp_files, capsys):
    status, out = _diagnose(capsys, mlp_files[0], *SAMPLES, "--json")
    assert status == 0
    result = json.loads(out)
    assert result["healthy"] and result["stages"] == ["trained", "fixed-point"] and result["raster"] is None
    assert [layer["index"] for layer in result["layers"]] == [1, 2]


def test_the_exporter_names_training_options_as_such(silenced, tmp_path, capsys):
    assert export_main([str(silenced), "-o", str(tmp_path / "x.net")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netx_export: error: layer 2 (Dense) has all-zero weights")
    assert err.endswith(" [when training: --prune, --bits]\n") and not (tmp_path / "x.net").exists()


def test_a_layer_past_the_24_bit_limit_is_named_with_its_step(healthy, tmp_path, capsys):
    pt, net = healthy

    def huge_kernels(handle):
        weight = handle["layer/1/weight"]
        weight[()] = np.full(weight.shape, 20_000, weight.dtype)

    edited = _edited(net, tmp_path, huge_kernels)
    status, out = _diagnose(capsys, pt, edited, *SAMPLES, "--lava-samples", "0")
    assert status == 1
    assert "problem: layer 1 (conv) reaches |u| " in out and "beyond Lava's 24-bit limit 8,388,608: Lava wraps" in out
    assert out.count("beyond Lava's 24-bit limit") == 1  # the layers after it only receive changed spikes
    first = qp.diagnose(pt, edited, samples=8, lava_samples=0).layers[0]
    # hand arithmetic: iDecay 4096 keeps no current, so u = 64 x 20,000 x (spiking inputs in the 3x3 window,
    # padding 1) of the step before (the synapse's one-step delay); 2^23 needs 7 of the 9 inputs
    with h5py.File(edited) as handle:
        assert int(handle["layer/1/neuron/iDecay"][()]) == 4096
    _, test_set = qp.load_dataset("digits")
    x = data.encode_test_split(test_set, qp.load_checkpoint(pt).encoding, 8).astype(int)[:, 0]  # N, H, W, T
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    window = sum(padded[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3))  # N, H, W, T
    assert first.peak_current == 64 * 20_000 * window.max()
    assert first.limit_step == 1 + np.flatnonzero((window >= 7).any(axis=(0, 1, 2)))[0]
    assert first.limit_changed_spikes > 0


def test_weights_netx_changes_are_counted(healthy, tmp_path, capsys):
    pt, net = healthy

    def beyond_eight_bits(handle):
        weight = handle["layer/5/weight"]
        values = weight[()]
        values[0, 0] = 300  # mixed-sign matrix: netx clips it to 254
        values[1, 1] = 301
        weight[()] = values

    status, out = _diagnose(capsys, pt, _edited(net, tmp_path, beyond_eight_bits), *SAMPLES, "--lava-samples", "0")
    assert status == 1
    assert (
        "problem: netx changes 2 weights of layer 5 (dense) when it builds the network: the file's weights were "
        "changed after export"
    ) in out
    assert "problem: the file's weights of layer 5 (dense) differ from the checkpoint's" in out


def test_a_file_of_another_network_is_refused(healthy, mlp_checkpoint, tmp_path, capsys):
    other = qp.save_checkpoint(mlp_checkpoint, tmp_path / "mlp.pt")
    assert main(["diagnose", str(other), str(healthy[1])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give the checkpoint the network was exported from" in err


def test_existing_plots_are_kept_unless_forced(healthy, tmp_path, capsys):
    (tmp_path / "stage_rates.png").write_bytes(b"mine")
    assert main(["diagnose", str(healthy[0]), "--plot", str(tmp_path)]) == 2
    assert "already has stage_rates.png" in capsys.readouterr().err
    assert (tmp_path / "stage_rates.png").read_bytes() == b"mine"
