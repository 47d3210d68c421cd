"""The batched NetX simulator: weight transformations, arithmetic, errors, and our exported networks.

Conformance with Lava on the lava-dl wheel's networks and on random networks is in
``test_conformance.py``.
"""

import contextlib
import dataclasses
import io

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import DataError, NetxFileError
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.lava.run import run_lava
from lava_qpsnn.netx import DenseLayer, InputLayer, NetxNetwork, Neuron, lava_dense_weights, read_netx
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.sim import simulate, trace
from lava_qpsnn.training.loop import LOSSES, TrainConfig, output_spikes
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx

SAMPLES = 4


def _test_spikes(encoding: Encoding, count: int = SAMPLES) -> np.ndarray:
    _, test = load_dataset("digits")
    return encode_test_split(test, encoding)[:count]


def _assert_matches_lava_and_pytorch(checkpoint, net_path, samples: int = SAMPLES) -> None:
    spikes = _test_spikes(checkpoint.encoding, samples)
    ours = simulate(net_path, spikes)
    assert ours.dtype == np.int8 and ours.sum() > 0, "the comparison needs output spikes"
    np.testing.assert_array_equal(ours, output_spikes(fixed_point_model(checkpoint), spikes))
    np.testing.assert_array_equal(ours, run_lava(net_path, spikes, progress=False))


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_exported_networks_equal_lava_and_the_fixed_point_model(
    which, mlp_checkpoint, mlp_files, conv_checkpoint, conv_net
):
    checkpoint, net = (mlp_checkpoint, mlp_files[1]) if which == "mlp" else (conv_checkpoint, conv_net)
    _assert_matches_lava_and_pytorch(checkpoint, net)


@pytest.mark.parametrize(
    "key", [(1, "zero-free"), (2, "zero-free"), (4, "zero-free"), (8, "symmetric"), (2, "symmetric"), (4, "symmetric")]
)
def test_quantized_networks_equal_lava_and_the_fixed_point_model(key, quantized_checkpoints, tmp_path):
    checkpoint = quantized_checkpoints[key]
    export_netx(checkpoint, tmp_path / "model.net")
    _assert_matches_lava_and_pytorch(checkpoint, tmp_path / "model.net")


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_trains_a_network_that_runs_spike_exact(loss, tmp_path):
    """Every loss, with the other training options on (scaled init, weight decay, cosine schedule), a 4-bit grid."""
    config = TrainConfig(epochs=2, loss=loss, init_gain=1.5, weight_decay=1e-3, schedule="cosine")
    encoding = Encoding(time_steps=12, seed=3)
    checkpoint = train_checkpoint(
        arch="24-10", encoding=encoding, config=config, quant=QuantConfig(4, first_last_bits=None), progress=False
    )
    export_netx(checkpoint, tmp_path / "model.net")
    _assert_matches_lava_and_pytorch(checkpoint, tmp_path / "model.net")


def test_pruned_conv_equals_lava_and_the_fixed_point_model(pruned_conv_checkpoint, tmp_path):
    """4-bit, both convs SVS-pruned to half their channels."""
    checkpoint = pruned_conv_checkpoint
    export_netx(checkpoint, tmp_path / "model.net")
    assert [layer.shape for layer in read_netx(tmp_path / "model.net").neuron_layers] == [(2, 8, 8), (4, 4, 4), (10,)]
    _assert_matches_lava_and_pytorch(checkpoint, tmp_path / "model.net", samples=16)


def test_layers_are_time_aligned_as_in_slayer(mlp_checkpoint, mlp_files):
    """Every layer's spikes equal slayer's fixed-point model's, whose zeros before a layer's latency come from
    slayer's own one-step delay per layer; the output is the last layer's entry."""
    spikes = _test_spikes(mlp_checkpoint.encoding)
    hidden, out = simulate(mlp_files[1], spikes, layers=True)
    slayer_hidden, slayer_out = output_spikes(fixed_point_model(mlp_checkpoint), spikes, layers=True)
    assert hidden.shape == (SAMPLES, 32, 12) and hidden[..., 1:].any() and out.any()
    np.testing.assert_array_equal(hidden, slayer_hidden)
    np.testing.assert_array_equal(out, slayer_out)
    np.testing.assert_array_equal(out, simulate(mlp_files[1], spikes))


