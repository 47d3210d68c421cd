"""The Lava process library, run with Lava (RunSteps, Loihi2SimCfg fixed_pt)."""

import json

import h5py
import numpy as np
import pytest
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc import io

from lava_qpsnn.data import encode_test_split, load_dataset, rate_encode
from lava_qpsnn.errors import ConfigError, LavaRuntimeError, NetxFileError
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.lava.processes import NO_LABEL, Classifier, Encoder, Readout
from lava_qpsnn.lava.run import to_lava_layout
from lava_qpsnn.netx.metadata import METADATA_ATTR
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.loop import classify, output_spikes

FIXED_PT = Loihi2SimCfg(select_tag="fixed_pt")


def _record(port, steps: int) -> io.sink.RingBuffer:
    sink = io.sink.RingBuffer(shape=port.shape, buffer=steps)
    port.connect(sink.a_in)
    return sink


@pytest.mark.parametrize("shape", [(64,), (1, 8, 8)], ids=["dense input", "conv input"])
def test_encoder_sends_the_training_encoding_and_repeats_after_the_buffer(shape):
    _, test = load_dataset("digits")
    count, steps, seed = 3, 5, 11
    images = test.images[:count].copy()
    images[1] = 0  # an all-zero sample
    encoder = Encoder(images=images, time_steps=steps, seed=seed, shape=shape)
    sink = _record(encoder.s_out, (count + 1) * steps)
    try:
        encoder.run(condition=RunSteps(num_steps=(count + 1) * steps), run_cfg=FIXED_PT)
        got = sink.data.get()
    finally:
        encoder.stop()
    expected = rate_encode(images, steps, np.random.default_rng(seed)).reshape(count, *shape, steps)
    np.testing.assert_array_equal(got[..., : count * steps], to_lava_layout(expected))
    np.testing.assert_array_equal(got[..., count * steps :], to_lava_layout(expected[:1]))  # sample 0 again
    assert got[..., steps : 2 * steps].sum() == 0 < got.sum()


def test_drawing_sample_by_sample_equals_encoding_the_whole_test_split():
    """What the encoder does (one draw per sample window) gives the training encoding of the split."""
    from lava_qpsnn.data import Encoding

    _, test = load_dataset("digits")
    rng = np.random.default_rng(5)
    per_sample = np.concatenate([rate_encode(test.images[i : i + 1], 3, rng) for i in range(5)])
    np.testing.assert_array_equal(per_sample, encode_test_split(test, Encoding(time_steps=3, seed=5))[:5])


def test_encoder_rejects_images_of_the_wrong_size_or_range():
    with pytest.raises(ConfigError, match="do not fit the input"):
        Encoder(images=np.zeros((2, 1, 8, 8)), time_steps=4, seed=0, shape=(63,))
    with pytest.raises(ConfigError, match=r"found 255.0..255.0: scale them as in training \(e.g. images / 255\)"):
        Encoder(images=np.full((2, 64), 255, np.uint8), time_steps=4, seed=0, shape=(64,))
    with pytest.raises(ConfigError, match=r"image values must be in \[0, 1\]"):
        Encoder(images=np.full((1, 64), np.nan), time_steps=4, seed=0, shape=(64,))


def test_readout_counts_after_the_latency_emits_at_window_ends_and_resets():
    steps, latency = 4, 1
    spikes = np.zeros((3, 3 * steps), dtype=np.int32)  # classes x (3 windows of 4 steps)
    spikes[0, 0] = 1  # step 0 of sample 0: the previous sample's tail, ignored
    spikes[2, [1, 2]] = 1  # sample 0 -> class 2
    spikes[0, 3] = 1
    # sample 1 (steps 4..7): no spike at all -> class 0, like classify's argmax
    spikes[1, [9, 10]] = 1  # sample 2: a tie between classes 1 and 2 -> the first, 1
    spikes[2, [10, 11]] = 1
    spikes[0, 8] = 5  # step 0 of sample 2: ignored
    source = io.source.RingBuffer(data=spikes)
    readout = Readout(num_classes=3, time_steps=steps, latency=latency, num_samples=3)
    source.s_out.connect(readout.a_in)
    labels = _record(readout.label_out, 3 * steps)
    try:
        source.run(condition=RunSteps(num_steps=3 * steps), run_cfg=FIXED_PT)
        predictions, emitted, counts = readout.predictions.get(), labels.data.get()[0], readout.counts.get()
    finally:
        source.stop()
    reference = classify(spikes.reshape(3, 3, steps).transpose(1, 0, 2) * (np.arange(steps) >= latency))
    np.testing.assert_array_equal(predictions, [2, 0, 1])
    np.testing.assert_array_equal(predictions, reference)
    np.testing.assert_array_equal(emitted, [NO_LABEL] * 3 + [2] + [NO_LABEL] * 3 + [0] + [NO_LABEL] * 3 + [1])
    np.testing.assert_array_equal(counts, 0)


def test_readout_window_must_outlast_the_network_depth():
    with pytest.raises(ConfigError, match="not longer than the network's depth"):
        Readout(num_classes=10, time_steps=3, latency=3, num_samples=1)


