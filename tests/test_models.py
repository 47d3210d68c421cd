import pytest
import torch

from lava_qpsnn.errors import ConfigError
from lava_qpsnn.models import ModelConfig, NeuronConfig, build_model


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_models_map_nchwt_to_class_spikes(arch):
    model = build_model(ModelConfig(arch, (1, 8, 8), 10))
    out = model((torch.rand(3, 1, 8, 8, 7) < 0.5).float())
    assert out.shape == (3, 10, 7)
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_config_round_trip_and_defaults():
    config = ModelConfig("conv", (1, 8, 8), 10, neuron=NeuronConfig(threshold=1.5))
    assert config.hidden == (8, 16)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig("mlp", (1, 8, 8), 10).input_shape == (64,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(arch="resnet"), "unknown model 'resnet'"),
        (dict(arch="conv", hidden=(4,)), "2 channel counts"),
        (dict(arch="mlp", hidden=(0,)), "widths must be >= 1"),
    ],
)
def test_bad_model_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(image_shape=(1, 8, 8), num_classes=10, **kwargs)


def test_bad_neuron_parameters():
    with pytest.raises(ConfigError, match="voltage_decay"):
        NeuronConfig(voltage_decay=1.5)
    with pytest.raises(ConfigError, match="threshold"):
        NeuronConfig(threshold=0)