# A chain 1 -> 1 -> 1 -> 1 of memoryless neurons (du = dv = 4096) with vth 10 and weight 20: a spike in gives a
# spike out one step later. The third layer's bias 11 > vth fires it on every step it runs, whatever its input.
CHAIN_INPUT = np.array([[[1, 0, 0, 1, 1, 0, 0, 1]], [[1, 1, 0, 0, 0, 0, 1, 0]]])
CHAIN_LAYERS = [  # by hand: layer l repeats the input l steps later, within each sample's window
    [[[0, 1, 0, 0, 1, 1, 0, 0]], [[0, 1, 1, 0, 0, 0, 0, 1]]],
    [[[0, 0, 1, 0, 0, 1, 1, 0]], [[0, 0, 1, 1, 0, 0, 0, 0]]],
    [[[0, 0, 0, 1, 1, 1, 1, 1]], [[0, 0, 0, 1, 1, 1, 1, 1]]],  # from its latency, 3, on
]


def _chain(path, biases=(0, 0, 11), delays=(0, 0, 0)) -> None:
    from lava_qpsnn.netx.metadata import write_metadata

    with h5py.File(path, "w") as handle:
        handle["layer/0/type"], handle["layer/0/shape"] = np.array([b"input"]), np.array([1])
        for i, (bias, delay) in enumerate(zip(biases, delays, strict=True), start=1):
            layer = handle.create_group(f"layer/{i}")
            layer["type"], layer["shape"], layer["weight"] = np.array([b"dense"]), np.array([1]), np.array([[20]])
            for key, value in {"type": np.array([b"CUBA"]), "iDecay": 4096, "vDecay": 4096, "vThMant": 10}.items():
                layer[f"neuron/{key}"] = value
            layer["neuron/refDelay"], layer["neuron/gradedSpike"] = 1, False
            if bias:
                layer["bias"] = np.array([bias])
            if delay:
                layer["delay"] = np.array([delay])
        write_metadata(handle, dataset="digits", encoding=Encoding(time_steps=8), num_classes=1)


def test_layers_are_time_aligned_as_in_lava_on_a_chain_worked_out_by_hand(tmp_path):
    """Layer l starts at step l of each sample (no tail of the previous sample: its last input spike would reach
    layer 1 at the next window's step 0); a continuous run lets the bias act from step 0."""
    _chain(tmp_path / "chain.net")
    expected = [np.array(layer) for layer in CHAIN_LAYERS]
    for name, ours in [
        ("simulator", simulate(tmp_path / "chain.net", CHAIN_INPUT, layers=True)),
        ("lava", run_lava(tmp_path / "chain.net", CHAIN_INPUT, layers=True, progress=False)),
    ]:
        for index, (layer, hand) in enumerate(zip(ours, expected, strict=True), start=1):
            np.testing.assert_array_equal(layer, hand, err_msg=f"{name}, layer {index}")
    continuous = simulate(tmp_path / "chain.net", CHAIN_INPUT, layers=True, continuous=True)
    np.testing.assert_array_equal(continuous[0], expected[0])
    np.testing.assert_array_equal(continuous[1], expected[1])
    assert continuous[2].all()


DELAYED_INPUT = np.array([[[1, 0, 0, 0, 0, 0, 1, 0]], [[0, 1, 0, 0, 0, 0, 0, 0]]])
DELAYED_LAYERS = [  # by hand: delays 2, 0, 2; layer 2's bias 11 > vth fires it on every step it runs
    [[[0, 0, 0, 1, 0, 0, 0, 0]], [[0, 0, 0, 0, 1, 0, 0, 0]]],  # the input 3 steps later; step 6's is lost past 7
    [[[0, 0, 1, 1, 1, 1, 1, 1]], [[0, 0, 1, 1, 1, 1, 1, 1]]],  # from its latency, 2, on
    [[[0, 0, 0, 0, 0, 1, 1, 1]], [[0, 0, 0, 0, 0, 1, 1, 1]]],  # layer 2 three steps later: from step 5 on
]


