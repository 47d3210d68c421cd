"""Networks written by hand with slayer blocks, read back as layer specs.

lava-dl's own examples build networks from ``slayer.block.cuba`` blocks; such a network is
first-class here: :func:`config_of_blocks` reads its :class:`~lava_qpsnn.training.specs.ModelConfig`
back from any module's ``blocks``, which is how a checkpoint stores and rebuilds it. Whatever the
spec cannot hold would be lost on rebuilding, so it is refused, naming the block.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import torch

from ..errors import ConfigError
from ..loihi import MAX_DELAY
from .hooks import FoldedWeights, IntegerWeights, MaskedWeights, WeightQuantizer
from .norm import BatchNorm, Bias
from .specs import Conv, Dense, Flatten, LayerSpec, ModelConfig, NeuronConfig, Pool

__all__ = ["config_of_blocks", "with_trained_decays"]


def config_of_blocks(blocks: Sequence[torch.nn.Module], image_shape: Sequence[int]) -> ModelConfig:
    """Read the spec back from slayer blocks (e.g. a network written by hand).

    Every block must be a supported slayer CUBA block with one-step delay, slayer's axonal
    delays or none (up to Loihi's 62 steps, where the next synapse is dense), no weight norm,
    no graded spikes or persistent state, shared neuron
    parameters, a weight hook lava-qpsnn knows and channel counts that fit ``image_shape``;
    one-line errors name the block otherwise: anything the spec cannot hold would be lost
    when a checkpoint rebuilds the network. Each block keeps its own neuron (decays as they
    act now, learnable or not) and its BatchNorm or none; the most common neuron becomes the
    model's, so a uniform network reads back as one neuron for all.
    """
    from lava.lib.dl import slayer

    cuba = slayer.block.cuba
    layers: list[LayerSpec] = []
    neurons: list[NeuronConfig | None] = []
    for i, block in enumerate(blocks):
        kind = type(block)
        if kind is cuba.Flatten:
            layers.append(Flatten())
            neurons.append(None)
            continue
        if kind not in (cuba.Conv, cuba.Pool, cuba.Dense):
            raise ConfigError(
                f"blocks.{i} is {kind.__module__}.{kind.__name__}: lava-qpsnn supports "
                "slayer.block.cuba.Conv, Pool, Dense and Flatten"
            )
        if not block.delay_shift or block.count_log:
            raise ConfigError(
                f"blocks.{i} ({kind.__name__}) has no delay_shift or count_log: "
                "build it with delay_shift=True, count_log=False"
            )
        delay = _check_delay(i, block)
        synapse = block.synapse
        _check_square(i, synapse)
        _check_rebuildable(i, block)
        neurons.append(_neuron_of(i, block.neuron))
        norm = block.neuron.norm
        if kind is cuba.Pool:
            if synapse.stride[0] != synapse.kernel_size[0] or synapse.padding[0] or synapse.dilation[0] != 1:
                raise ConfigError(f"blocks.{i} pools with overlap, padding or dilation: use stride == kernel only")
            if norm is not None:
                raise ConfigError(f"blocks.{i} (Pool) has a neuron norm: pooling acts on spikes, remove its norm")
            layers.append(Pool(synapse.kernel_size[0], delay=delay))
            continue
        if norm is not None and not isinstance(norm, BatchNorm):
            raise ConfigError(
                f"blocks.{i} uses neuron norm {type(norm).__name__}: use lava_qpsnn.training.norm.BatchNorm "
                "(it folds into Loihi's weights and bias)"
            )
        bn = None if norm is None else "bias" if isinstance(norm, Bias) else "bn"
        if kind is cuba.Conv:
            size = (synapse.kernel_size[0], synapse.stride[0], synapse.padding[0], synapse.dilation[0])
            layers.append(Conv(synapse.out_channels, *size, synapse.groups, norm=bn, delay=delay))
        else:
            layers.append(Dense(synapse.out_channels, norm=bn, delay=delay))
    counts = Counter(n for n in neurons if n is not None)
    default = counts.most_common(1)[0][0] if counts else NeuronConfig()  # ties: the first block's
    layers = [layer if n is None else replace(layer, neuron=n) for layer, n in zip(layers, neurons, strict=True)]
    config = ModelConfig(tuple(layers), tuple(image_shape), "none", default)
    _check_channels(blocks, config)
    return config


def with_trained_decays(config: ModelConfig, blocks: Sequence[torch.nn.Module]) -> ModelConfig:
    """``config`` with the decays its learnable neurons (``requires_grad``) have now in ``blocks``.

    Training moves them away from the values ``config`` was built with; the checkpoint records
    the trained ones, which its state dict also holds.
    """
    layers = list(config.layers)
    for i, block in enumerate(blocks):
        neuron = config.neuron_at(i)
        if neuron.requires_grad and getattr(block, "neuron", None) is not None:
            now = _neuron_of(i, block.neuron)
            neuron = replace(neuron, current_decay=now.current_decay, voltage_decay=now.voltage_decay)
            layers[i] = replace(layers[i], neuron=neuron)
    return replace(config, layers=tuple(layers))


def _check_delay(index: int, block: torch.nn.Module) -> bool:
    """Whether ``block`` has axonal delays; one-line error for delays Loihi cannot run as trained."""
    from lava.lib.dl import slayer

    delay = block.delay
    if delay is None:
        return False
    where = f"blocks.{index} ({type(block).__name__})"
    if type(delay) is not slayer.axon.Delay or delay.sampling_time != 1:
        raise ConfigError(f"{where} has delay {delay!r}: use slayer's own, delay=True in the block")
    if delay.max_delay is None or delay.max_delay > MAX_DELAY:
        raise ConfigError(
            f"{where} lets its axonal delays grow to {delay.max_delay}; Loihi's reach {MAX_DELAY} steps: "
            f"set its delay.max_delay = {MAX_DELAY} (slayer's delay=True does)"
        )
    if (delay.max_delay, delay.grad_scale) != (MAX_DELAY, 1):
        raise ConfigError(
            f"{where} has delay max_delay {delay.max_delay}, grad_scale {delay.grad_scale}, which a checkpoint "
            f"cannot hold (it rebuilds slayer's delay=True: max_delay {MAX_DELAY}, grad_scale 1): build the block "
            "with delay=True"
        )
    return True


def _check_rebuildable(index: int, block: torch.nn.Module) -> None:
    """One-line error for block settings a :class:`ModelConfig` cannot record."""
    neuron, synapse = block.neuron, block.synapse
    where = f"blocks.{index} ({type(block).__name__})"
    if synapse.weight_norm_enabled or neuron.graded_spike or neuron.persistent_state or not neuron.shared_param:
        raise ConfigError(
            f"{where} uses weight norm, graded spikes, persistent state or per-neuron parameters: "
            "lava-qpsnn networks use none of them"
        )
    norm = neuron.norm
    if isinstance(norm, BatchNorm) and not isinstance(norm, Bias) and (norm.eps, norm.momentum) != (1e-5, 0.1):
        raise ConfigError(f"{where}: BatchNorm eps {norm.eps}, momentum {norm.momentum}: keep the defaults 1e-5, 0.1")
    hook = synapse.pre_hook_fx
    if isinstance(hook, FoldedWeights):
        hook = hook.inner
    if isinstance(hook, MaskedWeights):
        hook = hook.inner
    slayer_default = getattr(hook, "__name__", "") == "quantize_8bit" and getattr(hook, "__self__", None) is neuron
    if not (slayer_default or isinstance(hook, WeightQuantizer | IntegerWeights)):
        raise ConfigError(
            f"{where} has weight hook {hook!r}: use slayer's default (quantize_8bit) or lava_qpsnn's quantize_model()"
        )


def _check_channels(blocks: Sequence[torch.nn.Module], config: ModelConfig) -> None:
    """One-line error where a block's input channels or BatchNorm size do not fit the derived shapes."""
    shape = config.input_shape
    for i, (block, out) in enumerate(zip(blocks, config.shapes, strict=True)):
        synapse = getattr(block, "synapse", None)
        if synapse is not None and type(block).__name__ != "Pool" and synapse.in_channels != shape[0]:
            raise ConfigError(
                f"blocks.{i} ({type(block).__name__}) takes {synapse.in_channels} input channels/features but gets "
                f"{shape[0]} from the layers before it (input {'x'.join(map(str, config.input_shape))})"
            )
        norm = getattr(getattr(block, "neuron", None), "norm", None)
        if isinstance(norm, BatchNorm) and norm.num_features != out[0]:
            raise ConfigError(f"blocks.{i}: BatchNorm of {norm.num_features} features on {out[0]} channels")
        shape = out


def _neuron_of(index: int, neuron: torch.nn.Module) -> NeuronConfig:
    """A slayer CUBA neuron's parameters; decays as they act (slayer clamps learned ones into [0, 1] before use)."""

    def decay(parameter: torch.Tensor) -> float:
        return min(max(float(parameter.detach()[0]) / neuron.p_scale, 0.0), 1.0)

    try:
        return NeuronConfig(
            float(neuron.threshold),
            decay(neuron.current_decay),
            decay(neuron.voltage_decay),
            float(neuron.tau_rho / neuron.threshold),
            float(neuron.scale_rho),
            bool(neuron.requires_grad),
        )
    except ConfigError as exc:
        raise ConfigError(f"blocks.{index}: {exc}") from None


def _check_square(index: int, synapse: torch.nn.Module) -> None:
    for name in ("kernel_size", "stride", "padding", "dilation"):
        value = getattr(synapse, name)
        if value[0] != value[1]:
            raise ConfigError(f"blocks.{index} has a non-square {name} {tuple(value[:2])}: use equal height and width")
