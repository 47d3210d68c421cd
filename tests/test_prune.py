"""Structured pruning: criteria on hand-made tensors, masks, compaction, export, Lava, bad input."""

import copy

import h5py
import numpy as np
import pytest
import torch

from lava_qpsnn.cli import main as qpsnn_main
from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import CheckpointError, ConfigError
from lava_qpsnn.export.fixed_point import to_fixed_point
from lava_qpsnn.training.checkpoint import load_checkpoint, save_checkpoint
from lava_qpsnn.training.loop import accuracy, output_spikes
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.prune import (
    LayerScores,
    PruneConfig,
    apply_masks,
    channel_scores,
    compact,
    kept_channels,
    sca_scores,
    score_stability,
    select_channels,
    svs_scores,
)
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig
from netx_export import export_netx


def test_svs_counts_the_rank_of_each_time_averaged_spike_map():
    rank1 = torch.outer(torch.tensor([1.0, 0, 1, 0]), torch.tensor([1.0, 1, 0, 0]))
    maps = torch.stack([rank1, torch.eye(4), torch.zeros(4, 4), torch.eye(4)[:, [0, 1, 2, 2]]])  # ranks 1, 4, 0, 3
    spikes = maps[None, ..., None].repeat(2, 1, 1, 1, 3)  # N=2, C=4, 4x4, T=3: same map every step
    np.testing.assert_array_equal(svs_scores(spikes), [[1, 4, 0, 3]] * 2)
    # averaging over time first: a diagonal spread over two steps is still rank 4
    split = torch.stack([torch.diag(torch.tensor([1.0, 0, 1, 0])), torch.diag(torch.tensor([0.0, 1, 0, 1]))], -1)
    assert svs_scores(split[None, None]).item() == 4


def test_svs_on_dense_layers_is_whether_the_neuron_spiked():
    spikes = torch.tensor([[[0, 1, 0], [0, 0, 0], [1, 1, 1]]], dtype=torch.float32)  # N=1, 3 neurons, T=3
    np.testing.assert_array_equal(svs_scores(spikes), [[1, 0, 1]])


def test_sca_is_the_time_averaged_l1_norm_of_each_membrane_map():
    voltage = torch.zeros(1, 2, 2, 2, 2)
    voltage[0, 0, :, :, 0] = torch.tensor([[1.0, -2], [0, 3]])  # |.| sums to 6 at t=0, 0 at t=1
    voltage[0, 1] = -0.5  # 4 pixels x 0.5 = 2 at both steps
    np.testing.assert_allclose(sca_scores(voltage), [[3.0, 2.0]])
    np.testing.assert_allclose(sca_scores(torch.tensor([[[1.0, -3], [0, 0]]])), [[2.0, 0.0]])


def test_select_channels_rounds_keeps_one_and_breaks_ties_by_rate():
    scores = LayerScores(np.array([3.0, 1.0, 2.0, 2.0]), np.array([0.0, 0.0, 0.1, 0.3]))
    np.testing.assert_array_equal(scores.ranking(), [0, 3, 2, 1])
    keep, capped = select_channels(scores, 0.5)
    np.testing.assert_array_equal(keep, [True, False, False, True])
    assert not capped
    keep, capped = select_channels(scores, 0.9)  # round(3.6) = 4 of 4: keep the best one
    np.testing.assert_array_equal(keep, [True, False, False, False])
    assert capped
    keep, _ = select_channels(scores, 0.5, keep=np.array([False, True, True, True]))  # 0 stays pruned
    np.testing.assert_array_equal(keep, [False, False, True, True])
    assert select_channels(scores, 0.0)[0].all()
    odd = LayerScores(np.arange(5.0), np.zeros(5))
    assert select_channels(odd, 0.5)[0].sum() == 2  # 2.5 channels removed rounds half up to 3
    assert select_channels(odd, 0.3)[0].sum() == 3


@pytest.fixture(scope="module")
def data():
    train_set, test_set = load_dataset("digits")
    encoding = Encoding(time_steps=8, seed=1)
    return train_set, encode_test_split(test_set, encoding)[:64]


def _trained_like(arch, quant, norm="none"):
    """A network with random weights scaled so that every layer spikes."""
    torch.manual_seed(0)
    net = build_model(ModelConfig.from_arch(arch, (1, 8, 8), 10, norm=norm))
    if quant is not None:
        quantize_model(net, quant)
    with torch.no_grad():
        for block in net.blocks:
            if getattr(block, "synapse", None) is not None:
                block.synapse.weight.mul_(3)
    return net


