"""Spiking networks built from lava-dl slayer CUBA blocks, from layer specs or by hand.

:func:`build_model` makes a :class:`SpikingNet` of a :class:`~lava_qpsnn.training.specs.ModelConfig`:
a plain ``torch.nn.Module`` whose ``blocks`` are slayer blocks, so slayer's training machinery
and each block's ``export_hdf5`` work unchanged. :func:`prepare_model` makes any module with
slayer ``blocks`` (e.g. a network written by hand) ready for lava-qpsnn.

Layouts: the network takes input ``NCHWT`` (spikes, or direct-encoded payloads: :func:`scale_input`)
and returns output spikes ``N x classes x T``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from ..errors import ConfigError
from .hooks import FoldedWeights
from .norm import BatchNorm, Bias
from .slayer_blocks import config_of_blocks
from .specs import Conv, Dense, ModelConfig, Pool, layer_width, output_shape

__all__ = [
    "SpikingNet",
    "build_model",
    "prepare_model",
    "weight_blocks",
    "scale_input",
    "input_payload_max",
    "POOL_WEIGHT",
]

# A pooling neuron's weight, in units of its threshold: any input spike in the window fires it
# (Lava compares v > vth, so exactly 1.0 would need two spikes): spike max-pooling.
POOL_WEIGHT = 1.1


class SpikingNet(torch.nn.Module):
    """A feed-forward stack of slayer CUBA blocks described by a :class:`ModelConfig` (see :func:`build_model`)."""

    def __init__(self, config: ModelConfig, blocks: list[torch.nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.blocks = torch.nn.ModuleList(blocks)
        prepare_model(self, config.image_shape)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Map input spikes ``NCHWT`` to output spikes ``N x classes x T``."""
        x = spikes.reshape(spikes.shape[0], *self.config.input_shape, spikes.shape[-1])
        for block in self.blocks:
            x = block(x)
        return x


class InputScale:
    """Forward pre-hook of a float network fed direct-encoded payloads: divides them by the largest one.

    Every network of the library takes what Lava receives (:mod:`lava_qpsnn.data.encoding`); the float
    network so sees the image on the payload grid, and the integer network, which takes the payloads
    as they are, folds the factor into its first layer (:func:`~lava_qpsnn.export.fixed_point.to_fixed_point`).
    """

    def __init__(self, payload_max: int) -> None:
        self.payload_max = payload_max

    def __call__(self, module: torch.nn.Module, args: tuple) -> tuple:
        return (args[0] / self.payload_max, *args[1:])


def scale_input(net: torch.nn.Module, payload_max: int) -> torch.nn.Module:
    """Make float ``net`` take payloads up to ``payload_max`` (1: binary spikes, as they are); in place, returns it.

    ``payload_max`` is :attr:`Encoding.payload_max <lava_qpsnn.data.Encoding.payload_max>`; calling it
    again replaces the previous setting.
    """
    from lava.lib.dl import slayer

    first = next((b for b in net.blocks if not isinstance(b, slayer.block.cuba.Flatten)), None)
    if payload_max != 1 and isinstance(first, slayer.block.cuba.Pool):
        raise ConfigError(
            "direct encoding feeds graded pixels to the first layer, which is pooling (pooling acts on spikes): "
            "begin with a conv or dense layer, or use rate encoding",
            settings=("arch", "encoding"),
        )
    for key, hook in list(net._forward_pre_hooks.items()):
        if isinstance(hook, InputScale):
            del net._forward_pre_hooks[key]
    if payload_max != 1:
        net.register_forward_pre_hook(InputScale(payload_max))
    return net


def input_payload_max(net: torch.nn.Module) -> int:
    """The largest input value ``net`` divides by (:func:`scale_input`); 1 if it takes its input as it is."""
    scales = [h.payload_max for h in net._forward_pre_hooks.values() if isinstance(h, InputScale)]
    return scales[0] if scales else 1


def weight_blocks(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The conv and dense blocks of ``net`` (the layers with trained weights), in order."""
    from lava.lib.dl import slayer

    return [b for b in net.blocks if isinstance(b, slayer.block.cuba.Conv | slayer.block.cuba.Dense)]


@torch.no_grad()
def prepare_model(net: torch.nn.Module, image_shape: Sequence[int]) -> torch.nn.Module:
    """Make a module with slayer ``blocks`` ready for lava-qpsnn (in place; returns it).

    Checks the blocks (:func:`~lava_qpsnn.training.slayer_blocks.config_of_blocks`), tells each
    :class:`~lava_qpsnn.training.norm.BatchNorm` its latency and folds it into its synapse's weights,
    gives the CUBA neurons the fused CPU dynamics (:func:`~lava_qpsnn.training.dynamics.use_fused_dynamics`:
    bit-identical to slayer's, several times faster), and runs one empty step so slayer learns the
    neuron and flatten shapes that export needs.
    """
    from .dynamics import use_fused_dynamics  # imports slayer and numba: only when a network is built

    config = config_of_blocks(net.blocks, image_shape)
    latency = 0
    for block in net.blocks:
        norm = getattr(getattr(block, "neuron", None), "norm", None)
        if isinstance(norm, BatchNorm):
            norm.latency = latency
            hook = block.synapse.pre_hook_fx
            if not isinstance(hook, FoldedWeights):
                block.synapse._pre_hook_fx = FoldedWeights(hook, norm)
        latency += int(getattr(block, "delay_shift", False))
    use_fused_dynamics(net)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    x = torch.zeros(1, *config.input_shape, 1, device=device)
    for block in net.blocks:
        x = block(x)
    return net.train(was_training)


def build_model(config: ModelConfig) -> SpikingNet:
    """Build the slayer network described by ``config`` (weights freshly initialised), each layer with its own
    neuron and BatchNorm (:meth:`~lava_qpsnn.training.specs.ModelConfig.neuron_at`, ``norm_at``)."""
    from lava.lib.dl import slayer

    cuba = slayer.block.cuba
    blocks: list[torch.nn.Module] = []
    shape = config.input_shape
    for i, layer in enumerate(config.layers):
        neuron = config.neuron_at(i)
        params = neuron.slayer_params()
        norm = {"bn": BatchNorm, "bias": Bias}.get(config.norm_at(i))
        if norm is not None:
            params["norm"] = functools.partial(norm, layer_width(layer))
        if isinstance(layer, Conv):
            blocks.append(
                cuba.Conv(
                    params,
                    shape[0],
                    layer.channels,
                    layer.kernel,
                    stride=layer.stride,
                    padding=layer.padding,
                    dilation=layer.dilation,
                    groups=layer.groups,
                    weight_scale=2,
                    delay=layer.delay,
                )
            )
        elif isinstance(layer, Pool):
            blocks.append(
                cuba.Pool(params, layer.kernel, weight_scale=POOL_WEIGHT * neuron.threshold, delay=layer.delay)
            )
        elif isinstance(layer, Dense):
            blocks.append(cuba.Dense(params, shape[0], layer.features, weight_scale=2, delay=layer.delay))
        else:
            blocks.append(cuba.Flatten())
        shape = output_shape(i, layer, shape)
    return SpikingNet(config, blocks)
