"""A neuron per layer and BatchNorm on any subset of layers: the specs, the notation, the checkpoint,
the threshold folding by hand, learnable decays exported at their trained values, and a hand-written
network through quantization, SVS pruning, export and Lava, spike for spike in every layer."""

import functools

import h5py
import numpy as np
import pytest
import torch

from lava_qpsnn.cli import main
from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.report import report_network
from lava_qpsnn.report.diagnosis import diagnose
from lava_qpsnn.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lava_qpsnn.training.loop import TrainConfig, init_weights, output_spikes, train
from lava_qpsnn.training.models import build_model, prepare_model
from lava_qpsnn.training.norm import BatchNorm
from lava_qpsnn.training.prune import PruneConfig, prune_and_finetune
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.slayer_blocks import config_of_blocks
from lava_qpsnn.training.specs import Conv, Dense, Flatten, ModelConfig, NeuronConfig, Pool, format_arch, parse_arch

ENCODING = Encoding(time_steps=10, seed=5)
BASE = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5, "tau_grad": 0.003}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _neuron_groups(path) -> list[dict]:
    with h5py.File(path) as f:
        layers = [f["layer"][k] for k in sorted(f["layer"], key=int)]
        return [{n: int(g["neuron"][n][()]) for n in ("iDecay", "vDecay", "vThMant")} for g in layers if "neuron" in g]


def test_the_notation_says_per_layer_batchnorm_and_thresholds_and_round_trips():
    default = NeuronConfig(threshold=2.0, voltage_decay=0.25)
    layers = parse_arch("16c3bn-p2t0.5-32c3s2t1.25-128bnt1.5-10bn", neuron=default)
    assert layers == (
        Conv(16, 3, norm="bn"),
        Pool(2, neuron=NeuronConfig(threshold=0.5, voltage_decay=0.25)),
        Conv(32, 3, 2, neuron=NeuronConfig(threshold=1.25, voltage_decay=0.25)),
        Flatten(),
        Dense(128, neuron=NeuronConfig(threshold=1.5, voltage_decay=0.25), norm="bn"),
        Dense(10, norm="bn"),
    )
    assert format_arch(layers, default) == "16c3bn-p2t0.5-32c3s2t1.25-128bnt1.5-10bn"
    assert parse_arch("128t2-10", neuron=default) == (Dense(128), Dense(10))  # the model's own threshold: no override
    assert format_arch(parse_arch("8t0.001-10t3")) == "8t0.001-10t3"


@pytest.mark.parametrize(
    "arch, message",
    [
        ("8c3-p2bn-10", "bad layer 'p2bn': pooling acts on spikes and takes no BatchNorm"),
        ("16t-10", "bad layer '16t'"),
        ("16t0-10", "neuron threshold must be a finite number > 0"),
        ("16nobn-10", "bad layer '16nobn'.*bn \\(BatchNorm\\), d \\(axonal delays\\) and tX \\(threshold X\\)"),
    ],
)
def test_bad_per_layer_notation_is_a_one_line_error(arch, message):
    with pytest.raises(ConfigError, match=message) as info:
        ModelConfig.from_arch(arch, (1, 8, 8), 10)
    assert "\n" not in str(info.value)


def test_one_network_has_one_config_and_a_uniform_one_is_written_as_before():
    plain = ModelConfig(parse_arch("8c3-p2-16-10"), (1, 8, 8), norm="bn")
    spelled = ModelConfig(
        (Conv(8, 3, norm="bn"), Pool(2, neuron=NeuronConfig()), Flatten(), Dense(16, norm="bn"), Dense(10)), (1, 8, 8)
    )
    assert spelled == plain and spelled.norm == "bn"
    # the model.pt entry of a uniform network, written out by hand as files before per-layer settings hold it
    assert ModelConfig(parse_arch("32-10"), (1, 8, 8)).to_dict() == {
        "layers": [{"kind": "dense", "features": 32}, {"kind": "dense", "features": 10}],
        "image_shape": [1, 8, 8],
        "norm": "none",
        "neuron": {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5, "tau_grad": 0.003, "scale_grad": 1.0},
    }
    subset = ModelConfig(parse_arch("8c3bn-16c3-32bn-10"), (1, 8, 8))
    assert [subset.norm_at(i) for i in range(5)] == ["bn", "none", "none", "bn", "none"] and subset.norm == "none"
    with pytest.raises(ConfigError, match="a layer's norm is 'bn', 'bias' or None"):
        Dense(10, norm="none")