@pytest.mark.parametrize("quant", [None, QuantConfig(4), QuantConfig(1, "baseline", None)], ids=["slayer8", "4", "1"])
@pytest.mark.parametrize("arch,widths", [("6c3-8c3s2-10", (6, 8)), ("40-24-10", (40, 24))])
@pytest.mark.parametrize("criterion", ["svs", "sca", "l1", "random"])
def test_masked_and_compacted_networks_spike_identically(arch, widths, quant, criterion, data):
    net = _trained_like(arch, quant)
    spikes = data[1]
    keeps = [select_channels(s, 0.5)[0] for s in channel_scores(net, spikes, criterion)]
    apply_masks(net, keeps)
    small = compact(net)
    assert small.config.widths == (*[w // 2 for w in widths], 10)
    masked_out = output_spikes(net, spikes)
    assert masked_out.any()
    np.testing.assert_array_equal(output_spikes(small, spikes), masked_out)
    if quant is not None:
        np.testing.assert_array_equal(
            output_spikes(to_fixed_point(small), spikes), output_spikes(to_fixed_point(net), spikes)
        )


def test_compaction_copies_the_kept_rows_and_matching_inputs_across_flatten():
    net = _trained_like("4c3-6c3s2-10", None)
    keeps = [np.array([True, False, True, False]), np.array([False, True, True, False, False, True])]
    apply_masks(net, keeps)
    assert [k.tolist() for k in kept_channels(net)] == [k.tolist() for k in keeps]
    small = compact(net)
    old = [b.synapse.weight for b in net.blocks if getattr(b, "synapse", None) is not None]
    new = [b.synapse.weight for b in small.blocks if getattr(b, "synapse", None) is not None]
    torch.testing.assert_close(new[0], old[0][[0, 2]])
    torch.testing.assert_close(new[1], old[1][[1, 2, 5]][:, [0, 2]])
    features = old[2].reshape(10, 6, 16)[:, [1, 2, 5]].reshape(10, 48, 1, 1, 1)  # 16 = 4x4 per channel
    torch.testing.assert_close(new[2], features)


def test_masked_weights_get_no_gradient():
    net = _trained_like("8-10", QuantConfig(4))
    apply_masks(net, [np.array([True] * 4 + [False] * 4)])
    net(torch.ones(2, 1, 8, 8, 4)).sum().backward()
    grad = net.blocks[0].synapse.weight.grad.flatten(1)
    assert grad[4:].abs().sum() == 0 and grad[:4].abs().sum() > 0


def test_score_stability_is_one_for_identical_batches(data):
    net = _trained_like("6c3-8c3s2-10", QuantConfig(4))
    spikes = data[1]
    same = score_stability(net, [spikes[:32], spikes[:32]], "svs")
    assert (same.cosine, same.kendall_tau, same.pruned_overlap) == pytest.approx((1.0, 1.0, 1.0))


# Scores a criterion gives each prunable layer of a "4-6-10" net, by (batch size, channels): batches of 2 and 3
# samples score the 4-channel layer differently and the 6-channel layer alike.
CRAFTED_SCORES = {
    (2, 4): [1.0, 2.0, 3.0, 4.0],
    (3, 4): [3.0, 1.0, 4.0, 2.0],
    (2, 6): [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
    (3, 6): [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
}


def test_score_stability_of_crafted_scores_is_worked_out_by_hand():
    """4-channel layer, [1, 2, 3, 4] vs [3, 1, 4, 2]: cosine 25 / 30; of the 6 channel pairs 3 are concordant
    and 3 discordant, Kendall's tau 0; pruning half removes {0, 1} vs {1, 3}, overlap 1 / 3. The 6-channel
    layer's identical scores give 1, 1, 1; the figures are the means over the two layers."""
    from lava_qpsnn.training.prune import Criterion

    def crafted(layer):
        count, channels = layer.spikes.shape[:2]
        return torch.tensor(CRAFTED_SCORES[count, channels]).expand(count, channels)

    net = build_model(ModelConfig.from_arch("4-6-10", (1, 8, 8), 10))
    batches = [np.zeros((2, 1, 8, 8, 4), np.float32), np.zeros((3, 1, 8, 8, 4), np.float32)]
    stability = score_stability(net, batches, Criterion(activity=crafted))
    assert stability.cosine == pytest.approx((25 / 30 + 1) / 2)
    assert stability.kendall_tau == pytest.approx((0 + 1) / 2)
    assert stability.pruned_overlap == pytest.approx((1 / 3 + 1) / 2)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: PruneConfig((1.0,)), r"in \[0, 1\)"),
        (lambda: PruneConfig((-0.1,)), r"in \[0, 1\)"),
        (lambda: PruneConfig((0.5,), "taylor"), "unknown criterion 'taylor'"),
        (lambda: PruneConfig((0.5,), steps=0), "pruning steps >= 1"),
        (lambda: PruneConfig((0.5, 0.5, 0.5)).layer_ratios(2), "3 pruning ratios but the model has 2 prunable layers"),
    ],
)
def test_bad_pruning_settings(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.fixture(scope="module")
def pruned_conv(pruned_conv_checkpoint, tmp_path_factory):
    """The session's 4-bit, 50%-pruned conv checkpoint, its .net and its model.pt."""
    folder = tmp_path_factory.mktemp("pruned")
    export_netx(pruned_conv_checkpoint, folder / "model.net")
    return pruned_conv_checkpoint, folder / "model.net", save_checkpoint(pruned_conv_checkpoint, folder / "model.pt")


def test_pruned_checkpoint_records_the_pruning(pruned_conv):
    checkpoint, _, pt = pruned_conv
    assert checkpoint.model.widths == (2, 4, 10) and checkpoint.unpruned_model.widths == (4, 8, 10)
    record = load_checkpoint(pt).pruning
    assert record["criterion"] == "svs" and record["layer_ratios"] == [0.5, 0.5]
    assert [len(k) for k in record["kept_channels"]] == [2, 4]
    assert {"unpruned_test_accuracy", "pruned_test_accuracy_before_finetune"} <= set(checkpoint.metrics)


def test_pruned_channels_are_absent_from_the_exported_file(pruned_conv, conv_net):
    _, pruned, _ = pruned_conv
    with h5py.File(pruned) as small, h5py.File(conv_net) as full:  # conv_net: the same model unpruned
        for layer in ("1", "2", "4"):
            full_shape, small_shape = full[f"layer/{layer}/weight"].shape, small[f"layer/{layer}/weight"].shape
            assert small_shape[0] == (full_shape[0] // 2 if layer != "4" else 10)
        assert small["layer/2/weight"].shape[1] == full["layer/2/weight"].shape[1] // 2
        assert small["layer/4/weight"].shape[1] == full["layer/4/weight"].shape[1] // 2
        assert small["layer/3/shape"][()].prod() == full["layer/3/shape"][()].prod() // 2


def test_pruned_4bit_conv_runs_spike_exact_in_lava(pruned_conv):
    from lava.lib.dl import netx

    checkpoint, net, _ = pruned_conv
    assert [layer.out.shape for layer in netx.hdf5.Network(net_config=str(net)).layers] == [
        (8, 8, 2),
        (4, 4, 4),
        (10,),
    ]
    from lava_qpsnn.evaluation import evaluate

    result = evaluate(net, samples=12, checkpoint=checkpoint, progress=False)
    assert result.spike_agreement == 1.0
    assert result.reference_accuracy > 0.3, "the pruned network must spike for the comparison to mean anything"


def test_exporter_table_shows_before_and_after(pruned_conv, tmp_path, capsys):
    from netx_export.cli import main as export_main

    _, _, pt = pruned_conv
    assert export_main([str(pt), "-o", str(tmp_path / "m.net")]) == 0
    out = capsys.readouterr().out
    assert "4x8x8 -> 2x8x8" in out and "288 -> 72" in out and "smaller than float32 before pruning" in out


def test_damaged_pruning_record_is_a_one_line_error(pruned_conv, tmp_path):
    _, _, pt = pruned_conv
    data = torch.load(pt, weights_only=True)
    del data["pruning"]["widths_before"]
    torch.save(data, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "bad.pt")


@pytest.mark.slow
def test_iterative_schedule_reaches_the_ratio(data):
    from lava_qpsnn.training.loop import TrainConfig
    from lava_qpsnn.training.prune import prune_and_finetune

    train_set, _ = data
    _, test_set = load_dataset("digits")
    net = _trained_like("20-10", QuantConfig(2))
    config = PruneConfig((0.6,), "sca", finetune_epochs=2, steps=2, calibration_samples=64)
    small, record, metrics = prune_and_finetune(
        copy.deepcopy(net), config, train_set, test_set, Encoding(time_steps=6), TrainConfig(), progress=False
    )
    assert small.config.widths == (8, 10) and record["steps"] == 2 and "train_accuracy" in metrics
    assert metrics["test_accuracy"] == accuracy(small, test_set, Encoding(time_steps=6))


@pytest.mark.parametrize(
    "options,message",
    [
        (["--prune", "1.0"], r"in [0, 1)"),
        (["--prune", "half"], "expected ratios like 0.5"),
        (["--prune", "0.5", "--criterion", "taylor"], "unknown criterion 'taylor': choose one of sca, svs, l1, random"),
        (["--prune", "0.5,0.5"], "2 pruning ratios but the model has 1 prunable layers"),
        (["--criterion", "sca"], "--criterion only apply with --prune"),
        (["--prune", "0.5", "--prune-steps", "0"], "--prune-steps: expected a whole number >= 1, got '0'"),
        (["--prune", "0.5", "--calibration-samples", "0"], "--calibration-samples: expected a whole number >= 1"),
    ],
)
def test_bad_pruning_options_are_one_line_errors(options, message, train_error):
    assert message in train_error(options)


def test_cli_prunes_and_says_when_a_layer_keeps_one_channel(tmp_path, capsys):
    pt = tmp_path / "m.pt"
    args = ["--no-progress", "train", "--epochs", "1", "--arch", "1-10", "--time-steps", "4", "--out", str(pt)]
    assert qpsnn_main([*args, "--prune", "0.9", "--finetune-epochs", "0", "--calibration-samples", "16"]) == 0
    out = capsys.readouterr().out
    assert "pruned (svs, ratios [0.9]): widths [1] -> [1]" in out
    assert "(train -)" in out  # no fine-tuning: no train accuracy to report
    assert "note: the ratio of prunable layer 0 would remove every channel; kept one" in out


def _same_checkpoints(a, b):
    assert a.metrics == b.metrics and a.pruning == b.pruning and a.training == b.training
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[name], b.state_dict[name]) for name in a.state_dict)


@pytest.mark.slow
def test_prune_command_equals_train_with_prune(tmp_path, capsys):
    train = ["--no-progress", "train", "--epochs", "1", "--arch", "16-10", "--time-steps", "4", "--bits", "4"]
    pruning = ["--prune", "0.5", "--criterion", "sca", "--finetune-epochs", "1", "--calibration-samples", "64"]
    together, trained, pruned = tmp_path / "together.pt", tmp_path / "trained.pt", tmp_path / "pruned.pt"
    assert qpsnn_main([*train, *pruning, "--out", str(together)]) == 0
    assert qpsnn_main([*train, "--out", str(trained)]) == 0
    capsys.readouterr()
    assert qpsnn_main(["--no-progress", "prune", str(trained), *pruning, "--out", str(pruned)]) == 0
    out = capsys.readouterr().out
    assert "pruned (sca, ratios [0.5]): widths [16] -> [8]" in out and f"saved {pruned}" in out
    _same_checkpoints(load_checkpoint(pruned), load_checkpoint(together))
    assert load_checkpoint(pruned).model.widths == (8, 10)


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing", "no checkpoint at"),
        ("foreign", "not a readable lava-qpsnn checkpoint"),
        ("pruned", "already pruned (svs, ratios [0.5, 0.5]): prune the unpruned checkpoint it came from"),
        (
            "empties",
            "a pruning ratio of 0.99 would remove all 32 channels of prunable layer 0: use a smaller ratio [--prune]",
        ),
        ("same", "exists: allow replacing it (force) or choose another name [--force]"),
        ("ratios", "2 pruning ratios but the model has 1 prunable layers"),
    ],
)
def test_prune_command_bad_input_is_one_line_and_writes_nothing(
    case, message, tmp_path, capsys, mlp_files, pruned_conv
):
    trained, _ = mlp_files
    source, out, ratio = trained, tmp_path / "out.pt", "0.5"
    if case == "missing":
        source = tmp_path / "none.pt"
    elif case == "foreign":
        source = tmp_path / "foreign.pt"
        source.write_bytes(b"not a checkpoint")
    elif case == "pruned":
        source = pruned_conv[2]
    elif case == "empties":
        ratio = "0.99"
    elif case == "same":
        out = source = tmp_path / "model.pt"
        source.write_bytes(trained.read_bytes())
    elif case == "ratios":
        ratio = "0.5,0.5"
    before = source.read_bytes() if source.exists() else None
    assert qpsnn_main(["--no-progress", "prune", str(source), "--prune", ratio, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lava_qpsnn: error: ") and message in err and "\n" not in err, err
    assert not out.exists() or out.read_bytes() == before
    made_here = {source.name} if source.parent == tmp_path and source.exists() else set()
    assert {p.name for p in tmp_path.iterdir()} == made_here  # no output, no partial or temporary file