@pytest.mark.parametrize("which", ["mlp", "conv", "pruned conv"])
def test_classifier_equals_pytorch_fixed_point_and_simulator(
    which, mlp_checkpoint, mlp_files, conv_checkpoint, conv_net, pruned_conv_checkpoint, tmp_path
):
    checkpoint, net = {
        "mlp": (mlp_checkpoint, mlp_files[1]),
        "conv": (conv_checkpoint, conv_net),
        "pruned conv": (pruned_conv_checkpoint, tmp_path / "pruned.net"),
    }[which]
    if which == "pruned conv":
        from netx_export import export_netx

        export_netx(checkpoint, net)
    count = 24
    clf = Classifier(net, samples=count)
    labels = _record(clf.label_out, count * clf.time_steps)
    try:
        clf.run(condition=RunSteps(num_steps=count * clf.time_steps), run_cfg=FIXED_PT)
        predictions, emitted = clf.predictions.get(), labels.data.get()[0]
    finally:
        clf.stop()
    _, test = load_dataset("digits")
    spikes = encode_test_split(test, checkpoint.encoding)[:count]
    pytorch = classify(output_spikes(fixed_point_model(checkpoint), spikes))
    np.testing.assert_array_equal(predictions, pytorch)
    np.testing.assert_array_equal(predictions, classify(simulate(net, spikes)))
    np.testing.assert_array_equal(emitted[clf.time_steps - 1 :: clf.time_steps], predictions)
    assert (emitted != NO_LABEL).sum() == count
    assert (predictions == test.labels[:count]).mean() > 0.3, "the test needs a network that classifies"


def test_classifier_with_given_images_and_an_all_zero_sample(mlp_checkpoint, mlp_files):
    _, test = load_dataset("digits")
    images = test.images[10:14].copy()
    images[2] = 0
    clf = Classifier(mlp_files[1], images)
    try:
        clf.run(condition=RunSteps(num_steps=4 * clf.time_steps), run_cfg=FIXED_PT)
        predictions = clf.predictions.get()
    finally:
        clf.stop()
    encoding = mlp_checkpoint.encoding
    spikes = rate_encode(images, encoding.time_steps, np.random.default_rng(encoding.seed))
    np.testing.assert_array_equal(predictions, classify(output_spikes(fixed_point_model(mlp_checkpoint), spikes)))
    assert predictions[2] == 0  # no spikes in, none out: the first class, as classify decides


def test_classifier_window_shorter_than_the_network_is_a_clear_error(mlp_files, tmp_path):
    short = tmp_path / "short.net"
    short.write_bytes(mlp_files[1].read_bytes())
    with h5py.File(short, "a") as f:
        meta = json.loads(f.attrs[METADATA_ATTR])
        meta["encoding"]["time_steps"] = 2  # the MLP has 2 spiking layers
        meta["netx"]["reset_interval"] = 2
        f.attrs[METADATA_ATTR] = json.dumps(meta)
    with pytest.raises(NetxFileError, match="window of 2 time steps is not longer than the network's depth"):
        Classifier(short)


def test_classifier_bad_input(mlp_files, tmp_path):
    with pytest.raises(ConfigError, match="samples must be >= 1"):
        Classifier(mlp_files[1], samples=0)
    with pytest.raises(ConfigError, match="do not fit the input"):
        Classifier(mlp_files[1], np.zeros((2, 3, 8, 8)))
    with pytest.raises(LavaRuntimeError, match="lava-loihi is not installed"):
        Classifier(mlp_files[1], target="loihi2")


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_classifier_for_loihi2_puts_lava_loihi_adapters_between_host_and_chip(which, mlp_files, conv_net, monkeypatch):
    """lava-loihi is not installed here: stand-ins with its adapters' names and ports check the wiring."""
    import sys
    import types

    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.utils import loihi

    from lava_qpsnn.lava.processes import ClassifierModel

    class Adapter(AbstractProcess):
        def __init__(self, *, shape, **kwargs):
            super().__init__(shape=shape, **kwargs)
            self.inp, self.out = InPort(shape=shape), OutPort(shape=shape)

    spike = types.SimpleNamespace(
        **{name: type(name, (Adapter,), {}) for name in ("PyToNxAdapter", "PyToN3ConvAdapter", "NxToPyAdapter")}
    )
    monkeypatch.setitem(sys.modules, "lava.proc.embedded_io", types.SimpleNamespace(spike=spike))
    monkeypatch.setattr(loihi, "is_installed", lambda *args: True)
    model = ClassifierModel(Classifier(mlp_files[1] if which == "mlp" else conv_net, samples=2, target="loihi2"))
    expected = spike.PyToNxAdapter if which == "mlp" else spike.PyToN3ConvAdapter
    assert type(model.to_chip) is expected and type(model.from_chip) is spike.NxToPyAdapter
    assert model.from_chip.proc_params["num_message_bits"] == 0
    assert model.encoder.s_out.out_connections == [model.to_chip.inp]
    assert model.to_chip.out.out_connections == [model.network.inp]
    assert model.network.out.out_connections == [model.from_chip.inp]
    assert model.from_chip.out.out_connections == [model.readout.a_in]
    assert {"to_chip", "from_chip", "encoder", "readout"} <= set(model.find_sub_procs())