def test_build_model_gives_each_block_its_own_neuron_and_batchnorm():
    learned = NeuronConfig(threshold=0.75, current_decay=0.25, voltage_decay=0.125, requires_grad=True)
    layers = (Conv(4, 3, norm="bn"), Pool(2, neuron=NeuronConfig(threshold=0.5)), Flatten(), Dense(8, neuron=learned))
    config = ModelConfig((*layers, Dense(10, norm="bn")), (1, 8, 8), neuron=NeuronConfig(threshold=1.5))
    net = build_model(config)
    neurons = [b.neuron for b in net.blocks if hasattr(b, "neuron")]
    assert [n.threshold for n in neurons] == [1.5, 0.5, 0.75, 1.5]  # all multiples of 1/64: slayer keeps them
    assert [type(n.norm).__name__ for n in neurons] == ["BatchNorm", "NoneType", "NoneType", "BatchNorm"]
    assert neurons[2].current_decay.item() == 1024 and neurons[2].voltage_decay.item() == 512
    assert [n.current_decay.requires_grad for n in neurons] == [False, False, True, False]
    assert net.blocks[1].synapse.weight.flatten()[0] == pytest.approx(1.1 * 0.5)  # pooling weight: 1.1 thresholds
    assert ModelConfig.from_dict(config.to_dict()) == config
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=ENCODING)
    assert checkpoint.model == config  # decays as built: nothing learned yet


@pytest.mark.parametrize(
    "arch, norm, neuron",
    [
        ("8c3-p2-16c3-32-10", "bn", NeuronConfig(threshold=2.0, voltage_decay=0.25)),  # one for all, as before
        ("8c3bnt0.5-p2t2-16c3-32bn-10t0.25", "none", NeuronConfig(current_decay=0.5, requires_grad=True)),
    ],
)
def test_slayer_blocks_read_back_as_the_config_they_were_built_from(arch, norm, neuron):
    """Thresholds powers of 2 and decays in 1/4096: slayer stores ``tau_grad * threshold`` and ``4096 * decay``,
    which give these back exactly."""
    config = ModelConfig.from_arch(arch, (1, 8, 8), 10, norm=norm, neuron=neuron)
    assert config_of_blocks(build_model(config).blocks, (1, 8, 8)) == config


def test_batchnorm_on_a_pooling_block_is_refused_in_one_line():
    """slayer's Pool drops a norm given to its constructor; one set on its neuron afterwards would act in
    training and be lost in the checkpoint."""
    from lava.lib.dl import slayer

    cuba = slayer.block.cuba
    blocks = [cuba.Conv(BASE, 1, 4, 3, padding=1), cuba.Pool(BASE, 2), cuba.Flatten(), cuba.Dense(BASE, 64, 10)]
    blocks[1].neuron.norm = BatchNorm(4)
    with pytest.raises(ConfigError, match=r"^blocks.1 \(Pool\) has a neuron norm: .* remove its norm$"):
        config_of_blocks(blocks, (1, 8, 8))


def test_a_checkpoint_written_before_per_layer_settings_loads_and_writes_the_same_model():
    path = "models/mnist/mnist-4bit-svs50.pt"
    stored = torch.load(path, weights_only=True)["model"]
    assert all(set(layer) <= {"kind", "features", "channels", "kernel", "stride", "padding", "dilation", "groups"}
               for layer in stored["layers"])  # fmt: skip
    assert load_checkpoint(path).to_dict()["model"] == stored


