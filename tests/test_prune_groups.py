"""Channel pruning of grouped convolutions: the plan by hand, the same number pruned in every group, the
surviving weights by hand, depthwise convs that follow their input, refusals, and a pruned grouped network
spike for spike in PyTorch's fixed-point network, the simulator and Lava."""

import functools

import h5py
import numpy as np
import pytest
import torch

from lava_qpsnn.cli import main
from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.export.fixed_point import fixed_point_model, to_fixed_point
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lava_qpsnn.training.loop import TrainConfig, init_weights, output_spikes
from lava_qpsnn.training.models import build_model, prepare_model, weight_blocks
from lava_qpsnn.training.norm import BatchNorm
from lava_qpsnn.training.prune import (
    LayerScores,
    PruneConfig,
    apply_masks,
    channel_parts,
    channel_scores,
    check_group_ratios,
    compact,
    kept_channels,
    prunable_blocks,
    prune_and_finetune,
    select_channels,
)
from lava_qpsnn.training.prune.plan import layer_keeps
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import Conv, ModelConfig
from netx_export import export_netx

ENCODING = Encoding(time_steps=12, seed=1)  # 6 spiking layers: an output spike needs 6 steps
GROUPED = "8c3-8c3g8-p2-8c3g2-16-10"  # a conv, a depthwise conv, pooling, a 2-group conv, two dense layers


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def spikes(digits):
    return encode_test_split(digits[1], ENCODING)[:8]


def _net(arch, quant=None, norm="none"):
    """Random weights, scaled so that every layer spikes."""
    torch.manual_seed(0)
    net = build_model(ModelConfig.from_arch(arch, (1, 8, 8), 10, norm=norm))
    if quant is not None:
        quantize_model(net, quant)
    with torch.no_grad():
        for block in weight_blocks(net):
            block.synapse.weight.mul_(3)
    return net


def _half_of_each_group(net, spikes, criterion) -> list[np.ndarray]:
    scores = channel_scores(net, spikes, criterion)
    return [select_channels(s, 0.5, parts=p)[0] for s, p in zip(scores, channel_parts(net), strict=True)]


def _same_fixed_point_spikes(small, net, spikes) -> None:
    small_out, net_out = (output_spikes(to_fixed_point(n), spikes) for n in (small, net))
    np.testing.assert_array_equal(small_out, net_out)


@pytest.mark.parametrize(
    "arch, prunable, parts",
    [
        ("8c3-16-10", [0, 1], [1, 1]),  # ungrouped: each layer is one part, as always
        ("8c3-8c3g2-10", [0, 1], [2, 2]),  # the conv feeding 2 groups, and the 2-group conv itself
        ("12c3-12c3g3-6c3g2-10", [0, 1, 2], [3, 6, 2]),  # lcm(3 groups, 2 groups of the next) = 6
        (GROUPED, [0, 2, 3], [2, 2, 1]),  # the depthwise layer 1 follows layer 0, which keeps layer 2's 2 groups
        ("4c3-8c3g4-10", [0], [1]),  # a depthwise conv with 2 outputs per group follows too
    ],
)
def test_the_plan_names_the_layers_that_choose_and_their_equal_parts(arch, prunable, parts):
    net = _net(arch)
    blocks = weight_blocks(net)
    assert [blocks.index(b) for b in prunable_blocks(net)] == prunable
    assert channel_parts(net) == parts


def test_a_depthwise_conv_keeps_the_outputs_of_the_groups_whose_input_it_keeps():
    net = _net("4c3-8c3g4-10")  # layer 1: 4 groups of one input channel and two output channels
    keeps = layer_keeps(net, [np.array([True, False, True, False])])
    assert [None if k is None else k.tolist() for k in keeps] == [
        [True, False, True, False],
        [True, True, False, False, True, True, False, False],
        None,
    ]


def test_select_channels_prunes_the_lowest_scored_of_each_group():
    scores = LayerScores(np.array([5.0, 1, 4, 2, 9, 8, 7, 6]), np.zeros(8))
    np.testing.assert_array_equal(select_channels(scores, 0.5)[0], [0, 0, 0, 0, 1, 1, 1, 1])  # the best 4 overall
    keep, capped = select_channels(scores, 0.5, parts=2)  # the best 2 of each group of 4
    np.testing.assert_array_equal(keep, [1, 0, 1, 0, 1, 1, 0, 0])
    assert not capped
    keep, _ = select_channels(scores, 0.5, parts=4)  # the better of each pair
    np.testing.assert_array_equal(keep, [1, 0, 1, 0, 1, 0, 1, 0])
    keep, _ = select_channels(scores, 0.75, keep=np.array([1, 0, 1, 0, 1, 1, 0, 0], bool), parts=2)
    np.testing.assert_array_equal(keep, [1, 0, 0, 0, 1, 0, 0, 0])  # pruned ones stay pruned and count


