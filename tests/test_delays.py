"""Axonal delays trained in slayer, exported and run: spike times worked out by hand, the notation and its
refusals, and a network as users write it (a neuron per layer, BatchNorm on some layers, a grouped conv,
delays) through quantization, SVS pruning, export and one multi-sample Lava run, spike-exact."""

from __future__ import annotations

import functools

import h5py
import numpy as np
import pytest
import torch

from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.lava import run_lava
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lava_qpsnn.training.loop import TrainConfig, init_weights, output_spikes
from lava_qpsnn.training.models import build_model, prepare_model
from lava_qpsnn.training.norm import BatchNorm
from lava_qpsnn.training.prune import PruneConfig, prune_and_finetune
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import Conv, Dense, ModelConfig, format_arch
from netx_export import export_netx

NEURON = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5, "tau_grad": 0.003}


@pytest.mark.parametrize(
    "arch, message",
    [
        ("8c3d-8c3-10", "layer 1 (8c3d) has axonal delays but feeds a conv layer, and netx stores no delays on conv"),
        ("8c3d-p2-10", "layer 1 (8c3d) has axonal delays but feeds a pooling layer"),
        ("8c3-16-10d", "layer 3 (10d) has axonal delays but is the output layer, whose spikes leave the network"),
    ],
)
def test_delays_where_netx_cannot_store_them_are_refused(arch, message, train_error):
    err = train_error(["--arch", arch])
    assert message in err and "put delays only on layers that feed a dense layer" in err


def test_the_notation_says_delays_and_the_checkpoint_keeps_them(tmp_path):
    config = ModelConfig.from_arch("8c3bn-p2d-32dt0.5-10", (1, 8, 8), 10)
    assert [getattr(layer, "delay", False) for layer in config.layers] == [False, True, False, True, False]
    assert format_arch(config.layers, config.neuron) == "8c3bn-p2d-32dt0.5-10"
    assert "delay" not in str(ModelConfig.from_arch("8c3-16-10", (1, 8, 8), 10).to_dict())  # files as they were
    assert ModelConfig.from_dict(config.to_dict()) == config
    net = build_model(config)
    assert [getattr(b, "delay", None) is not None for b in net.blocks] == [False, True, False, True, False]


class ChainOfDelays(torch.nn.Module):
    """One input, five neurons that fire on it, each with its own axonal delay, each driving one output neuron."""

    DELAYS = (0.0, 1.0, 5.5, 62.0, 70.0)  # 5.5 acts as 5 (slayer floors); 70 is clipped to Loihi's 62

    def __init__(self) -> None:
        from lava.lib.dl import slayer

        super().__init__()
        cuba = slayer.block.cuba
        self.blocks = torch.nn.ModuleList([cuba.Dense(NEURON, 64, 5, delay=True), cuba.Dense(NEURON, 5, 5)])

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


def test_delayed_spikes_arrive_when_worked_out_by_hand_in_pytorch_the_simulator_and_lava(tmp_path):
    """A spike of input 0 at t = 0 fires layer 1 at t = 0 (weight 2, threshold 1), reaches layer 2 one step
    later plus its delay d, fires it at once, and leaves one step later: output neuron j spikes at 2 + d_j only
    (70 clipped to 62). Three samples in one Lava run: the middle one, with no input, stays silent."""
    net = prepare_model(ChainOfDelays(), (1, 8, 8))
    with torch.no_grad():
        first, second = (block.synapse.weight for block in net.blocks)
        first.zero_()[:, 0] = 2.0  # two thresholds: one spike fires a neuron (Loihi fires on v > threshold)
        second.copy_(2 * torch.eye(5).reshape(second.shape))
        net.blocks[0].delay.delay.copy_(torch.tensor(ChainOfDelays.DELAYS))
    encoding = Encoding(time_steps=66)
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=encoding, image_shape=(1, 8, 8))
    path = tmp_path / "chain.net"
    export_netx(checkpoint, path)
    spikes = np.zeros((3, 1, 8, 8, 66), np.int8)
    spikes[[0, 2], 0, 0, 0, 0] = 1
    expected = np.zeros((3, 5, 66), np.int8)
    for j, d in enumerate([0, 1, 5, 62, 62]):
        expected[[0, 2], j, 2 + d] = 1
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["layer/2/delay"][()], np.tile([0, 1, 5, 62, 62], (5, 1)))
        assert "delay" not in f["layer/1"]  # stored on the synapses the delayed spikes travel, not their source
    np.testing.assert_array_equal(output_spikes(checkpoint.build(), spikes), expected)
    np.testing.assert_array_equal(simulate(path, spikes), expected)
    np.testing.assert_array_equal(run_lava(path, spikes, progress=False), expected)


