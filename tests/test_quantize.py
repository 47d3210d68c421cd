import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import lava_qpsnn.export.writer as writer
from lava_qpsnn.errors import ConfigError, ExportError
from lava_qpsnn.export.fixed_point import check_on_grid, fixed_point_model, to_fixed_point
from lava_qpsnn.training.hooks import IntegerWeights, WeightQuantizer, weight_exponent
from lava_qpsnn.training.quantize import QuantConfig, quantize_model

ALL_BITS = range(1, 9)


# (bits, grid) -> the grid's integer levels, written out by hand
HAND_GRIDS = {
    (1, "zero-free"): {-1, 1},
    (2, "zero-free"): {-3, -1, 1, 3},
    (3, "zero-free"): {-7, -5, -3, -1, 1, 3, 5, 7},
    (2, "symmetric"): {-1, 0, 1},
    (3, "symmetric"): {-3, -2, -1, 0, 1, 2, 3},
    (4, "symmetric"): set(range(-7, 8)),
}
ZERO_FREE_BITS = range(1, 8)  # 8 bits is the symmetric grid for either name


def expected_levels(bits, grid="zero-free"):
    if (bits, grid) in HAND_GRIDS:
        return HAND_GRIDS[bits, grid]
    if grid == "zero-free" and bits < 8:
        return set(range(-(2**bits - 1), 2**bits, 2))
    return set(range(-(2 ** (bits - 1) - 1), 2 ** (bits - 1)))


GRID_CASES = [(b, "zero-free") for b in ALL_BITS] + [(b, "symmetric") for b in range(2, 9)]


@pytest.mark.parametrize("bits,grid", GRID_CASES)
def test_baseline_levels_cover_the_grid_and_nothing_else(bits, grid):
    quantizer = WeightQuantizer(bits, "baseline", grid=grid)
    weight = torch.linspace(-1.5, 1.5, 4001)
    levels, _ = quantizer.levels(weight)
    assert set(levels.int().tolist()) == expected_levels(bits, grid)
    out = quantizer(weight)
    torch.testing.assert_close(out, levels / max(expected_levels(bits, grid)))
    assert out.abs().max() <= 1.0


def test_two_and_one_bit_grids_are_the_papers():
    w = torch.tensor([-0.9, -0.2, 0.2, 0.9])
    two, one = (WeightQuantizer(bits, "baseline", grid="zero-free") for bits in (2, 1))
    torch.testing.assert_close(two(w), torch.tensor([-1, -1 / 3, 1 / 3, 1]))
    torch.testing.assert_close(one(w), torch.tensor([-1.0, -1.0, 1.0, 1.0]))


