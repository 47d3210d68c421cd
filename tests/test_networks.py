"""Real networks: BatchNorm folding, bias timing, spike pooling, hand-written slayer networks,
pluggable pruning criteria and the checkpoint as the one source of truth."""

import functools
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.export.fixed_point import fixed_point_model, to_fixed_point
from lava_qpsnn.lava.run import run_lava
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.checkpoint import Checkpoint, save_checkpoint
from lava_qpsnn.training.loop import TrainConfig, output_spikes, train
from lava_qpsnn.training.models import build_model, prepare_model
from lava_qpsnn.training.norm import BatchNorm
from lava_qpsnn.training.prune import (
    Criterion,
    PruneConfig,
    apply_masks,
    channel_scores,
    compact,
    prune_and_finetune,
    register_criterion,
    select_channels,
)
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig
from netx_export import export_netx

ENCODING = Encoding(time_steps=10, seed=5)
NEURON = {"threshold": 1.0, "current_decay": 1.0, "voltage_decay": 0.5}


@pytest.fixture(scope="module")
def digits():
    train_set, test_set = load_dataset("digits")
    return train_set, test_set, encode_test_split(test_set, ENCODING)[:40]


def _spike_exact(checkpoint: Checkpoint, path, spikes: np.ndarray) -> np.ndarray:
    """Export ``checkpoint``; assert PyTorch fixed point == simulator == Lava; return the spikes."""
    export_netx(checkpoint, path, force=True)
    reference = output_spikes(fixed_point_model(checkpoint), spikes)
    np.testing.assert_array_equal(simulate(path, spikes), reference)
    np.testing.assert_array_equal(run_lava(path, spikes, progress=False), reference)
    return reference