def test_the_command_line_sets_per_layer_batchnorm_and_thresholds(tmp_path):
    out = tmp_path / "model.pt"
    arch = ["--arch", "8bnt0.5-16-10", "--threshold", "2", "--epochs", "0", "--time-steps", "4"]
    assert main(["--no-progress", "train", *arch, "--out", str(out)]) == 0
    model = load_checkpoint(out).model
    assert model.neuron == NeuronConfig(threshold=2.0)
    assert model.layers == (Dense(8, neuron=NeuronConfig(threshold=0.5), norm="bn"), Dense(16), Dense(10))


class TwoThresholds(torch.nn.Module):
    """Two dense layers written by hand: thresholds 1.25 and 0.75, the first with learnable decays."""

    def __init__(self) -> None:
        from lava.lib.dl import slayer

        super().__init__()
        cuba = slayer.block.cuba
        first = {**BASE, "threshold": 1.25, "requires_grad": True}
        second = {**BASE, "threshold": 0.75, "current_decay": 0.5, "voltage_decay": 0.25}
        self.blocks = torch.nn.ModuleList([cuba.Dense(first, 64, 16), cuba.Dense(second, 16, 10)])


def _signs(rows: int, columns: int) -> torch.Tensor:
    """+1 where (7 i + j) % 3 != 0, else -1: two thirds excitatory."""
    i, j = torch.meshgrid(torch.arange(rows), torch.arange(columns), indexing="ij")
    return torch.where((7 * i + j) % 3 != 0, 1.0, -1.0)


def test_thresholds_fold_per_layer_and_learned_decays_export_at_their_trained_values(
    spike_exact_layers, digits, tmp_path
):
    """By hand: 4-bit symmetric ReScaW, S = 7, levels stored as m * 2^5 (7 * 32 = 224 <= 254); every |W| of
    layer 0 is 0.5 and of layer 1 0.25, so gamma = mean |W| is 0.5 and 0.25 and every level is +-7.
    vth = round(theta * 2^5 * S / gamma): 1.25 * 32 * 7 / 0.5 = 560 and 0.75 * 32 * 7 / 0.25 = 672.
    Layer 0's decays, as training left them, are 1000.4 and 2500.6 of 4096: slayer rounds them to
    1000 and 2501 when it integrates, and so must the file."""
    net = prepare_model(TwoThresholds(), (1, 8, 8))
    quantize_model(net, QuantConfig(4, first_last_bits=None, gamma="mean", grid="symmetric"))
    with torch.no_grad():
        net.blocks[0].synapse.weight.copy_(0.5 * _signs(16, 64).reshape(net.blocks[0].synapse.weight.shape))
        net.blocks[1].synapse.weight.copy_(0.25 * _signs(10, 16).reshape(net.blocks[1].synapse.weight.shape))
        net.blocks[0].neuron.current_decay.fill_(1000.4)
        net.blocks[0].neuron.voltage_decay.fill_(2500.6)
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=ENCODING, image_shape=(1, 8, 8))
    checkpoint = load_checkpoint(save_checkpoint(checkpoint, tmp_path / "m.pt"))
    assert checkpoint.scales == (0.5, 0.25)
    first, second = (checkpoint.model.neuron_at(i) for i in range(2))
    assert (first.threshold, first.requires_grad, second.threshold) == (1.25, True, 0.75)
    rebuilt = checkpoint.build().blocks[0].neuron
    assert rebuilt.current_decay.requires_grad and rebuilt.current_decay.item() == np.float32(1000.4)
    assert rebuilt.voltage_decay.item() == np.float32(2500.6)

    spikes = encode_test_split(digits[1], ENCODING)[:12]
    reference = spike_exact_layers(checkpoint, tmp_path / "m.net", spikes)
    assert all(layer.any() for layer in reference)
    assert _neuron_groups(tmp_path / "m.net") == [
        {"iDecay": 1000, "vDecay": 2501, "vThMant": 560},
        {"iDecay": 2048, "vDecay": 1024, "vThMant": 672},
    ]
    with h5py.File(tmp_path / "m.net") as f:
        assert set(np.abs(f["layer/1/weight"][()]).flat) == {224} == set(np.abs(f["layer/2/weight"][()]).flat)

    found = diagnose(checkpoint, tmp_path / "m.net", samples=12, lava_samples=2, progress=False)
    assert found.stages[-3:] == ("fixed-point", "simulator", "lava") and not [d for d in found.divergences if d.exact]
    assert [layer.spikes["simulator"] for layer in found.layers] == [float(a.sum()) / 12 for a in reference]
    report = report_network(tmp_path / "m.net", checkpoint=checkpoint, samples=12)
    assert [layer.summary.threshold for layer in report.layers if layer.summary.kind == "dense"] == [560, 672]

    train_net = checkpoint.build().train()  # training can go on: the decays get gradients
    train_net(torch.from_numpy(spikes[:4].astype(np.float32))).sum().backward()
    assert train_net.blocks[0].neuron.voltage_decay.grad.abs().sum() > 0