def test_axonal_delays_stay_in_their_sample_worked_out_by_hand(tmp_path):
    """A spike delayed past its window's end is lost, and a layer's tail before its reset never reaches the next
    layer through a delay: in the simulator and in ONE Lava run over both samples. Plain netx (no clearing of the
    delay buffers) delivers sample 0's last spike into sample 1, and layer 2's tail (its bias acts from step 0 in
    Lava) reaches layer 3 at steps 3 and 4 (its reset), even in the first window."""
    _chain(tmp_path / "delays.net", biases=(0, 11, 0), delays=(2, 0, 2))
    expected = [np.array(layer) for layer in DELAYED_LAYERS]
    for name, ours in [
        ("simulator", simulate(tmp_path / "delays.net", DELAYED_INPUT, layers=True)),
        ("lava", run_lava(tmp_path / "delays.net", DELAYED_INPUT, layers=True, progress=False)),
    ]:
        for index, (layer, hand) in enumerate(zip(ours, expected, strict=True), start=1):
            np.testing.assert_array_equal(layer, hand, err_msg=f"{name}, layer {index}")


def test_a_window_no_input_can_cross_for_the_delays_is_refused(tmp_path):
    """3 layers and delays 2 + 0 + 3: the input reaches the output at step 8 at the earliest, past a window of 8."""
    _chain(tmp_path / "slow.net", biases=(0, 11, 0), delays=(2, 0, 3))
    message = r"window of 8 time steps is not longer .* \(3 spiking layers, one step each, and at least 5 steps of"
    with pytest.raises(NetxFileError, match=message):
        run_lava(tmp_path / "slow.net", DELAYED_INPUT, progress=False)


def test_samples_are_independent_and_batch_order_does_not_matter(mlp_files, mlp_checkpoint):
    spikes = _test_spikes(mlp_checkpoint.encoding)
    together = simulate(mlp_files[1], spikes)
    alone = np.concatenate([simulate(mlp_files[1], spikes[i : i + 1]) for i in range(SAMPLES)])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(simulate(mlp_files[1], torch.from_numpy(spikes[::-1].copy())), together[::-1])


# ---------------------------------------------------------------- netx's weight transformations


def _netx_and_lava_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """What netx + Lava's Dense (fixed_pt) do to integer weights, with their own functions."""
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):  # netx prints and divides by 0
        shifted, num_bits, exponent, _ = optimize_weight_bits(weight)
    sign = determine_sign_mode(shifted)
    return truncate_weights(clip_weights(shifted, sign, num_bits=8), sign, num_bits), exponent


def _integer_matrices():
    return st.tuples(
        st.integers(1, 6),
        st.integers(1, 6),
        st.integers(0, 2**32 - 1),
        st.sampled_from(["mixed", "pos", "neg"]),
        st.integers(1, 9),
        st.integers(0, 4),
    )


@settings(max_examples=200, deadline=None)
@given(_integer_matrices())
def test_dense_weights_are_transformed_exactly_as_netx_and_lava_do(params):
    rows, cols, seed, sign, bits, shift = params
    rng = np.random.default_rng(seed)
    low, high = {"mixed": (-(1 << bits), 1 << bits), "pos": (0, 1 << bits), "neg": (-(1 << bits), 0)}[sign]
    weight = rng.integers(low, high + 1, size=(rows, cols)) << shift
    weight = np.clip(weight, -256 if sign == "neg" else -400, 255 if sign == "pos" else 400)
    if not weight.any():
        weight[0, 0] = high or low
    try:
        ours = lava_dense_weights(weight)
    except NetxFileError as exc:
        assert "cannot" in str(exc) or "beyond" in str(exc)
        return
    theirs, exponent = _netx_and_lava_weights(weight)
    np.testing.assert_array_equal(ours[0], theirs)
    assert ours[1] == exponent


def test_netx_weight_traps_are_reproduced():
    """Non-positive matrices are distorted ([-2, -4] acts as [-2, -2], [-255, 0] as [0, 0]); mixed > 254 clips."""
    weight, exp = lava_dense_weights(np.array([[-2, -4]]))
    np.testing.assert_array_equal(weight >> -exp, [[-2, -2]])
    weight, _ = lava_dense_weights(np.array([[-255, 0]]))  # Lava shifts by -1: numpy gives 0
    np.testing.assert_array_equal(weight, [[0, 0]])
    weight, exp = lava_dense_weights(np.array([[300, -1]]))
    np.testing.assert_array_equal(weight >> -exp if exp < 0 else weight, [[254, -1]])


