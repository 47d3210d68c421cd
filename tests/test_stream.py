"""Streaming: batches encode exactly the whole split's spikes, and no result depends on the batch size."""

import dataclasses

import numpy as np
import pytest

import lava_qpsnn.data.encoding as data_module
import lava_qpsnn.evaluation as evaluate_module
from lava_qpsnn.data import (
    Dataset,
    Encoding,
    SpikeStream,
    encode_test_split,
    load_dataset,
    rate_encode,
    spike_batches,
    stream_test_split,
)
from lava_qpsnn.evaluation import evaluate
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.netx import read_netx
from lava_qpsnn.report.network import report_network
from lava_qpsnn.sim import simulate, trace
from lava_qpsnn.training.loop import classify, output_spikes
from lava_qpsnn.training.prune import CRITERIA, calibration_batch, calibration_stream, channel_scores


def _odd_images(count: int) -> np.ndarray:
    """3x3 images: 9 pixels x 3 steps = 27 draws per sample, so every other sample starts mid-output."""
    return np.random.default_rng(11).random((count, 1, 3, 3)).astype(np.float32)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 50])
def test_stream_batches_are_the_sequential_encoding(batch_size):
    images = _odd_images(17)
    expected = rate_encode(images, 3, np.random.default_rng(4))  # numpy's own sequential draws
    stream = stream_test_split(Dataset(images, np.zeros(17, np.int64), 2), Encoding(time_steps=3, seed=4))
    batches = list(spike_batches(stream, batch_size))
    assert [len(b) for b in batches] == [min(batch_size, 17 - i) for i in range(0, 17, batch_size)]
    assert all(b.dtype == bool for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    np.testing.assert_array_equal(stream.encode(5, 6), expected[5:6])  # one sample alone
    np.testing.assert_array_equal(np.concatenate(list(spike_batches(stream, batch_size, samples=9))), expected[:9])


def test_a_stream_from_a_used_generator_continues_it():
    """After an odd number of float32 draws the generator keeps half an output: the stream starts with it."""
    images = _odd_images(6)
    rng = np.random.default_rng(2)
    rng.random(5, dtype=np.float32)
    state = rng.bit_generator.state
    assert state["has_uint32"] == 1
    expected = rate_encode(images, 3, rng)
    stream = SpikeStream(images, 3, state)
    for start in range(6):
        np.testing.assert_array_equal(stream.encode(start), expected[start:])
    np.testing.assert_array_equal(stream.first(4).encode(), expected[:4])


def test_encode_test_split_encodes_only_what_is_asked(monkeypatch):
    _, test = load_dataset("digits")
    encoding = Encoding(time_steps=5, seed=7)
    whole = rate_encode(test.images, 5, np.random.default_rng(7))
    counted = _count_encoded(monkeypatch)
    first = encode_test_split(test, encoding, 12)
    assert first.dtype == bool and counted == [12]
    np.testing.assert_array_equal(first, whole[:12])


def _count_encoded(monkeypatch) -> list[int]:
    """Patch the encoder to record how many samples each call draws."""
    counted: list[int] = []
    real = data_module._rate_spikes

    def counting(images, time_steps, rng):
        counted.append(len(images))
        return real(images, time_steps, rng)

    monkeypatch.setattr(data_module, "_rate_spikes", counting)
    return counted


def test_calibration_stream_is_the_calibration_batch():
    train_set, _ = load_dataset("digits")
    encoding = Encoding(time_steps=4, seed=0)
    rng = np.random.default_rng(9)  # the calibration recipe, written out
    index = rng.permutation(len(train_set))[:40]
    expected = rate_encode(train_set.images[index], 4, rng)
    np.testing.assert_array_equal(
        np.concatenate(list(spike_batches(calibration_stream(train_set, encoding, 40, 9), 7))), expected
    )
    batch = calibration_batch(train_set, encoding, 40, 9)
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch, expected)


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_simulator_batches_equal_one_batch_and_the_fixed_point_model(
    which, mlp_checkpoint, mlp_files, conv_checkpoint, conv_net
):
    checkpoint, path = (mlp_checkpoint, mlp_files[1]) if which == "mlp" else (conv_checkpoint, conv_net)
    spikes = encode_test_split(load_dataset("digits")[1], checkpoint.encoding, 11)
    net = read_netx(path)
    whole = simulate(net, spikes, layers=True, batch_size=11)
    for size in (1, 4):
        batched = simulate(net, spikes, layers=True, batch_size=size)
        assert len(batched) == len(whole)
        for a, b in zip(batched, whole, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole[-1], output_spikes(fixed_point_model(checkpoint), spikes))
    assert whole[-1].sum() > 0
    states, batched_states = trace(net, spikes, batch_size=11), trace(net, spikes, batch_size=3)
    for a, b in zip(states, batched_states, strict=True):
        np.testing.assert_array_equal(a.voltage, b.voltage)
        np.testing.assert_array_equal(a.current, b.current)