def test_folded_batchnorm_equals_torch_batchnorm_in_both_modes():
    torch.manual_seed(0)
    net = build_model(ModelConfig.from_arch("6c3-10", (2, 5, 5), 10, norm="bn"))
    block = net.blocks[0]
    norm = block.neuron.norm
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.shift.uniform_(-1.0, 1.0)
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.2, 3.0)
        block.synapse._pre_hook_fx.inner = None  # no quantization: the fold itself is under test
    x = (torch.rand(3, 2, 5, 5, 4) < 0.5).float()
    weight = block.synapse.weight
    plain = torch.stack([F.conv2d(x[..., t], weight[..., 0], padding=1) for t in range(4)], -1)  # W x per step

    norm.eval()
    current = norm(block.synapse(x))
    expected = F.batch_norm(plain, norm.running_mean, norm.running_var, norm.weight, norm.shift, eps=norm.eps)
    torch.testing.assert_close(current, expected, rtol=1e-5, atol=1e-5)

    norm.train()
    running = norm.running_mean.clone(), norm.running_var.clone()
    current = norm(block.synapse(x))
    batch = plain.permute(0, 2, 3, 4, 1).reshape(-1, 6)  # statistics over N, H, W, T per channel
    expected = (plain - batch.mean(0).view(1, -1, 1, 1, 1)) / torch.sqrt(batch.var(0, unbiased=False) + norm.eps).view(
        1, -1, 1, 1, 1
    ) * norm.weight.view(1, -1, 1, 1, 1) + norm.shift.view(1, -1, 1, 1, 1)
    torch.testing.assert_close(current, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(norm.running_mean, 0.9 * running[0] + 0.1 * batch.mean(0))


def test_bias_acts_from_the_layer_latency_on():
    net = build_model(ModelConfig.from_arch("4c3-p2-4c3-10", (1, 4, 4), 10, norm="bn"))
    assert [getattr(b.neuron, "norm", None) and b.neuron.norm.latency for b in net.blocks[::2]] == [0, 2, None]
    norm = net.blocks[2].neuron.norm.eval()
    with torch.no_grad():
        norm.shift.fill_(0.25)
    out = norm(torch.zeros(1, 4, 2, 2, 5))
    assert (out[..., :2] == 0).all() and (out[..., 2:] == 0.25).all()


@pytest.fixture(scope="module")
def biased_net():
    """A 4-bit BatchNorm + pooling net whose first layer has channels biased to fire with no input."""
    torch.manual_seed(1)
    net = quantize_model(build_model(ModelConfig.from_arch("4c3-p2-6c3-10", (1, 8, 8), 10, norm="bn")), QuantConfig(4))
    with torch.no_grad():
        for block in net.blocks[::2]:
            if block.neuron.norm is not None:
                block.synapse.weight.mul_(3)
        net.blocks[0].neuron.norm.shift[:2] = torch.tensor([1.3, 0.6])  # 1.3 > threshold: fires on silence
        net.blocks[2].neuron.norm.shift[3] = 2.0
    return Checkpoint.of(net.eval(), dataset="digits", encoding=ENCODING)


def test_biased_neurons_fire_on_silence_and_stay_exact_in_lava_and_the_simulator(biased_net, digits, tmp_path):
    silence = np.zeros((3, 1, 8, 8, ENCODING.time_steps), np.float32)
    spikes = np.concatenate([silence, digits[2][:12]])
    path = tmp_path / "biased.net"
    reference = _spike_exact(biased_net, path, spikes)
    layers = simulate(path, spikes, layers=True)
    assert layers[0][:3].any(), "the biased channel must fire without input for this test to mean anything"
    assert reference[3:].any()
    first = layers[0][0, 0]  # layer 1 starts at step 1: nothing before, firing from then on
    assert not first[..., 0].any() and first[..., 1:].any()


def test_pooling_exports_as_a_grouped_conv_that_or_s_each_window(biased_net, digits, tmp_path):
    import h5py

    path = tmp_path / "pool.net"
    export_netx(biased_net, path)
    with h5py.File(path) as f:
        pool = f["layer/2"]
        assert pool["type"][0] == b"conv" and int(pool["groups"][()]) == 4
        assert pool["weight"].shape == (4, 1, 2, 2) and (pool["weight"][()] == 70).all()  # 1.1 x 64, 8-bit even
    spikes = digits[2][:8]
    conv, pooled = simulate(path, spikes, layers=True)[:2]
    # hand arithmetic: a pooled neuron spikes one step after any spike in its 2x2 window (its own latency)
    window_any = conv.reshape(8, 4, 4, 2, 4, 2, -1).max(axis=(3, 5))
    np.testing.assert_array_equal(pooled[..., 1:], window_any[..., :-1])
    assert pooled.any()


def test_done_when_bn_pool_4bit_svs_pruned_net_exact_in_a_fresh_netx(bn_pool_checkpoint, digits, tmp_path):
    checkpoint = bn_pool_checkpoint
    assert checkpoint.model.norm == "bn" and checkpoint.model.widths == (4, 8, 10)
    assert checkpoint.unpruned_model.widths == (8, 16, 10)
    path = tmp_path / "bn_pool.net"
    reference = _spike_exact(checkpoint, path, encode_test_split(digits[1], checkpoint.encoding)[:24])
    assert reference.any()
    code = (
        "import lava_qpsnn; from lava.lib.dl import netx; "
        f"n = netx.hdf5.Network(net_config={str(path)!r}); print([l.out.shape for l in n.layers])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(8, 8, 4), (4, 4, 4), (4, 4, 8), (10,)]"


class HandWritten(torch.nn.Module):
    """A network written with slayer blocks directly, as lava-dl's examples are."""

    def __init__(self) -> None:
        from lava.lib.dl import slayer

        super().__init__()
        neuron = NEURON
        cuba = slayer.block.cuba
        self.blocks = torch.nn.ModuleList(
            [
                cuba.Conv({**neuron, "norm": functools.partial(BatchNorm, 6)}, 1, 6, 3, padding=1, weight_scale=2),
                cuba.Pool(neuron, 2, weight_scale=1.1),
                cuba.Conv({**neuron, "norm": functools.partial(BatchNorm, 8)}, 6, 8, 3, padding=0, weight_scale=2),
                cuba.Flatten(),
                cuba.Dense(neuron, 8 * 2 * 2, 10, weight_scale=2),
            ]
        )

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


@pytest.mark.slow
def test_a_hand_written_slayer_network_goes_through_the_whole_pipeline(digits, tmp_path):
    train_set, test_set, spikes = digits
    torch.manual_seed(0)
    net = prepare_model(HandWritten(), (1, 8, 8))
    quantize_model(net, QuantConfig(4, "baseline"))
    small_train = type(train_set)(train_set.images[:400], train_set.labels[:400], 10)
    train(net, small_train, test_set, ENCODING, TrainConfig(epochs=2), progress=False)
    prune = PruneConfig((0.5,), "svs", finetune_epochs=1, calibration_samples=64)
    small, record, _ = prune_and_finetune(net, prune, small_train, test_set, ENCODING, TrainConfig(), progress=False)
    assert isinstance(small, HandWritten) and record["widths_before"] == [6, 8, 10]
    assert [b.neuron.shape[0] for b in small.blocks if hasattr(b, "neuron")] == [3, 3, 4, 10]
    checkpoint = Checkpoint.of(small, dataset="digits", encoding=ENCODING, pruning=record, image_shape=(1, 8, 8))
    assert checkpoint.model.widths == (3, 4, 10) and checkpoint.quant == QuantConfig(4, "baseline")
    np.testing.assert_array_equal(  # the rebuilt network is the hand-written one
        output_spikes(checkpoint.build(), spikes), output_spikes(small, spikes)
    )
    reference = _spike_exact(checkpoint, tmp_path / "hand.net", spikes[:16])
    assert reference.any()


def test_unsupported_blocks_are_named_with_what_is_supported():
    from lava.lib.dl import slayer

    class WithAffine(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList(
                [slayer.block.cuba.Dense(NEURON, 64, 8), slayer.block.cuba.Affine(NEURON, 8, 10)]
            )

    with pytest.raises(ConfigError, match=r"blocks.1 is .*Affine: lava-qpsnn supports slayer.block.cuba.Conv, Pool"):
        prepare_model(WithAffine(), (1, 8, 8))
    with pytest.raises(ConfigError, match="needs image_shape"):
        Checkpoint.of(WithAffine(), dataset="digits", encoding=ENCODING)


def test_a_user_defined_criterion_prunes_through_the_registry(digits, monkeypatch):
    import lava_qpsnn.training.prune.criteria as criteria_module

    torch.manual_seed(0)
    net = build_model(ModelConfig.from_arch("6c3-p2-8c3-10", (1, 8, 8), 10))
    last_channels = Criterion(weights=lambda weight, rng: np.arange(weight.shape[0], dtype=float))
    monkeypatch.setitem(criteria_module._CRITERIA, "last-channels", None)  # removed again after the test
    register_criterion("last-channels", last_channels)
    scores = channel_scores(net, digits[2], "last-channels")
    keeps = [select_channels(s, 0.5)[0] for s in scores]
    assert [k.tolist() for k in keeps] == [[False] * 3 + [True] * 3, [False] * 4 + [True] * 4]
    PruneConfig((0.5,), "last-channels")  # accepted by name once registered
    small = compact(apply_masks(net, keeps))
    assert small.config.widths == (3, 4, 10)
    np.testing.assert_array_equal(output_spikes(small, digits[2]), output_spikes(net, digits[2]))
    with pytest.raises(ConfigError, match="exactly one"):
        Criterion()


def test_checkpoint_reads_quantization_from_the_hooks_and_refuses_a_disagreeing_config():
    net = quantize_model(build_model(ModelConfig.from_arch("16-8-10", (1, 8, 8), 10)), QuantConfig(2, "baseline"))
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=ENCODING)
    assert checkpoint.quant == QuantConfig(2, "baseline")
    with pytest.raises(
        ConfigError, match=r"disagrees with the model's hooks \(bits per layer \[8, 4, 8\] vs \[8, 2, 8\]"
    ):
        Checkpoint.of(net, dataset="digits", encoding=ENCODING, quant=QuantConfig(4, "baseline"))
    with pytest.raises(ConfigError, match="quantizer rescaw vs baseline"):
        Checkpoint.of(net, dataset="digits", encoding=ENCODING, quant=QuantConfig(2))


def test_export_uses_the_stored_scales(tmp_path):
    import h5py

    torch.manual_seed(0)
    net = quantize_model(build_model(ModelConfig.from_arch("16-10", (1, 8, 8), 10)), QuantConfig(4, gamma="mean"))
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=ENCODING)
    gamma = float(net.blocks[0].synapse.weight.detach().abs().mean())
    assert checkpoint.scales[0] == pytest.approx(gamma, rel=1e-6)
    save_checkpoint(checkpoint, tmp_path / "m.pt")
    halved = Checkpoint(**{**vars(checkpoint), "scales": (checkpoint.scales[0] / 2, checkpoint.scales[1])})
    export_netx(checkpoint, tmp_path / "a.net")
    export_netx(halved, tmp_path / "b.net")
    with h5py.File(tmp_path / "a.net") as a, h5py.File(tmp_path / "b.net") as b:
        vth_a, vth_b = a["layer/1/neuron/vThMant"][()], b["layer/1/neuron/vThMant"][()]
    assert abs(vth_b - 2 * vth_a) <= 1  # vth = round(theta * 2^e * S / gamma)


def test_folding_refuses_a_batchnorm_that_was_not_prepared():
    from lava.lib.dl import slayer

    class Raw(torch.nn.Module):
        def __init__(self):
            super().__init__()
            params = {**NEURON, "norm": functools.partial(BatchNorm, 8)}
            self.blocks = torch.nn.ModuleList(
                [slayer.block.cuba.Dense(params, 64, 8), slayer.block.cuba.Dense(NEURON, 8, 10)]
            )

    with pytest.raises(ConfigError, match="call prepare_model"):
        to_fixed_point(Raw())


def test_report_and_exporter_table_align_layers_across_pooling(bn_pool_checkpoint, tmp_path):
    from lava_qpsnn.report.network import report_network

    path = tmp_path / "bn_pool.net"
    rows = export_netx(bn_pool_checkpoint, path)
    assert [(r.kind, r.weight_bits) for r in rows] == [
        ("input", None),
        ("conv", 8),
        ("pool", 7),  # 70 = 35 x 2: 7 signed bits
        ("conv", 4),
        ("flatten", None),
        ("dense", 8),
    ]
    assert rows[2].params == 4 * 2 * 2 and rows[2].params_before == 8 * 2 * 2
    report = report_network(path, checkpoint=bn_pool_checkpoint, samples=4)
    assert [layer.summary.weight_bits for layer in report.layers] == [r.weight_bits for r in rows]


def test_a_bias_beyond_loihis_13_bits_is_refused_at_conversion():
    from lava_qpsnn.errors import ExportError

    net = quantize_model(build_model(ModelConfig.from_arch("8-10", (1, 8, 8), 10, norm="bn")), QuantConfig(8))
    with torch.no_grad():
        net.blocks[0].neuron.norm.shift[0] = 1e4
    with pytest.raises(ExportError, match=r"weight layer 0 has a bias reaching \d+, beyond Lava's 13-bit bias -4096"):
        to_fixed_point(net)


def test_batchnorm_in_training_is_torchs_on_the_unfolded_current():
    """Given a folded current ``s * W x``, training normalises ``W x`` as torch's own BatchNorm does, from the
    layer's latency on (no input arrives before it, and no bias is added), and updates the same running
    statistics; gradients reach the input, gamma and beta as through torch's."""
    norm = BatchNorm(3, momentum=0.25).train()
    norm.latency = 2
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, -1.5, 2.0]))
        norm.shift.copy_(torch.tensor([0.1, -0.2, 0.3]))
        norm.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    raw = torch.randn(5, 3, 4, 6, generator=torch.Generator().manual_seed(0)) * 3 + 2
    raw = (raw * (torch.arange(6) >= 2)).requires_grad_()
    s = norm.scale().detach()  # from the running variance before this step, as the synapse folds it
    out = norm(raw * s.view(1, -1, 1, 1))
    reference = torch.nn.BatchNorm2d(3, momentum=0.25)
    with torch.no_grad():
        reference.weight.copy_(norm.weight)
        reference.bias.copy_(norm.shift)
        reference.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    active = raw[..., 2:].permute(0, 3, 1, 2)  # N x T x C x H -> a 2d BatchNorm over (N, T, H)
    expected = reference(active.reshape(-1, 3, 4, 1)).reshape(5, 4, 3, 4).permute(0, 2, 3, 1)
    torch.testing.assert_close(out[..., 2:], expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(out[..., :2], torch.zeros(5, 3, 4, 2))
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    torch.testing.assert_close(norm.running_var, reference.running_var)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    mine = torch.autograd.grad((out[..., 2:] * grad[..., 2:]).sum(), (raw, norm.weight, norm.shift))
    theirs = torch.autograd.grad((expected * grad[..., 2:]).sum(), (raw, reference.weight, reference.bias))
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_batchnorm_trains_through_a_zero_or_negative_gamma():
    norm = BatchNorm(3).train()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([-1.0, 0.0, 2.0]))
    raw = torch.randn(4, 3, 5, 6)
    out = norm(raw * norm.scale().view(1, -1, 1, 1))  # the current a folded synapse would give
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 2].std(unbiased=False), torch.tensor(2.0), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(out[:, 0].mean(), torch.tensor(0.0), rtol=0, atol=1e-5)