# ---------------------------------------------------------------- arithmetic on a hand-made network


def _one_neuron(weight: int, *, du: int = 4095, dv: int = 0, vth: int = 10, bias: int = 0) -> NetxNetwork:
    neuron = Neuron(vth=vth, du=du, dv=dv, bias=np.array([bias]))
    return NetxNetwork("hand.net", (InputLayer((1,)), DenseLayer((1,), np.array([[weight]]), 0, neuron)))


def test_lif_arithmetic_step_by_step():
    """u, v and spikes of one neuron, computed by hand from Lava's formulas (module docstring)."""
    net = _one_neuron(100, du=2047, dv=1024, vth=200)  # u keeps 2048/4096, v keeps 3072/4096
    x = np.ones((1, 1, 5))
    (layer,) = trace(net, x, continuous=True)
    # a = 100 from step 1 on; u = u/2 + 6400; v = trunc(v * 3/4) + u; spike if v > 12800
    np.testing.assert_array_equal(layer.current[0, 0], [0, 6400, 9600, 11200, 12000])
    np.testing.assert_array_equal(layer.voltage[0, 0], [0, 6400, 0, 11200, 0])
    np.testing.assert_array_equal(layer.spikes[0, 0], [0, 0, 1, 0, 1])


def test_negative_values_decay_toward_zero_and_bias_acts_from_the_first_step():
    net = _one_neuron(-3, du=4095, dv=1, vth=1000, bias=-1)  # v keeps 4095/4096: rtz matters
    (layer,) = trace(net, np.ones((1, 1, 3)), continuous=True)
    # step 0: v = -64 (bias); step 1: trunc(-64 * 4095 / 4096) = -63, -63 - 192 - 64 = -319
    np.testing.assert_array_equal(layer.voltage[0, 0], [-64, -319, -574])
    (reset_mode,) = trace(net, np.ones((1, 1, 3)))
    np.testing.assert_array_equal(reset_mode.voltage[0, 0], [0, -256, -511])  # starts at its latency, step 1


def test_huge_inputs_wrap_u_once_and_clip_v_like_lava():
    """Lava's u "wrap" is one correction by 2^24, not a modulo (a conv's raw weights can drive it); v is clipped."""
    net = _one_neuron(400_000, du=-1, dv=4096, vth=1 << 17)  # u does not decay; v = u; never spikes
    (layer,) = trace(net, np.ones((1, 1, 4)), continuous=True)
    expected_u, u = [0], 0
    for _ in range(3):
        d = u + (400_000 << 6)
        u = d - (1 << 24) if d > 1 << 23 else d + (1 << 24) if d <= -(1 << 23) else d
        expected_u.append(u)
    np.testing.assert_array_equal(layer.current[0, 0], expected_u)
    assert abs(layer.current[0, 0]).max() > 1 << 24  # one correction leaves u outside 24 bits
    np.testing.assert_array_equal(layer.voltage[0, 0], np.clip(expected_u, -(1 << 23) + 1, (1 << 23) - 1))


def test_sums_beyond_float32_exactness_are_taken_in_float64():
    from lava_qpsnn.sim.engine import _synapse

    fan_in = 3000
    weight = np.arange(fan_in).reshape(1, fan_in) % 255 + 1
    net = _one_neuron(1, du=4095, dv=4096, vth=(1 << 17) - 1)
    wide = dataclasses.replace(net.layers[1], weight=weight)
    assert _synapse(wide).dtype == torch.float64 and _synapse(net.layers[1]).dtype == torch.float32
    x = np.zeros((1, fan_in, 2))
    x[0, ::2, 0] = 1
    (layer,) = trace(dataclasses.replace(net, layers=(InputLayer((fan_in,)), wide)), x, continuous=True)
    d = int(weight[0, ::2].sum()) << 6
    assert layer.current[0, 0, 1] == d - (1 << 24) * (d > 1 << 23)


