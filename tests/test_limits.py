"""Lava's limits at export: worst cases by hand, one test per refusal, a warning, a wide layer that fits by design.

Hand networks are slayer networks of integer weights (``n / 64``, the fixed-point network's
form) exported as if they were the small MLP checkpoint's: digits 1x8x8, T = 12, the first
``LIMIT_SAMPLES`` test samples. Neurons are the QP-SNN default (no current state: ``u = 64 a``;
``v`` keeps half) unless a test gives them a current that never decays (``iDecay = 0``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import lava_qpsnn.export.writer as export
from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import ExportError, StateLimitWarning
from lava_qpsnn.export.fixed_point import fixed_point_model, to_fixed_point
from lava_qpsnn.export.limits import worst_case
from lava_qpsnn.loihi import STATE_LIMIT
from lava_qpsnn.netx import read_netx
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.checkpoint import Checkpoint
from lava_qpsnn.training.hooks import IntegerWeights
from lava_qpsnn.training.loop import output_spikes
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.norm import IntegerBias
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig
from netx_export import export_netx
from netx_export.cli import main as export_main

# ---------------------------------------------------------------- worst cases by hand


def test_worst_case_by_hand():
    # row [3, -2, 5]: one step's input in [-2, 8]; u = 64 a (iDecay 4096); bias -1 (-64 in v); v keeps 2048/4096:
    # -v = 128 + 64 = 192, then 96 + 192 = 288, 144 + 192 = 336, 168 + 192 = 360
    assert (worst_case(np.array([[3, -2, 5]]), -1, 4096, 2048, 4).current, 4) == (512, 4)
    assert worst_case(np.array([[3, -2, 5]]), -1, 4096, 2048, 4).voltage == 360
    # a current that never decays (iDecay 0) adds 8 * 64 per step: 3 steps 1536; v has no memory (vDecay 4096):
    # -v = -u - bias = 3 * 128 - 2 * 64 with bias +2
    peak = worst_case(np.array([[3, -2, 5]]), 2, 0, 4096, 3)
    assert (peak.current, peak.voltage) == (1536, 256)
    # u keeps 1024/4096: 512, 128 + 512 = 640, 160 + 512 = 672; dense weight_exp -1: sums 8 -> 4, -2 -> -1
    assert worst_case(np.array([[3, -2, 5]]), 0, 3072, 4096, 3).current == 672
    assert worst_case(np.array([[6, -3, 2]]), 0, 4096, 4096, 1, weight_exp=-1).current == 4 * 64
    # per-channel bias of a conv (2 channels, 2x2 kernels): channel 1's -v = 64 * (4 + 3)
    conv = np.array([[[[1, 1], [1, 1]]], [[[-1, -1], [-1, -1]]]])
    assert worst_case(conv, np.array([0, -3]), 4096, 4096, 5).voltage == 448
    # the user's case: dense fan-in 6,272 of 8-bit weights (254) with 50% of them pruned is already past 2^23
    assert not worst_case(np.full((1, 3136), 254), 0, 4096, 4096, 1).within  # 64 * 3136 * 254 = 50.9M


# ---------------------------------------------------------------- hand networks exported as the MLP's


def _integer_net(arch: str, weights: list[float], *, current_decay: list[float] | None = None) -> torch.nn.Module:
    """A fixed-point slayer network: each dense/conv layer's weights all one integer (``weights``)."""
    net = build_model(ModelConfig.from_arch(arch, (1, 8, 8), 10))
    synaptic = [block for block in net.blocks if hasattr(block, "synapse")]
    for block, value, decay in zip(synaptic, weights, current_decay or [1.0] * len(weights), strict=True):
        block.synapse.weight.data.fill_(value / 64)
        block.synapse._pre_hook_fx = IntegerWeights(None, 64, "symmetric")
        block.neuron.current_decay.data.fill_(decay * 4096)
    return net.eval()