def test_evaluation_does_not_depend_on_the_batch_size(conv_checkpoint, conv_net):
    results = [evaluate(conv_net, samples=30, checkpoint=conv_checkpoint, batch_size=b) for b in (None, 1, 7)]
    figures = [dataclasses.replace(r, seconds=0.0) for r in results]
    assert figures[0] == figures[1] == figures[2]
    spikes = encode_test_split(load_dataset("digits")[1], conv_checkpoint.encoding, 30)
    labels = load_dataset("digits")[1].labels[:30]
    reference = classify(output_spikes(fixed_point_model(conv_checkpoint), spikes))
    assert results[0].samples == 30 and results[0].spike_agreement == 1.0
    assert results[0].accuracy == results[0].reference_accuracy == pytest.approx((reference == labels).mean())


def test_mismatched_samples_are_numbered_across_batches(monkeypatch, mlp_checkpoint, mlp_files):
    """A simulator that gets sample 9 wrong: evaluated in batches of 4, the mismatch is still sample 9."""
    net = mlp_files[1]
    target = encode_test_split(load_dataset("digits")[1], mlp_checkpoint.encoding, 10)[9]
    real = evaluate_module.simulate

    def wrong_on_sample_9(network, spikes, **kwargs):
        out = real(network, spikes, **kwargs).copy()
        for i, sample in enumerate(spikes):
            if np.array_equal(sample, target):
                out[i, 0, -1] ^= 1
        return out

    monkeypatch.setattr(evaluate_module, "simulate", wrong_on_sample_9)
    result = evaluate(net, samples=14, checkpoint=mlp_checkpoint, batch_size=4)
    assert result.mismatched_samples == (9,) and result.spike_agreement == pytest.approx(13 / 14)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_channel_scores_do_not_depend_on_batches(criterion, pruned_conv_checkpoint):
    train_set, _ = load_dataset("digits")
    net = pruned_conv_checkpoint.build()
    stream = calibration_stream(train_set, pruned_conv_checkpoint.encoding, 48, 1)
    whole = channel_scores(net, stream.encode(), criterion, batch_size=48)
    for scores in (
        channel_scores(net, stream, criterion, batch_size=5),
        channel_scores(net, stream.encode(), criterion, batch_size=13),
    ):
        for a, b in zip(scores, whole, strict=True):
            if criterion == "sca":  # float sums of membrane potentials, added in another order
                np.testing.assert_allclose(a.score, b.score, rtol=1e-6)
            else:
                np.testing.assert_array_equal(a.score, b.score)
            np.testing.assert_array_equal(a.rate, b.rate)  # spike counts: exact in any order
    if criterion == "svs":
        assert any(s.score.any() for s in whole), "the comparison needs spiking channels"


def test_report_encodes_only_its_samples_and_batches_do_not_change_it(monkeypatch, conv_net):
    counted = _count_encoded(monkeypatch)
    small = report_network(conv_net, samples=5, batch_size=2)
    assert small.samples == 5 and sum(counted) == 5 and max(counted) == 2
    one, many = report_network(conv_net, samples=12, batch_size=12), report_network(conv_net, samples=12, batch_size=5)
    assert [(r.spikes_per_sample, r.synops_per_sample) for r in one.layers] == [
        (r.spikes_per_sample, r.synops_per_sample) for r in many.layers
    ]
    assert one.accuracy == many.accuracy
    np.testing.assert_array_equal(one.example_output, many.example_output)
    assert one.spikes_per_sample > 0