def _hand_written(in_channels: int = 1, norm=None, hook=None, neuron: dict | None = None):
    from lava.lib.dl import slayer

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            params = {**NEURON, **(neuron or {}), **({"norm": norm} if norm else {})}
            conv = slayer.block.cuba.Conv(
                params, in_channels, 6, 3, padding=1, **({"pre_hook_fx": hook} if hook else {})
            )
            self.blocks = torch.nn.ModuleList(
                [conv, slayer.block.cuba.Flatten(), slayer.block.cuba.Dense(NEURON, 384, 10)]
            )

    return Net()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: _hand_written(norm=functools.partial(BatchNorm, 6, eps=0.5)), "BatchNorm eps 0.5.*keep the defaults"),
        (lambda: _hand_written(hook=lambda w, descale=False: w), "has weight hook .*quantize_model"),
        (lambda: _hand_written(neuron={"graded_spike": True}), "graded spikes"),
        (lambda: _hand_written(in_channels=2), r"blocks.0 \(Conv\) takes 2 input channels.* gets 1"),
        (lambda: _hand_written(norm=functools.partial(BatchNorm, 4)), "BatchNorm of 4 features on 6 channels"),
    ],
)
def test_hand_written_networks_a_checkpoint_cannot_hold_are_refused(make, message):
    with pytest.raises(ConfigError, match=message) as info:
        Checkpoint.of(make(), dataset="digits", encoding=ENCODING, image_shape=(1, 8, 8))
    assert "\n" not in str(info.value)