@pytest.fixture
def export_as(mlp_checkpoint, monkeypatch, tmp_path):
    """Export ``net`` as the MLP checkpoint's fixed-point network; return the path it was written to (or not)."""

    def run(net: torch.nn.Module) -> object:
        monkeypatch.setattr(export, "fixed_point_model", lambda checkpoint: net)
        path = tmp_path / "model.net"
        export_netx(mlp_checkpoint, path, force=True)
        return path

    return run


def _refused(export_as, net, tmp_path, message: str) -> str:
    with pytest.raises(ExportError, match=message) as info:
        export_as(net)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left
    return str(info.value)


MLP_ENCODING = Encoding(time_steps=12, seed=3)  # the MLP checkpoint's (tests/conftest.py)


def _digits(count: int) -> np.ndarray:
    """The first test samples, encoded as the MLP checkpoint's are."""
    _, test_set = load_dataset("digits")
    return encode_test_split(test_set, MLP_ENCODING)[:count]


def test_weights_beyond_8_bits_are_refused(export_as, tmp_path):
    from lava.lib.dl.netx.utils import optimize_weight_bits

    net = _integer_net("32-10", [3, -1])
    net.blocks[1].synapse.weight.data[0, 0] = 300 / 64
    _refused(export_as, net, tmp_path, r"^layer 2 \(Dense\) has integer weights in -1..300, beyond Loihi's 8-bit")
    weight, _, exponent, _ = optimize_weight_bits(np.array([[300, -1]]))  # netx itself clips 300 to 254
    assert weight.max() * 2**exponent == 254


def test_bias_beyond_13_bits_is_refused(export_as, tmp_path):
    net = _integer_net("32-10", [3, 2])
    net.blocks[1].neuron.norm = IntegerBias(torch.full((10,), 4096.0), 64, 2)  # 13-bit: -4096..4095
    _refused(export_as, net, tmp_path, r"^layer 2 \(Dense\) has a bias reaching 4096, beyond Lava's 13-bit")


def test_all_zero_dense_matrix_is_refused(export_as, tmp_path):
    from lava.lib.dl.netx.utils import optimize_weight_bits

    _refused(export_as, _integer_net("32-10", [3, 0]), tmp_path, r"^layer 2 \(Dense\) has all-zero weights")
    with np.errstate(divide="ignore"), pytest.raises(OverflowError):
        optimize_weight_bits(np.zeros((10, 32)))  # what netx does with it


def test_distorted_non_positive_dense_matrix_is_refused_if_it_can_fire(export_as, tmp_path):
    """[-4, ..., -2]: netx maps -4 to -256, Lava's synapse holds 255 and drops the low bits: it acts as -2."""
    net = _integer_net("32-10", [3, -2])
    net.blocks[1].synapse.weight.data[:, 0] = -4 / 64
    net.blocks[1].neuron.norm = IntegerBias(torch.full((10,), 5.0), 64, 2)  # fires with no input
    _refused(export_as, net, tmp_path, r"^layer 2 \(Dense\) has no positive weight.*weight -4 acts as -2 in Lava")
    net.blocks[1].neuron.norm = IntegerBias(torch.full((10,), -5.0), 64, 2)  # can never fire: same spikes
    assert read_netx(export_as(net)).layers[2].weight.min() < 0
    exact = _integer_net("32-10", [3, -2])
    exact.blocks[1].synapse.weight.data[:, 0] = -3 / 64  # [-3, -2, ...] is stored exactly
    exact.blocks[1].neuron.norm = IntegerBias(torch.full((10,), 5.0), 64, 2)
    layer = read_netx(export_as(exact)).layers[2]
    assert (layer.weight[:, 0] * 2.0**layer.weight_exp == -3).all()


