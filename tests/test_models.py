import pytest
import torch

from lava_qpsnn.errors import ConfigError
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.specs import Conv, Dense, Flatten, ModelConfig, NeuronConfig, Pool, format_arch, parse_arch


@pytest.mark.parametrize("arch", ["mlp", "conv", "8c3-p2-16c3-10"])
def test_models_map_nchwt_to_class_spikes_causally_and_per_sample(arch):
    """Output spikes; input changed from step 1 on changes nothing before step 1 + L (one step of delay in each
    of the L spiking layers), and a sample's output does not depend on the other samples of its batch."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_arch(arch, (1, 8, 8), 10)).eval()
    with torch.no_grad():
        for block in model.blocks:
            if hasattr(block, "synapse"):
                block.synapse.weight.mul_(4)  # random weights scaled so that the output spikes
    x = (torch.rand(3, 1, 8, 8, 10) < 0.5).float()
    out = model(x)
    assert out.shape == (3, 10, 10) and out.any()
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    changed = x.clone()
    changed[..., 1:] = 1 - changed[..., 1:]
    later = model(changed)
    latency = sum(hasattr(block, "neuron") for block in model.blocks)
    assert torch.equal(later[..., : 1 + latency], out[..., : 1 + latency]) and not torch.equal(later, out)
    alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert torch.equal(alone, out)


def test_one_dense_layer_by_hand():
    """Output k connected to pixel (k, 7 - k) alone with weight 2 (twice the threshold, on slayer's 8-bit grid),
    no current state: it spikes one step (slayer's delay) after each spike of its pixel, and resets."""
    model = build_model(ModelConfig.from_arch("10", (1, 10, 8), 10))
    with torch.no_grad():
        weight = torch.zeros(10, 80)
        for k in range(10):
            weight[k, k * 8 + (7 - k) % 8] = 2.0
        model.blocks[0].synapse.weight.copy_(weight.reshape(model.blocks[0].synapse.weight.shape))
    x = (torch.rand(2, 1, 10, 8, 9, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    out = model(x)
    expected = torch.zeros(2, 10, 9)
    for k in range(10):
        expected[:, k, 1:] = x[:, 0, k, (7 - k) % 8, :-1]
    assert torch.equal(out, expected)


def test_config_round_trip_and_defaults():
    config = ModelConfig.from_arch("conv", (1, 8, 8), 10, neuron=NeuronConfig(threshold=1.5), norm="bn")
    assert config.widths == (8, 16, 10)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_arch("mlp", (1, 8, 8), 10).input_shape == (64,)


def test_spec_notation_parses_to_layers_and_back():
    layers = parse_arch("16c3-p2-32c5s2g2-p2-128-10")
    assert layers == (
        Conv(16, 3, padding=1),
        Pool(2),
        Conv(32, 5, stride=2, padding=2, groups=2),
        Pool(2),
        Flatten(),
        Dense(128),
        Dense(10),
    )
    assert format_arch(layers) == "16c3-p2-32c5s2g2-p2-128-10"
    # shapes by hand: 28 -> same conv 28 -> pool 14 -> 5x5/2 pad 2: (14 + 4 - 5) // 2 + 1 = 7 -> pool fails (7 % 2)
    config = ModelConfig(parse_arch("16c3-p2-32c5s2-10"), (1, 28, 28))
    assert config.shapes == [(16, 28, 28), (16, 14, 14), (32, 7, 7), (1568,), (10,)]
    assert parse_arch("conv", 10) == (Conv(8, 3), Conv(16, 3, 2), Flatten(), Dense(10))


@pytest.mark.parametrize(
    "arch, shape, message",
    [
        ("16x3-10", (1, 8, 8), "bad layer '16x3'.*NcK"),
        ("8c3-p3-10", (1, 8, 8), r"layer 2 \(pool\): 8x8 is not divisible by the pooling size 3"),
        ("8c3-16c3g3-10", (1, 8, 8), "8 -> 16 channels are not divisible by 3 groups"),
        ("8c3-16", (1, 8, 8), "ends with 16 outputs but the data has 10 classes"),
        ("10-8c3", (1, 8, 8), "the last layer must be dense"),
        ("0-10", (1, 8, 8), "width must be >= 1"),
    ],
)
def test_bad_architectures_are_one_line_errors(arch, shape, message):
    with pytest.raises(ConfigError, match=message) as info:
        ModelConfig.from_arch(arch, shape, 10)
    assert "\n" not in str(info.value)


def test_bad_normalization():
    with pytest.raises(ConfigError, match="unknown normalization 'ln'"):
        ModelConfig.from_arch("mlp", (1, 8, 8), 10, norm="ln")


def test_bad_neuron_parameters():
    with pytest.raises(ConfigError, match="voltage_decay"):
        NeuronConfig(voltage_decay=1.5)
    with pytest.raises(ConfigError, match="threshold"):
        NeuronConfig(threshold=0)