def test_masks_and_compaction_keep_the_hand_picked_weights_of_each_group(spikes):
    """Layer 0: 4 channels; layer 1: depthwise (4 groups of 1); layer 2: 2 groups of 2 in, 2 out; then 10.
    Keeping channels {0, 3} of layer 0 keeps depthwise groups 0 and 3, whose outputs are layer 2's inputs
    0 (its group 0) and 3 (its group 1); keeping layer 2's outputs {1, 2} (one of each group) leaves out 1
    reading input 0 (column 0 of group 0) and out 2 reading input 3 (column 1 of group 1)."""
    net = _net("4c3-4c3g4-4c3g2-10")
    keeps = [np.array([True, False, False, True]), np.array([False, True, True, False])]
    apply_masks(net, keeps)
    assert [k.tolist() for k in kept_channels(net)] == [k.tolist() for k in keeps]
    small = compact(net)
    # conv weights are out x in/groups x 3 x 3 x 1
    old, new = ([b.synapse.weight for b in weight_blocks(n)] for n in (net, small))
    torch.testing.assert_close(new[0], old[0][[0, 3]])
    torch.testing.assert_close(new[1], old[1][[0, 3]])
    torch.testing.assert_close(new[2], torch.stack([old[2][1, 0], old[2][2, 1]])[:, None])
    torch.testing.assert_close(new[3], old[3].reshape(10, 4, 64)[:, [1, 2]].reshape(10, 128, 1, 1, 1))
    assert [b.synapse.groups for b in weight_blocks(small)] == [1, 2, 2, 1]
    assert small.config.widths == (2, 2, 2, 10)
    assert [layer.groups for layer in small.config.layers if isinstance(layer, Conv)] == [1, 2, 2]
    masked = output_spikes(net, spikes)
    assert masked.any()
    np.testing.assert_array_equal(output_spikes(small, spikes), masked)


@pytest.mark.parametrize("criterion", ["svs", "sca", "l1", "random"])
@pytest.mark.parametrize("quant", [None, QuantConfig(4)], ids=["slayer8", "4"])
def test_every_criterion_prunes_grouped_layers_and_the_compact_net_spikes_as_the_masked_one(criterion, quant, spikes):
    net = _net(GROUPED, quant)
    keeps = _half_of_each_group(net, spikes, criterion)
    assert [k.sum() for k in keeps] == [4, 4, 8] and keeps[0][:4].sum() == keeps[1][:4].sum() == 2  # 2 per group
    apply_masks(net, keeps)
    small = compact(net)
    assert small.config.widths == (4, 4, 4, 8, 10)
    assert [b.synapse.groups for b in weight_blocks(small)] == [1, 4, 2, 1, 1]
    masked = output_spikes(net, spikes)
    assert masked.any()
    np.testing.assert_array_equal(output_spikes(small, spikes), masked)
    if quant is not None:
        _same_fixed_point_spikes(small, net, spikes)


def test_a_pruned_grouped_net_with_batchnorm_exports_its_groups_and_simulates_exactly(spikes, tmp_path):
    net = _net(GROUPED, QuantConfig(4), norm="bn")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # BatchNorm that is not the identity, so that its slicing shows
        for block in weight_blocks(net)[:-1]:
            norm = block.neuron.norm
            norm.weight.copy_(0.5 + torch.rand(norm.weight.shape, generator=generator))
            norm.shift.copy_(0.2 * torch.randn(norm.shift.shape, generator=generator))
    keeps = _half_of_each_group(net, spikes, "svs")
    small = compact(apply_masks(net, keeps))
    kept = [np.flatnonzero(k).tolist() for k in layer_keeps(net, keeps)[:-1]]
    pruning = {**PruneConfig((0.5,)).to_dict(), "layer_ratios": [0.5] * 3, "capped_layers": []}
    pruning |= {"widths_before": [8, 8, 8, 16, 10], "kept_channels": kept}
    checkpoint = Checkpoint.of(small, dataset="digits", encoding=ENCODING, pruning=pruning)
    checkpoint = load_checkpoint(save_checkpoint(checkpoint, tmp_path / "m.pt"))
    unpruned = [(layer.channels, layer.groups) for layer in checkpoint.unpruned_model.layers if isinstance(layer, Conv)]
    assert unpruned == [(8, 1), (8, 8), (8, 2)]
    _same_fixed_point_spikes(small, net, spikes)

    export_netx(checkpoint, tmp_path / "m.net")
    reference = output_spikes(fixed_point_model(checkpoint), spikes, layers=True)
    assert all(layer.any() for layer in reference)
    simulated = simulate(tmp_path / "m.net", spikes, layers=True)
    assert all(np.array_equal(sim, ours) for sim, ours in zip(simulated, reference, strict=True))
    with h5py.File(tmp_path / "m.net") as f:
        layers = [f["layer"][str(i)] for i in (1, 2, 4)]
        assert [int(layer["groups"][()]) for layer in layers] == [1, 4, 2]
        assert [layer["weight"].shape for layer in layers] == [(4, 1, 3, 3), (4, 1, 3, 3), (4, 2, 3, 3)]
        assert int(f["layer/2/inChannels"][()]) == 4 and len(f["layer/2/bias"]) == 4