def test_the_two_bit_symmetric_grid_is_ternary():
    w = torch.tensor([-0.9, -0.6, -0.4, 0.2, 0.49, 0.51, 0.9])
    expected = torch.tensor([-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    torch.testing.assert_close(WeightQuantizer(2, "baseline", grid="symmetric")(w), expected)


def test_grid_and_gamma_defaults_and_refusals():
    assert [QuantConfig(b).grid for b in (1, 2, 4, 8)] == ["zero-free", "symmetric", "symmetric", "symmetric"]
    assert [QuantConfig(b).gamma for b in (1, 2, 3, 8)] == ["mean", "mean", "max", "max"]
    assert QuantConfig(8, gamma="mean").gamma == "mean"
    assert QuantConfig(4, grid="zero-free").grid == "zero-free"
    with pytest.raises(ConfigError, match="symmetric grid needs >= 2 bits.*the zero-free grid") as info:
        QuantConfig(1, grid="symmetric")
    assert info.value.settings == ("grid",) and "--" not in str(info.value)  # library terms; the CLI adds options
    with pytest.raises(ConfigError, match="symmetric grid needs >= 2 bits"):
        QuantConfig(4, first_last_bits=1, grid="symmetric")
    with pytest.raises(ConfigError, match="unknown grid 'nonuniform'"):
        QuantConfig(4, grid="nonuniform")


@pytest.mark.parametrize(
    "bits,grid,exponent",  # by hand: the largest e with max level * 2^e <= 254
    [(2, "zero-free", 6), (4, "zero-free", 4), (8, "zero-free", 1), (2, "symmetric", 7), (4, "symmetric", 5)],
)
def test_weight_exponents(bits, grid, exponent):
    assert weight_exponent(bits, grid) == exponent


@pytest.mark.parametrize("gamma", ["mean", "max", "percentile"])
def test_rescaw_scales_by_gamma(gamma):
    torch.manual_seed(0)
    w = torch.randn(64, 32) * 0.1
    quantizer = WeightQuantizer(2, "rescaw", gamma, grid="zero-free")
    g = {"mean": w.abs().mean(), "max": w.abs().max(), "percentile": torch.quantile(w.abs().flatten(), 0.99)}[gamma]
    torch.testing.assert_close(quantizer.gamma(w), g)
    out = quantizer(w)
    assert set(torch.round(out / g * 3).int().unique().tolist()) <= {-3, -1, 1, 3}
    assert out.abs().max() <= g * (1 + 1e-6)


@pytest.mark.parametrize(
    "quantizer,mask",  # by hand: baseline clips at |W| <= 1; ReScaW at |W| <= mean |W| = 7.2 / 5 = 1.44
    [("baseline", [0.0, 0.0, 1.0, 1.0, 0.0]), ("rescaw", [0.0, 1.0, 1.0, 1.0, 0.0])],
)
def test_straight_through_gradient_is_masked_to_the_clipping_range(quantizer, mask):
    w = torch.tensor([-3.0, -1.2, 0.1, 0.4, 2.5], requires_grad=True)
    WeightQuantizer(2, quantizer)(w).sum().backward()
    torch.testing.assert_close(w.grad, torch.tensor(mask))


@pytest.mark.parametrize("bits,grid", GRID_CASES)
def test_descale_gives_loihi_integers(bits, grid):
    w = torch.linspace(-1, 1, 999)
    n = WeightQuantizer(bits, "baseline", grid=grid)(w, descale=True)
    assert torch.equal(n, torch.round(n)) and n.abs().max() <= 254
    check_on_grid(n.numpy(), bits, "test", grid)


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(GRID_CASES),
    quantizer=st.sampled_from(["baseline", "rescaw"]),
    w=arrays(np.float32, st.integers(2, 50), elements=st.floats(-4, 4, width=32)),
)
def test_quantized_values_are_on_grid_and_idempotent(case, quantizer, w):
    bits, grid = case
    q = WeightQuantizer(bits, quantizer, grid=grid)
    weight = torch.from_numpy(w)
    once = q(weight)
    levels = once / q.gamma(weight) * max(expected_levels(bits, grid))
    assert torch.allclose(levels, torch.round(levels), atol=1e-3)
    assert set(torch.round(levels).int().tolist()) <= expected_levels(bits, grid)
    if quantizer == "baseline":
        torch.testing.assert_close(q(once), once)


@pytest.mark.parametrize("bits", [0, 9, -1])
def test_bits_out_of_range(bits):
    with pytest.raises(ConfigError, match="1..8"):
        QuantConfig(bits)


def test_unknown_quantizer_and_gamma():
    with pytest.raises(ConfigError, match="unknown quantizer 'lsq'"):
        QuantConfig(4, "lsq")
    with pytest.raises(ConfigError, match="unknown gamma"):
        QuantConfig(4, gamma="median")


def test_first_and_last_layers_keep_8_bits_by_default():
    config = QuantConfig(2)
    assert [config.layer_bits(i, 4) for i in range(4)] == [8, 2, 2, 8]
    assert [QuantConfig(2, first_last_bits=None).layer_bits(i, 3) for i in range(3)] == [2, 2, 2]


def test_grid_check_rejects_off_grid_weights():
    step = 1 << weight_exponent(2, "zero-free")
    check_on_grid(np.array([-3, -1, 1, 3]) * step, 2, "ok", "zero-free")
    with pytest.raises(ExportError, match="layer 1: weights are not on the declared 2-bit zero-free grid"):
        check_on_grid(np.array([-2, 1]) * step, 2, "layer 1", "zero-free")  # even level
    with pytest.raises(ExportError, match="not on the declared 2-bit zero-free grid"):
        check_on_grid(np.array([0, 64]), 2, "layer 1", "zero-free")  # zero is not on the zero-free grid
    with pytest.raises(ExportError, match="not on the declared"):
        check_on_grid(np.array([5, 1]) * step, 2, "layer 1", "zero-free")  # beyond S
    with pytest.raises(ExportError, match="not on the declared"):
        check_on_grid(np.array([step + 1]), 2, "layer 1", "zero-free")  # not a multiple of 2^e


def test_grid_check_knows_the_symmetric_grid():
    check_on_grid(np.array([-128, 0, 128]), 2, "ok", "symmetric")  # ternary, stored as m * 2^7
    check_on_grid(np.array([-224, -32, 0, 64, 224]), 4, "ok", "symmetric")  # m in -7..7, stored as m * 2^5
    with pytest.raises(ExportError, match="layer 1: weights are not on the declared 2-bit symmetric grid"):
        check_on_grid(np.array([-256, 0, 128]), 2, "layer 1", "symmetric")  # |m| = 2 > 1
    with pytest.raises(ExportError, match="4-bit symmetric grid"):
        check_on_grid(np.array([256]), 4, "layer 1", "symmetric")  # m = 8 > 7


# Both layers' latent weights have magnitudes 1/8 and 7/8 in equal numbers, so ReScaW's gamma = mean |W| = 1/2
# exactly; W / gamma = 1/4 or 7/4, no rounding tie. By hand, with S = 1 on both grids (e = 7):
# - 2-bit symmetric: m = round(clip(W / gamma)) = 0 or sign(W); 1-bit zero-free: m = sign(W);
# - integer weights m * 2^7; threshold vth = threshold * 2^7 * S / gamma = 1 * 128 * 1 / (1/2) = 256.
POWER_OF_TWO_GRIDS = {(2, "symmetric"): lambda w: np.sign(w) * (np.abs(w) > 0.5), (1, "zero-free"): np.sign}


def _power_of_two_gamma_net(bits, grid):
    from lava_qpsnn.training.models import build_model
    from lava_qpsnn.training.specs import ModelConfig

    net = quantize_model(
        build_model(ModelConfig.from_arch("16-10", (1, 8, 8), 10)), QuantConfig(bits, first_last_bits=None, grid=grid)
    )
    rng = np.random.default_rng(1)
    latent = []
    with torch.no_grad():
        for block in net.blocks:
            weight = block.synapse.weight
            magnitude = rng.permutation(np.resize([0.125, 0.875], weight.numel()))
            w = (magnitude * np.where(rng.random(weight.numel()) < 0.6, 1, -1)).astype(np.float32)
            weight.copy_(torch.from_numpy(w).reshape(weight.shape))
            latent.append(w.reshape(weight.shape[:2]))
    return net, latent


@pytest.mark.parametrize("bits,grid", list(POWER_OF_TWO_GRIDS))
def test_fixed_point_conversion_folds_the_scale_into_the_threshold(bits, grid):
    """With a power-of-two scale the fold multiplies weights and threshold by a power of two (4 here), which
    float arithmetic and slayer's dynamics carry exactly: the fixed-point network spikes exactly as the trained one.
    """
    from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
    from lava_qpsnn.training.loop import output_spikes

    net, latent = _power_of_two_gamma_net(bits, grid)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fixed = to_fixed_point(net)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # input untouched
    assert isinstance(net.blocks[0].synapse.pre_hook_fx, WeightQuantizer)
    for block, w in zip(fixed.blocks, latent, strict=True):
        assert isinstance(block.synapse.pre_hook_fx, IntegerWeights)
        integers = (block.synapse.weight.detach() * 64).reshape(w.shape).numpy()
        np.testing.assert_array_equal(integers, POWER_OF_TWO_GRIDS[bits, grid](w) * 128)
        assert block.neuron.threshold * 64 == 256
    spikes = encode_test_split(load_dataset("digits")[1], Encoding(time_steps=12, seed=3))[:64]
    trained, folded = output_spikes(net, spikes, layers=True), output_spikes(fixed, spikes, layers=True)
    assert all(layer.sum() > 0 for layer in trained), "the comparison needs spikes in every layer"
    for ours, theirs in zip(folded, trained, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("grid,loihi_bits", [("zero-free", 3), ("symmetric", 2)])
def test_quantized_export_writes_grid_integers_and_thresholds(grid, loihi_bits, quantized_checkpoints, tmp_path):
    """2 bits: the zero-free grid (-3, -1, 1, 3) takes 3 signed bits on Loihi, the ternary grid 2."""
    from lava.lib.dl import netx

    from netx_export import export_netx

    checkpoint = quantized_checkpoints[2, grid]
    rows = export_netx(checkpoint, tmp_path / "q.net")
    assert [r.weight_bits for r in rows[1:]] == [2, 2]
    assert [r.loihi_bits for r in rows[1:]] == [loihi_bits, loihi_bits]
    fixed = fixed_point_model(checkpoint)
    with h5py.File(tmp_path / "q.net", "r") as f:
        for i, block in enumerate(fixed.blocks, start=1):
            check_on_grid(f[f"layer/{i}/weight"][()], 2, f"layer {i}", grid)
            assert f[f"layer/{i}/neuron/vThMant"][()] == round(block.neuron.threshold * 64)
    netx.hdf5.Network(net_config=str(tmp_path / "q.net"))


def test_export_refuses_a_checkpoint_altered_off_its_grid(quantized_checkpoints, tmp_path, monkeypatch):
    from netx_export import export_netx

    checkpoint = quantized_checkpoints[2, "zero-free"]
    fixed = fixed_point_model(checkpoint)
    with torch.no_grad():
        fixed.blocks[1].synapse.weight[0, 0] += 1 / 64
    monkeypatch.setattr(writer, "fixed_point_model", lambda checkpoint: fixed)
    with pytest.raises(ExportError, match="layer 2 .* not on the declared 2-bit zero-free grid"):
        export_netx(checkpoint, tmp_path / "q.net")
    assert not (tmp_path / "q.net").exists()


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_lava_spikes_equal_the_fixed_point_model(bits, quantized_checkpoints, tmp_path):
    """Lava alone; both grids are compared with Lava and the simulator in test_simulate.py."""
    from lava_qpsnn.data import encode_test_split, load_dataset
    from lava_qpsnn.lava.run import run_lava
    from lava_qpsnn.training.loop import output_spikes
    from netx_export import export_netx

    checkpoint = quantized_checkpoints[bits, "symmetric" if bits == 8 else "zero-free"]
    export_netx(checkpoint, tmp_path / "q.net")
    spikes = encode_test_split(load_dataset("digits")[1], checkpoint.encoding)[:3]
    expected = output_spikes(fixed_point_model(checkpoint), spikes)
    assert expected.sum() > 0
    np.testing.assert_array_equal(run_lava(tmp_path / "q.net", spikes, progress=False), expected)


def test_diverged_weights_give_a_clear_error():
    from lava_qpsnn.training.models import build_model
    from lava_qpsnn.training.specs import ModelConfig

    net = quantize_model(build_model(ModelConfig.from_arch("8-10", (1, 8, 8), 10)), QuantConfig(2))
    with torch.no_grad():
        net.blocks[0].synapse.weight[0, 0] = float("nan")
    with pytest.raises(ExportError, match="NaN or infinite weights .* lower learning rate"):
        to_fixed_point(net)