class AsUsersWriteIt(torch.nn.Module):
    """A neuron per layer (one with learnable decays), BatchNorm on two of four layers, a 2-group conv, delays
    on the grouped conv's channels (through the flatten) and on a hidden dense layer."""

    def __init__(self) -> None:
        from lava.lib.dl import slayer

        super().__init__()
        cuba = slayer.block.cuba
        learned = {**NEURON, "current_decay": 0.7, "voltage_decay": 0.3, "requires_grad": True}
        normed = {**NEURON, "threshold": 1.25, "norm": functools.partial(BatchNorm, 16)}
        self.blocks = torch.nn.ModuleList(
            [
                cuba.Conv({**NEURON, "norm": functools.partial(BatchNorm, 8)}, 1, 8, 3, padding=1),
                cuba.Conv({**learned, "threshold": 0.75}, 8, 8, 3, padding=1, stride=2, groups=2, delay=True),
                cuba.Flatten(),
                cuba.Dense(normed, 128, 16, delay=True),
                cuba.Dense({**NEURON, "voltage_decay": 0.25}, 16, 10),
            ]
        )

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


def test_a_network_as_users_write_it_goes_through_quantization_svs_export_and_lava_spike_exact(
    spike_exact_layers, tmp_path
):
    train_set, test_set = load_dataset("digits")
    encoding = Encoding(time_steps=16, seed=1)
    torch.manual_seed(0)
    net = prepare_model(AsUsersWriteIt(), (1, 8, 8))
    init_weights(net, 3.0)  # every layer spikes untrained
    with torch.no_grad():  # 0, 1, several, beyond Loihi's 62; at half steps, so that fine-tuning keeps their floor
        net.blocks[1].delay.delay.copy_(torch.tensor([0.5, 1.5, 3.5, 70.0, 2.5, 0.5, 6.5, 1.5]))
        net.blocks[3].delay.delay.copy_(torch.arange(16) % 5 + 0.5)
    quantize_model(net, QuantConfig(4, "rescaw"))
    few = type(train_set)(train_set.images[:64], train_set.labels[:64], 10)
    prune = PruneConfig((0.5, 0.5, 0.5), "svs", finetune_epochs=1, calibration_samples=32)
    small, record, _ = prune_and_finetune(net, prune, few, few, encoding, TrainConfig(batch_size=32), progress=False)
    checkpoint = Checkpoint.of(small, dataset="digits", encoding=encoding, pruning=record, image_shape=(1, 8, 8))
    checkpoint = load_checkpoint(save_checkpoint(checkpoint, tmp_path / "m.pt"))
    layers = checkpoint.model.layers
    assert [getattr(layer, "delay", False) for layer in layers] == [False, True, False, True, False]
    assert [layer.groups for layer in layers if isinstance(layer, Conv)] == [1, 2]
    assert [checkpoint.model.norm_at(i) for i in range(len(layers))] == ["bn", "none", "none", "bn", "none"]
    assert len({checkpoint.model.neuron_at(i) for i in (0, 1, 3, 4)}) == 4
    assert isinstance(layers[3], Dense) and layers[3].features == 8

    spikes = encode_test_split(test_set, encoding, 24)
    path = tmp_path / "m.net"
    assert all(layer.any() for layer in spike_exact_layers(checkpoint, path, spikes))  # 24 samples, one Lava run
    conv_kept = record["kept_channels"][1]
    hand = np.array([0, 1, 3, 62, 2, 0, 6, 1])[conv_kept]  # the kept channels' delays, each over its 4x4 positions
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["layer/4/delay"][()], np.tile(np.repeat(hand, 16), (8, 1)))
        kept_dense = record["kept_channels"][2]
        np.testing.assert_array_equal(f["layer/5/delay"][()], np.tile(np.arange(16)[kept_dense] % 5, (10, 1)))


@pytest.mark.parametrize(
    "delay, message",
    [
        ({"max_delay": 100}, r"^blocks.0 \(Dense\) lets its axonal delays grow to 100; .* = 62"),
        ({"max_delay": 10}, r"^blocks.0 \(Dense\) has delay max_delay 10, grad_scale 1, which a checkpoint cannot"),
        ({"max_delay": 62, "grad_scale": 5}, r"max_delay 62, grad_scale 5, which a checkpoint cannot hold"),
    ],
)
def test_hand_written_delays_a_checkpoint_cannot_rebuild_are_refused(delay, message):
    from lava.lib.dl import slayer

    net = ChainOfDelays()
    net.blocks[0].delay = slayer.axon.Delay(**delay)
    with pytest.raises(ConfigError, match=message):
        prepare_model(net, (1, 8, 8))


def test_the_command_line_trains_exports_and_runs_delays_in_lava_identically(tmp_path, capsys):
    from lava_qpsnn.cli import main
    from netx_export.cli import main as netx_export

    pt, net = tmp_path / "d.pt", tmp_path / "d.net"
    train = ["train", "--arch", "6c3s2bnd-16d-10", "--time-steps", "10", "--epochs", "1", "--bits", "4"]
    assert main(["--no-progress", *train, "--out", str(pt)]) == 0
    assert netx_export([str(pt), "-o", str(net)]) == 0
    capsys.readouterr()
    assert main(["--no-progress", "eval", str(pt), str(net), "--backend", "lava", "--samples", "6"]) == 0
    assert "output spikes identical on 100.00%" in capsys.readouterr().out
    with h5py.File(net) as f:
        assert f["layer/3/delay"].shape == (16, 96) and f["layer/4/delay"].shape == (10, 16)