def test_layer_over_the_limit_on_data_is_refused_and_really_diverges(export_as, tmp_path, monkeypatch):
    """Hidden 256 and output neurons whose current never decays, every weight 254.

    Any input spike at step 0 (every digit has some) makes the hidden current >= 254 * 64, far
    above vth 64 << 6, so all 256 hidden neurons fire on steps 1..10 from then on; the output
    layer (latency 2) adds 254 * 256 * 64 = 4,161,536 to its current per step: 41,615,360 at
    step 11, past 2^23 on its third step, where Lava wraps it negative.
    """
    net = _integer_net("256-10", [254, 254], current_decay=[0.0, 0.0])
    message = _refused(export_as, net, tmp_path, r"^layer 2 \(dense\) reaches \|u\| 41,615,360 and \|v\| [\d,]+ on")
    assert "the first 64 test samples, beyond Lava's 24-bit limit 8,388,608" in message
    monkeypatch.setattr(export, "_check_state_limits", lambda *args: None)
    path = export_as(net)
    spikes = _digits(2)
    pytorch, lava = output_spikes(net, spikes), simulate(path, spikes)
    assert (pytorch[:, :, 3:] == 1).all()  # slayer's model: the output fires on every step from 3 on
    assert (lava[:, :, 3:] == 0).any()  # Lava: the current wraps negative on its third step and firing stops
    from lava_qpsnn.lava.run import run_lava

    np.testing.assert_array_equal(run_lava(path, spikes[:1]), lava[:1])  # Lava's own fixed_pt run agrees


def test_layer_over_the_limit_in_theory_only_is_exported_with_a_warning(
    export_as, mlp_checkpoint, capsys, tmp_path, monkeypatch
):
    """Hidden current that never decays, 64 inputs of weight 254: worst case 64 * 254 * 64 * 12 = 12,484,608.

    On data it is 64 * 254 * (the input spikes of steps 0..10; the layer starts at step 1 and
    sees the step before): computed here from the encoded digits.
    """
    net = _integer_net("32-10", [254, 1], current_decay=[0.0, 1.0])
    assert mlp_checkpoint.encoding == MLP_ENCODING
    spikes = _digits(export.LIMIT_SAMPLES)
    reached = 64 * 254 * int(spikes[..., :-1].reshape(len(spikes), -1).sum(1).max())
    with pytest.warns(StateLimitWarning) as caught:
        export_as(net)
    (warning,) = caught
    text = str(warning.message)
    assert "\n" not in text and text.startswith("layer 1 (dense): worst case |u| 12,484,608, |v| 0 is beyond")
    assert f"it reaches |u| {reached:,} and |v| " in text and f"{STATE_LIMIT / reached:.1f}x below the limit" in text
    # the command line prints it as one line on stderr and exits 0
    monkeypatch.setattr("netx_export.cli.load_checkpoint", lambda path: mlp_checkpoint)
    assert export_main(["model.pt", "-o", str(tmp_path / "cli.net")]) == 0
    assert capsys.readouterr().err.strip() == f"netx_export: warning: {text}"


def test_wide_quantized_layer_fits_by_design_without_warning(tmp_path):
    """4-bit ReScaW, conv 64 channels -> dense fan-in 4,096 with every weight at the top level m = 7.

    At the 4-bit exponent e = 5 (n = 224) one step can bring 64 * 4096 * 224 = 58.7M, past 2^23;
    64 * 4096 * 7 * 2^e < 2^23 holds up to e = 2 (7.3M), so the layer is stored as n = 28 with
    vth = 1 * 2^2 * 7 / gamma (gamma = max |W| = 1) = 28, and the export is silent.
    """
    net = build_model(ModelConfig.from_arch("64c3-10", (1, 8, 8), 10))
    quantize_model(net, QuantConfig(4, "rescaw", first_last_bits=None))
    for block in (net.blocks[0], net.blocks[2]):
        block.synapse.weight.data.fill_(1.0)
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=MLP_ENCODING)
    assert to_fixed_point(checkpoint.build()).blocks[2].synapse.weight.mul(64).unique().tolist() == [224]
    with warnings.catch_warnings():
        warnings.simplefilter("error", StateLimitWarning)
        export_netx(checkpoint, tmp_path / "wide.net")
    dense = read_netx(tmp_path / "wide.net").layers[3]
    assert np.unique(dense.weight * 2.0**dense.weight_exp).tolist() == [28] and dense.neuron.vth == 28
    spikes = _digits(8)
    np.testing.assert_array_equal(
        simulate(tmp_path / "wide.net", spikes), output_spikes(fixed_point_model(checkpoint), spikes)
    )