class PerLayer(torch.nn.Module):
    """A network as a user writes it: another threshold, decays or surrogate in every layer, learnable
    decays in one, BatchNorm on two of the four weight layers."""

    def __init__(self) -> None:
        from lava.lib.dl import slayer

        super().__init__()
        cuba = slayer.block.cuba
        learned = {**BASE, "current_decay": 0.7, "voltage_decay": 0.3, "requires_grad": True}
        self.blocks = torch.nn.ModuleList(
            [
                cuba.Conv({**BASE, "threshold": 1.25, "norm": functools.partial(BatchNorm, 6)}, 1, 6, 3, padding=1),
                cuba.Pool({**BASE, "threshold": 0.75}, 2, weight_scale=1.1 * 0.75),
                cuba.Conv(learned, 6, 8, 3, padding=0),
                cuba.Flatten(),
                cuba.Dense({**BASE, "threshold": 0.75, "norm": functools.partial(BatchNorm, 16)}, 32, 16),
                cuba.Dense({**BASE, "threshold": 0.5, "tau_grad": 0.01}, 16, 10),
            ]
        )

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


@pytest.mark.slow
def test_a_network_with_a_neuron_per_layer_and_batchnorm_on_some_goes_through_the_pipeline(
    spike_exact_layers, digits, tmp_path
):
    train_set, test_set = digits
    torch.manual_seed(0)
    net = prepare_model(PerLayer(), (1, 8, 8))
    init_weights(net, 1.0)
    quantize_model(net, QuantConfig(4, "baseline"))
    small_train = type(train_set)(train_set.images[:400], train_set.labels[:400], 10)
    train(net, small_train, test_set, ENCODING, TrainConfig(epochs=3), progress=False)
    prune = PruneConfig((0.5,), "svs", finetune_epochs=1, calibration_samples=64)
    small, record, _ = prune_and_finetune(net, prune, small_train, test_set, ENCODING, TrainConfig(), progress=False)
    assert record["widths_before"] == [6, 8, 16, 10]
    checkpoint = Checkpoint.of(small, dataset="digits", encoding=ENCODING, pruning=record, image_shape=(1, 8, 8))
    checkpoint = load_checkpoint(save_checkpoint(checkpoint, tmp_path / "m.pt"))
    model = checkpoint.model
    assert model.widths == (3, 4, 8, 10)
    assert [model.norm_at(i) for i in range(6)] == ["bn", "none", "none", "none", "bn", "none"]
    neurons = [model.neuron_at(i) for i in (0, 1, 2, 4, 5)]
    assert [n.threshold for n in neurons] == [1.25, 0.75, 1.0, 0.75, 0.5] and neurons[4].tau_grad == 0.01
    learned = small.blocks[2].neuron  # the decays as trained, pruned and fine-tuned
    assert neurons[2].requires_grad and neurons[2].current_decay == learned.current_decay.item() / 4096

    spikes = encode_test_split(test_set, ENCODING)[:16]
    np.testing.assert_array_equal(output_spikes(checkpoint.build(), spikes), output_spikes(small, spikes))
    reference = spike_exact_layers(checkpoint, tmp_path / "m.net", spikes)
    assert all(layer.any() for layer in reference)
    decays = _neuron_groups(tmp_path / "m.net")[2]  # slayer rounds the trained decays when it integrates
    assert (decays["iDecay"], decays["vDecay"]) == (
        round(learned.current_decay.item()),
        round(learned.voltage_decay.item()),
    )