class HandWritten(torch.nn.Module):
    """A network as a user writes it: a depthwise conv, a 2-group conv with BatchNorm, pooling, dense layers."""

    def __init__(self) -> None:
        from lava.lib.dl import slayer

        super().__init__()
        cuba = slayer.block.cuba
        neuron = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5, "tau_grad": 0.003}
        self.blocks = torch.nn.ModuleList(
            [
                cuba.Conv(neuron, 1, 8, 3, padding=1),
                cuba.Conv({**neuron, "threshold": 0.75}, 8, 8, 3, padding=1, groups=8),
                cuba.Pool(neuron, 2, weight_scale=1.1),
                cuba.Conv({**neuron, "norm": functools.partial(BatchNorm, 8)}, 8, 8, 3, padding=1, groups=2),
                cuba.Flatten(),
                cuba.Dense(neuron, 128, 16),
                cuba.Dense(neuron, 16, 10),
            ]
        )

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


def test_a_hand_written_grouped_net_goes_through_svs_pruning_export_and_lava(
    spike_exact_layers, digits, spikes, tmp_path
):
    train_set, test_set = digits
    torch.manual_seed(0)
    net = prepare_model(HandWritten(), (1, 8, 8))
    init_weights(net, 3.0)  # every layer spikes untrained
    quantize_model(net, QuantConfig(4, "baseline"))
    few = type(train_set)(train_set.images[:64], train_set.labels[:64], 10)
    prune = PruneConfig((0.5,), "svs", finetune_epochs=1, calibration_samples=32)
    small, record, _ = prune_and_finetune(net, prune, few, few, ENCODING, TrainConfig(batch_size=32), progress=False)
    assert record["widths_before"] == [8, 8, 8, 16, 10] and len(record["kept_channels"]) == 4
    depthwise = record["kept_channels"][1]
    assert depthwise == record["kept_channels"][0] and len(depthwise) == 4  # it follows layer 0's channels
    assert all(len([c for c in kept if c < 4]) == 2 for kept in record["kept_channels"][:3])  # 2 of each half
    checkpoint = Checkpoint.of(small, dataset="digits", encoding=ENCODING, pruning=record, image_shape=(1, 8, 8))
    checkpoint = load_checkpoint(save_checkpoint(checkpoint, tmp_path / "m.pt"))
    assert [layer.groups for layer in checkpoint.model.layers if isinstance(layer, Conv)] == [1, 4, 2]
    np.testing.assert_array_equal(output_spikes(checkpoint.build(), spikes), output_spikes(small, spikes))
    assert all(layer.any() for layer in spike_exact_layers(checkpoint, tmp_path / "m.net", spikes))


@pytest.mark.parametrize(
    "arch, ratios, message",
    [
        (
            "8c3-8c3g2-10",
            "0.9",
            "prunable layer 0 keeps its channels in 2 equal groups of 4, as grouped convolutions need: "
            "a pruning ratio of 0.9 would leave none in a group; use 0.75 or less [--prune]",
        ),
        (
            GROUPED,
            "0.5,0.5,0.8",  # the dense layer is ungrouped: it keeps one channel of 16 and says so
            None,
        ),
        (
            "8c3-8c3g2-4c3g4-10",  # 4 groups of one output channel: nothing to prune in them
            "0,0,0.5",
            "prunable layer 2 keeps its channels in 4 equal groups of 1, as grouped convolutions need: "
            "a pruning ratio of 0.5 would leave none in a group; use 0 [--prune]",
        ),
        (
            "3c3-6c3g3-6c3g2-10",
            "0.5",
            "weight layer 1 (depthwise) makes 2 copies of each of its 3 input channels, which the grouped layers "
            "after it split into 2 groups: channel pruning cannot keep those groups equal",
        ),
    ],
)
def test_ratios_that_cannot_keep_the_groups_are_refused_before_training(arch, ratios, message, train_error):
    if message is None:
        check_group_ratios(_net(arch), [float(r) for r in ratios.split(",")])
        return
    assert message in train_error(["--arch", arch, "--prune", ratios, "--time-steps", "8"])


def test_a_channel_mask_that_breaks_the_groups_is_refused():
    net = _net("8c3-8c3g2-10")
    with pytest.raises(ConfigError, match=r"prunable layer 0 keeps \[3, 1\] channels of its 2 groups"):
        apply_masks(net, [np.array([1, 1, 1, 0, 1, 0, 0, 0], bool), np.ones(8, bool)])


def test_the_prune_command_refuses_a_ratio_that_empties_a_group_and_writes_nothing(tmp_path, capsys):
    trained, out = tmp_path / "m.pt", tmp_path / "p.pt"
    args = ["--arch", "8c3-8c3g2-10", "--epochs", "0", "--time-steps", "4", "--out", str(trained)]
    assert main(["--no-progress", "train", *args]) == 0
    capsys.readouterr()
    assert main(["--no-progress", "prune", str(trained), "--prune", "0.9", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "prunable layer 0 keeps its channels in 2 equal groups of 4" in err and "\n" not in err
    assert {p.name for p in tmp_path.iterdir()} == {"m.pt"}