def test_unprepared_batchnorm_and_masked_networks_are_not_packaged():
    net = _hand_written(norm=functools.partial(BatchNorm, 6))
    with pytest.raises(ConfigError, match="call prepare_model"):
        Checkpoint.of(net, dataset="digits", encoding=ENCODING, image_shape=(1, 8, 8))
    prepare_model(net, (1, 8, 8))
    apply_masks(net, [np.array([True] * 3 + [False] * 3)])
    with pytest.raises(ConfigError, match=r"weight layer 0 has a pruning mask: compact\(\) the network"):
        Checkpoint.of(net, dataset="digits", encoding=ENCODING, image_shape=(1, 8, 8))
    Checkpoint.of(compact(net), dataset="digits", encoding=ENCODING, image_shape=(1, 8, 8))


def test_widths_that_do_not_fit_the_layers_are_refused():
    config = ModelConfig.from_arch("8c3-16c3-10", (1, 8, 8), 10)
    assert config.with_widths([4, 8, 10]).widths == (4, 8, 10)
    for widths in ([8], [8, 16, 12], [8, 16, 10, 4], [0, 16, 10]):
        with pytest.raises(ConfigError, match="do not fit 3 conv/dense layers ending in 10 classes"):
            config.with_widths(widths)


def test_folded_weights_beyond_loihis_range_are_refused():
    from lava_qpsnn.errors import ExportError

    net = build_model(ModelConfig.from_arch("8-10", (1, 8, 8), 10, norm="bn"))
    net.blocks[0].synapse.pre_hook_fx.inner = None  # no quantizer at all (slayer's own would clamp)
    with torch.no_grad():
        net.blocks[0].neuron.norm.weight.fill_(1e3)
    with pytest.raises(ExportError, match=r"weight layer 0 has integer weights in -?\d+..\d+, beyond Loihi's 8-bit"):
        to_fixed_point(net)


def test_masked_and_compacted_batchnorm_pooling_nets_spike_identically(digits):
    torch.manual_seed(0)
    net = quantize_model(build_model(ModelConfig.from_arch("6c3-p2-8c3-10", (1, 8, 8), 10, norm="bn")), QuantConfig(4))
    spikes = digits[2]
    with torch.no_grad():
        for block in net.blocks[::2]:
            block.synapse.weight.mul_(3)
    apply_masks(net, [select_channels(s, 0.5)[0] for s in channel_scores(net, spikes, "svs")])
    small = compact(net)
    assert small.config.widths == (3, 4, 10)
    masked = output_spikes(net, spikes)
    assert masked.any()
    np.testing.assert_array_equal(output_spikes(small, spikes), masked)
    np.testing.assert_array_equal(
        output_spikes(to_fixed_point(small), spikes), output_spikes(to_fixed_point(net), spikes)
    )