# ---------------------------------------------------------------- one-line errors


def _write(path, layers: list[dict]) -> None:
    with h5py.File(path, "w") as handle:
        for i, layer in enumerate(layers):
            group = handle.create_group(f"layer/{i}")
            for key, value in layer.items():
                if isinstance(value, dict):
                    for k, v in value.items():
                        group[f"{key}/{k}"] = v
                else:
                    group[key] = value


NEURON = {"type": b"CUBA", "iDecay": 4096, "vDecay": 2048, "vThMant": 10}
INPUT = {"type": b"input", "shape": np.array([4])}
DENSE = {"type": b"dense", "shape": np.array([3]), "weight": np.ones((3, 4)), "neuron": NEURON}
IMAGE = {"type": b"input", "shape": np.array([1, 4, 4])}
CONV = {"type": b"conv", "shape": np.array([2, 2, 2]), "weight": np.ones((2, 1, 3, 3)), "stride": 1, "padding": 0}
CONV |= {"dilation": 1, "groups": 1, "neuron": NEURON}


@pytest.mark.parametrize(
    "layers, message",
    [
        ([INPUT, {**DENSE, "type": b"pool"}], r"/layer/1 has type 'pool', which the simulator does not support"),
        ([INPUT, {**DENSE, "neuron": {**NEURON, "type": b"SDNN"}}], r"/layer/1/neuron has neuron type 'SDNN'"),
        ([INPUT, {k: v for k, v in DENSE.items() if k != "weight"}], r"/layer/1 has no 'weight' entry"),
        ([INPUT, {**DENSE, "weight": np.ones((3, 5))}], r"/layer/1 has weight of shape \(3, 5\), expected \(3, 4\)"),
        ([INPUT, {**DENSE, "weight": np.zeros((3, 4))}], r"/layer/1 has all-zero weights"),
        ([INPUT, {**DENSE, "weight": np.full((3, 4), 300)}], r"same-sign weights in \[300, 300\]"),
        ([INPUT, {**DENSE, "delay": -np.ones(3)}], r"/layer/1 has delay=-1: expected >= 0 \(delays; Lava drops"),
        (
            [INPUT, {**DENSE, "neuron": {**NEURON, "vDecay": 5000}}],
            r"/layer/1/neuron has vDecay=5000: expected 0..4096",
        ),
        ([INPUT, {**DENSE, "neuron": {**NEURON, "messageBits": 3}}], r"has 'messageBits'"),
        ([INPUT, {**DENSE, "bias": np.ones(2)}], r"bias of shape \(2,\)"),
        ([INPUT, INPUT], r"/layer/1 is a second 'input' layer"),
        ([{**DENSE, "type": b"flatten"}], r"/layer/0 is 'flatten': /layer/0 must be an 'input' layer"),
        (
            [IMAGE, CONV, {**DENSE, "weight": np.ones((3, 8))}],
            r"/layer/2 is dense after a \(2, 2, 2\) layer.*'flatten'",
        ),
        (
            [IMAGE, {**CONV, "shape": np.array([2, 3, 3])}],
            r"has shape \(2, 3, 3\), but its weight and input .* \(2, 2, 2\)",
        ),
        ([IMAGE, {**CONV, "delay": np.ones(2)}], r"/layer/1 has conv delays, which netx ignores silently"),
        ([IMAGE, {**CONV, "groups": 2}], r"/layer/1 has weight of shape \(2, 1, 3, 3\) with groups=2"),
        ([INPUT, {**DENSE, "weight": np.full((3, 4), np.nan)}], r"/layer/1 has weight with NaN or infinite values"),
        ([INPUT, {**DENSE, "weight": np.full((3, 4), b"abc")}], r"/layer/1 has weight of type \|S3: expected"),
        ([INPUT, {**DENSE, "weight": {"x": 1}}], r"/layer/1 has a group 'weight' where netx expects a dataset"),
        ([INPUT, {**DENSE, "bias": np.full(3, 1e30)}], r"has bias=1000000000000000019884624838656: expected -4096"),
        ([INPUT, {**DENSE, "neuron": {**NEURON, "vThMant": [10, 20]}}], r"vThMant of shape \(2,\): expected one"),
        ([INPUT, {**DENSE, "neuron": {**NEURON, "vThMant": 1 << 17}}], r"vThMant=131072: expected 0..131071"),
        ([INPUT, {**DENSE, "neuron": {**NEURON, "iDecay": np.nan}}], r"iDecay with NaN or infinite values"),
        ([INPUT, {**DENSE, "neuron": {**NEURON, "vDecay": 2.5}}], r"has vDecay=2.5: expected integers"),
        ([INPUT, {**DENSE, "type": b""}], r"/layer/1 has type '': expected a non-empty ASCII name"),
        ([INPUT, {**DENSE, "type": b"\xe9"}], r"/layer/1 has type .*: expected a non-empty ASCII name"),
        ([INPUT, {**DENSE, "shape": np.array([3.5])}], r"/layer/1 has shape=3.5: expected integers"),
        ([INPUT, {**DENSE, "delay": np.full(3, np.inf)}], r"/layer/1 has delay with NaN or infinite values"),
        ([IMAGE, {**DENSE, "weight": np.ones((3, 16))}], r"/layer/1 is dense after a \(1, 4, 4\) layer"),
        ([IMAGE, {**CONV, "stride": 0}], r"/layer/1 has stride=0: expected >= 1"),
        ([IMAGE, {**CONV, "dilation": -1}], r"/layer/1 has dilation=-1: expected >= 1"),
        ([IMAGE, {**CONV, "padding": [0, -1]}], r"/layer/1 has padding=-1: expected >= 0"),
        ([IMAGE, {k: v for k, v in CONV.items() if k != "neuron"}], r"/layer/1 is a conv layer without a 'neuron'"),
        ([INPUT, DENSE, {"type": b"flatten"}], r"/layer/2 is a flatten layer at the end"),
    ],
)
def test_unsupported_content_is_a_one_line_error(tmp_path, layers, message):
    _write(tmp_path / "bad.net", layers)
    with pytest.raises(NetxFileError, match=message) as info:
        read_netx(tmp_path / "bad.net")
    assert "\n" not in str(info.value) and str(info.value).startswith("bad.net: ")


def test_gaps_in_layer_numbering_are_an_error(tmp_path):
    _write(tmp_path / "gap.net", [INPUT, DENSE])
    with h5py.File(tmp_path / "gap.net", "a") as handle:
        handle.move("layer/1", "layer/2")
    with pytest.raises(NetxFileError, match=r"/layer/0../layer/N-1 without gaps, found 0, 2"):
        read_netx(tmp_path / "gap.net")


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(NetxFileError, match="no network file at"):
        simulate(tmp_path / "none.net", np.zeros((1, 4, 2)))
    (tmp_path / "text.net").write_text("not hdf5")
    with pytest.raises(NetxFileError, match="is not an HDF5 file"):
        read_netx(tmp_path / "text.net")
    with h5py.File(tmp_path / "empty.net", "w"):
        pass
    with pytest.raises(NetxFileError, match="has no /layer/0 group"):
        read_netx(tmp_path / "empty.net")


def test_bad_inputs(tmp_path):
    _write(tmp_path / "ok.net", [INPUT, DENSE])
    with pytest.raises(  # the caller's data, not the file, is wrong
        DataError, match=r"input spikes of shape \(2, 5, 3\) do not fit ok.net: expected N x \(4,\)"
    ):
        simulate(tmp_path / "ok.net", np.zeros((2, 5, 3)))
    np.testing.assert_array_equal(  # Lava's synapse reads any non-zero input as a spike
        simulate(tmp_path / "ok.net", np.full((2, 4, 3), 2.5)), simulate(tmp_path / "ok.net", np.ones((2, 4, 3)))
    )
    assert simulate(tmp_path / "ok.net", np.ones((2, 2, 2, 3), dtype=bool)).shape == (2, 3, 3)
    _write(tmp_path / "neuron.net", [{**INPUT, "neuron": NEURON}, DENSE])
    with pytest.raises(DataError, match="drives its input neuron's a_in: give integers"):
        simulate(tmp_path / "neuron.net", np.full((2, 4, 3), 0.5))
