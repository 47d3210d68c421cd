"""Spiking networks as layer specs, built from lava-dl slayer CUBA blocks.

A :class:`ModelConfig` is a sequence of layers (:class:`Conv`, :class:`Pool`,
:class:`Dense`, :class:`Flatten`), written in the notation SNN papers use
(:func:`parse_arch`, e.g. ``16c3-p2-32c3-p2-128-10``), with optional BatchNorm
(:mod:`lava_qpsnn.training.norm`) on every spiking layer but the output. :func:`build_model` makes
a :class:`SpikingNet`, a plain ``torch.nn.Module`` whose ``blocks`` are slayer blocks, so
slayer's training machinery and each block's ``export_hdf5`` work unchanged.

Networks written by hand with slayer blocks (as lava-dl's own examples are) are first-class
too: :meth:`ModelConfig.from_blocks` reads the spec back from any module's ``blocks``, which
is how the checkpoint stores and rebuilds them.

Layouts: the network takes spikes ``NCHWT`` and returns output spikes ``N x classes x T``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from ..errors import ConfigError
from .norm import BatchNorm

__all__ = [
    "NeuronConfig",
    "Conv",
    "Pool",
    "Dense",
    "Flatten",
    "LayerSpec",
    "ModelConfig",
    "SpikingNet",
    "build_model",
    "parse_arch",
    "prepare_network",
    "weight_blocks",
    "PRESETS",
    "NORMS",
    "POOL_WEIGHT",
]

NORMS = ("none", "bn")
# A pooling neuron's weight, in units of its threshold: any input spike in the window fires it
# (Lava compares v > vth, so exactly 1.0 would need two spikes): spike max-pooling.
POOL_WEIGHT = 1.1


@dataclass(frozen=True)
class NeuronConfig:
    """CUBA LIF parameters in slayer's units.

    The defaults are the QP-SNN neuron: no current state (``current_decay=1``), membrane
    leak 0.5, threshold 1.0, hard reset to 0. netx maps them to Lava's LIF as
    ``du=4095, dv=2048, vth=64``. ``tau_grad`` and ``scale_grad`` shape slayer's surrogate
    gradient (width ``100 * tau_grad * threshold``): slayer's ``tau_grad=1`` is nearly flat
    over the voltages seen; 0.003 was chosen on a validation split
    (``benchmarks/results/recipe.md``). They only affect training.
    """

    threshold: float = 1.0
    current_decay: float = 1.0
    voltage_decay: float = 0.5
    tau_grad: float = 0.003
    scale_grad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("threshold", "tau_grad", "scale_grad"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ConfigError(f"neuron {name} must be a finite number > 0, got {value}")
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"neuron {name} must be in [0, 1], got {value}")

    def slayer_params(self) -> dict:
        """Keyword arguments for slayer's ``block.cuba`` constructors."""
        return dict(vars(self))


@dataclass(frozen=True)
class Conv:
    """``NcK[sS][gG]``: a spiking conv layer, ``padding`` default ``kernel // 2`` (the same size at stride 1, odd K)."""

    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None
    dilation: int = 1
    groups: int = 1

    def __post_init__(self) -> None:
        if self.padding is None:
            object.__setattr__(self, "padding", self.dilation * (self.kernel - 1) // 2)
        if min(self.channels, self.kernel, self.stride, self.dilation, self.groups) < 1 or self.padding < 0:
            raise ConfigError(f"conv layer {self} needs positive sizes and padding >= 0")


@dataclass(frozen=True)
class Pool:
    """``pK``: spike max-pooling over non-overlapping K x K windows (a spiking layer, as in slayer)."""

    kernel: int

    def __post_init__(self) -> None:
        if self.kernel < 1:
            raise ConfigError(f"pooling kernel must be >= 1, got {self.kernel}")


@dataclass(frozen=True)
class Dense:
    """``N``: a spiking dense layer of N neurons (the last one is the output: one neuron per class)."""

    features: int

    def __post_init__(self) -> None:
        if self.features < 1:
            raise ConfigError(f"dense layer width must be >= 1, got {self.features}")


@dataclass(frozen=True)
class Flatten:
    """C x H x W -> C*H*W features (C order); inserted before the first dense layer after a conv or pool."""


LayerSpec = Conv | Pool | Dense | Flatten
_KINDS = {"conv": Conv, "pool": Pool, "dense": Dense, "flatten": Flatten}
_TOKEN = re.compile(
    r"(?P<channels>\d+)c(?P<kernel>\d+)(?:s(?P<stride>\d+))?(?:g(?P<groups>\d+))?|p(?P<pool>\d+)|(?P<dense>\d+)"
)

PRESETS = {
    "mlp": "128-{classes}",
    "conv": "8c3-16c3s2-{classes}",
}


def parse_arch(text: str, num_classes: int | None = None) -> tuple[LayerSpec, ...]:
    """Layers of a spec like ``16c3-p2-32c3s2-128-10`` (or a preset name: ``mlp``, ``conv``).

    ``NcK`` conv (N channels, kernel K; optional ``sS`` stride, ``gG`` groups), ``pK``
    pooling, a bare number a dense layer. A flatten is inserted before the first dense layer
    that follows a conv or pooling layer. Presets take ``num_classes`` as their output width.
    """
    if text in PRESETS:
        if num_classes is None:
            raise ConfigError(f"preset {text!r} needs the number of classes")
        text = PRESETS[text].format(classes=num_classes)
    layers: list[LayerSpec] = []
    for token in text.split("-"):
        match = _TOKEN.fullmatch(token.strip())
        if match is None:
            raise ConfigError(
                f"bad layer {token!r} in architecture {text!r}: use NcK[sS][gG] (conv), pK (pooling) or N (dense), "
                f"joined by '-', e.g. 16c3-p2-32c3-p2-128-10, or a preset ({', '.join(PRESETS)})"
            )
        g = match.groupdict()
        if g["dense"] is not None:
            if layers and isinstance(layers[-1], Conv | Pool):
                layers.append(Flatten())
            layers.append(Dense(int(g["dense"])))
        elif g["pool"] is not None:
            layers.append(Pool(int(g["pool"])))
        else:
            layers.append(
                Conv(int(g["channels"]), int(g["kernel"]), int(g["stride"] or 1), groups=int(g["groups"] or 1))
            )
    return tuple(layers)


def format_arch(layers: Sequence[LayerSpec]) -> str:
    """The spec string of ``layers`` (inverse of :func:`parse_arch` for its notation)."""
    tokens = []
    for layer in layers:
        if isinstance(layer, Conv):
            extra = (f"s{layer.stride}" if layer.stride > 1 else "") + (f"g{layer.groups}" if layer.groups > 1 else "")
            tokens.append(f"{layer.channels}c{layer.kernel}{extra}")
        elif isinstance(layer, Pool):
            tokens.append(f"p{layer.kernel}")
        elif isinstance(layer, Dense):
            tokens.append(str(layer.features))
    return "-".join(tokens)


@dataclass(frozen=True)
class ModelConfig:
    """A feed-forward spiking network: its layers, input shape, normalization and neuron.

    Attributes
    ----------
    layers : the layers in order; the last must be :class:`Dense` (the classes)
    image_shape : ``(C, H, W)`` of the data
    norm : ``"bn"`` (BatchNorm on every conv and hidden dense layer) or ``"none"``
    neuron : the CUBA neuron of every layer
    """

    layers: tuple[LayerSpec, ...]
    image_shape: tuple[int, int, int]
    norm: str = "none"
    neuron: NeuronConfig = field(default_factory=NeuronConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        if self.norm not in NORMS:
            raise ConfigError(f"unknown normalization {self.norm!r}: choose one of {', '.join(NORMS)}")
        if not self.layers or not isinstance(self.layers[-1], Dense):
            raise ConfigError(f"the last layer must be dense (one neuron per class), got {format_arch(self.layers)!r}")
        self.shapes  # noqa: B018  (validates the geometry)

    @classmethod
    def from_arch(cls, arch: str, image_shape: Sequence[int], num_classes: int, **kwargs) -> ModelConfig:
        """Config from a spec or preset (:func:`parse_arch`); the output width must be ``num_classes``."""
        config = cls(parse_arch(arch, num_classes), tuple(image_shape), **kwargs)
        if config.num_classes != num_classes:
            raise ConfigError(
                f"architecture {arch!r} ends with {config.num_classes} outputs but the data has {num_classes} classes: "
                f"end it with -{num_classes}"
            )
        return config

    @property
    def num_classes(self) -> int:
        return self.layers[-1].features

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one time step of the network input (the NetX input layer, C-order)."""
        return (math.prod(self.image_shape),) if isinstance(self.layers[0], Dense) else self.image_shape

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Output shape of every layer (C-order); one-line error where the geometry does not fit."""
        shape, out = self.input_shape, []
        for i, layer in enumerate(self.layers):
            shape = _output_shape(i, layer, shape)
            out.append(shape)
        return out

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels / neurons of every conv and dense layer, in order."""
        return tuple(_width(layer) for layer in self.layers if isinstance(layer, Conv | Dense))

    def with_widths(self, widths: Sequence[int]) -> ModelConfig:
        """The same network with new conv/dense widths (the output layer's must stay)."""
        widths = [int(w) for w in widths]
        if len(widths) != len(self.widths) or widths[-1] != self.num_classes or min(widths) < 1:
            raise ConfigError(
                f"widths {widths} do not fit {len(self.widths)} conv/dense layers ending in {self.num_classes} classes"
            )
        widths = iter(widths)
        layers = []
        for layer in self.layers:
            if isinstance(layer, Conv):
                layer = replace(layer, channels=next(widths))
            elif isinstance(layer, Dense):
                layer = replace(layer, features=next(widths))
            layers.append(layer)
        return replace(self, layers=tuple(layers))

    def to_dict(self) -> dict:
        return {
            "layers": [{"kind": type(layer).__name__.lower(), **asdict(layer)} for layer in self.layers],
            "image_shape": list(self.image_shape),
            "norm": self.norm,
            "neuron": dict(vars(self.neuron)),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        layers = []
        for entry in data["layers"]:
            entry = dict(entry)
            kind = _KINDS.get(entry.pop("kind"))
            if kind is None:
                raise ConfigError(f"unknown layer kind in {data['layers']}")
            layers.append(kind(**entry))
        return cls(tuple(layers), tuple(data["image_shape"]), data["norm"], NeuronConfig(**data["neuron"]))

    @classmethod
    def from_blocks(cls, blocks: Sequence[torch.nn.Module], image_shape: Sequence[int]) -> ModelConfig:
        """Read the spec back from slayer blocks (e.g. a network written by hand).

        Every block must be a supported slayer CUBA block with one-step delay, no axonal
        delays, no weight norm, no graded spikes or persistent state, shared neuron
        parameters and a weight hook lava-qpsnn knows, all with the same neuron, and with
        channel counts that fit ``image_shape``; one-line errors name the block otherwise:
        anything the spec cannot hold would be lost when a checkpoint rebuilds the network.
        """
        from lava.lib.dl import slayer

        cuba = slayer.block.cuba
        layers: list[LayerSpec] = []
        neurons, has_norm = set(), []
        for i, block in enumerate(blocks):
            kind = type(block)
            if kind is cuba.Flatten:
                layers.append(Flatten())
                continue
            if kind not in (cuba.Conv, cuba.Pool, cuba.Dense):
                raise ConfigError(
                    f"blocks.{i} is {kind.__module__}.{kind.__name__}: lava-qpsnn supports "
                    "slayer.block.cuba.Conv, Pool, Dense and Flatten"
                )
            if block.delay is not None or not block.delay_shift or block.count_log:
                raise ConfigError(
                    f"blocks.{i} ({kind.__name__}) has axonal delays, no delay_shift or count_log: "
                    "build it with delay=False, delay_shift=True, count_log=False"
                )
            synapse = block.synapse
            _check_square(i, synapse)
            _check_rebuildable(i, block)
            if kind is cuba.Pool:
                if synapse.stride[0] != synapse.kernel_size[0] or synapse.padding[0] or synapse.dilation[0] != 1:
                    raise ConfigError(f"blocks.{i} pools with overlap, padding or dilation: use stride == kernel only")
                layers.append(Pool(synapse.kernel_size[0]))
                neurons.add(_neuron_of(block.neuron))
                continue
            if kind is cuba.Conv:
                layers.append(
                    Conv(
                        synapse.out_channels,
                        synapse.kernel_size[0],
                        synapse.stride[0],
                        synapse.padding[0],
                        synapse.dilation[0],
                        synapse.groups,
                    )
                )
            else:
                layers.append(Dense(synapse.out_channels))
            norm = block.neuron.norm
            if norm is not None and not isinstance(norm, BatchNorm):
                raise ConfigError(
                    f"blocks.{i} uses neuron norm {type(norm).__name__}: use lava_qpsnn.training.norm.BatchNorm "
                    "(it folds into Loihi's weights and bias)"
                )
            has_norm.append(norm is not None)
            neurons.add(_neuron_of(block.neuron))
        if len(neurons) > 1:
            raise ConfigError(f"the blocks have different neuron parameters {sorted(neurons)}: use one for all")
        if any(has_norm) and has_norm != [True] * (len(has_norm) - 1) + [False]:
            raise ConfigError(
                "BatchNorm must be on every conv and dense block but the last (the output), or on none; "
                f"found it on blocks {[i for i, n in enumerate(has_norm) if n]} of the weight layers"
            )
        neuron = NeuronConfig(*next(iter(neurons))) if neurons else NeuronConfig()
        config = cls(tuple(layers), tuple(image_shape), "bn" if any(has_norm) else "none", neuron)
        _check_channels(blocks, config)
        return config


def _check_rebuildable(index: int, block: torch.nn.Module) -> None:
    """One-line error for block settings a :class:`ModelConfig` cannot record."""
    from .norm import FoldedWeights
    from .prune import MaskedWeights
    from .quantize import IntegerWeights, WeightQuantizer

    neuron, synapse = block.neuron, block.synapse
    where = f"blocks.{index} ({type(block).__name__})"
    if synapse.weight_norm_enabled or neuron.graded_spike or neuron.persistent_state or not neuron.shared_param:
        raise ConfigError(
            f"{where} uses weight norm, graded spikes, persistent state or per-neuron parameters: "
            "lava-qpsnn networks use none of them"
        )
    norm = neuron.norm
    if isinstance(norm, BatchNorm) and (norm.eps, norm.momentum) != (1e-5, 0.1):
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


def _neuron_of(neuron: torch.nn.Module) -> tuple[float, ...]:
    return (
        float(neuron.threshold),
        float(neuron.current_decay[0]) / neuron.p_scale,
        float(neuron.voltage_decay[0]) / neuron.p_scale,
        float(neuron.tau_rho / neuron.threshold),
        float(neuron.scale_rho),
    )


def _check_square(index: int, synapse: torch.nn.Module) -> None:
    for name in ("kernel_size", "stride", "padding", "dilation"):
        value = getattr(synapse, name)
        if value[0] != value[1]:
            raise ConfigError(f"blocks.{index} has a non-square {name} {tuple(value[:2])}: use equal height and width")


def _width(layer: Conv | Dense) -> int:
    return layer.channels if isinstance(layer, Conv) else layer.features


def _output_shape(index: int, layer: LayerSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    where = f"layer {index + 1} ({type(layer).__name__.lower()})"
    if isinstance(layer, Dense):
        if len(shape) != 1:
            raise ConfigError(f"{where} gets a {'x'.join(map(str, shape))} input: flatten it first")
        return (layer.features,)
    if isinstance(layer, Flatten):
        return (math.prod(shape),)
    if len(shape) != 3:
        raise ConfigError(
            f"{where} needs a C x H x W input, got {'x'.join(map(str, shape))}: put it before dense layers"
        )
    channels, height, width = shape
    if isinstance(layer, Pool):
        if height % layer.kernel or width % layer.kernel:
            raise ConfigError(
                f"{where}: {height}x{width} is not divisible by the pooling size {layer.kernel}: "
                "change the size or the layers before it"
            )
        return (channels, height // layer.kernel, width // layer.kernel)
    if channels % layer.groups or layer.channels % layer.groups:
        raise ConfigError(
            f"{where}: {channels} -> {layer.channels} channels are not divisible by {layer.groups} groups"
        )
    span = layer.dilation * (layer.kernel - 1) + 1
    sizes = [(n + 2 * layer.padding - span) // layer.stride + 1 for n in (height, width)]
    if min(sizes) < 1:
        raise ConfigError(f"{where}: kernel {layer.kernel} does not fit a {height}x{width} input")
    return (layer.channels, *sizes)


class SpikingNet(torch.nn.Module):
    """A feed-forward stack of slayer CUBA blocks described by a :class:`ModelConfig` (see :func:`build_model`)."""

    def __init__(self, config: ModelConfig, blocks: list[torch.nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.blocks = torch.nn.ModuleList(blocks)
        prepare_network(self, config.image_shape)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Map input spikes ``NCHWT`` to output spikes ``N x classes x T``."""
        x = spikes.reshape(spikes.shape[0], *self.config.input_shape, spikes.shape[-1])
        for block in self.blocks:
            x = block(x)
        return x


def weight_blocks(net: torch.nn.Module) -> list[torch.nn.Module]:
    """The conv and dense blocks of ``net`` (the layers with trained weights), in order."""
    from lava.lib.dl import slayer

    return [b for b in net.blocks if isinstance(b, slayer.block.cuba.Conv | slayer.block.cuba.Dense)]


@torch.no_grad()
def prepare_network(net: torch.nn.Module, image_shape: Sequence[int]) -> torch.nn.Module:
    """Make a module with slayer ``blocks`` ready for lava-qpsnn (in place; returns it).

    Checks the blocks (:meth:`ModelConfig.from_blocks`), tells each :class:`~lava_qpsnn.training.norm.BatchNorm`
    its latency and folds it into its synapse's weights, gives the CUBA neurons the fused CPU
    dynamics (:func:`~lava_qpsnn.training.dynamics.use_fused_dynamics`: bit-identical to
    slayer's, several times faster), and runs one empty step so slayer learns the neuron and
    flatten shapes that export needs.
    """
    from .dynamics import use_fused_dynamics
    from .norm import FoldedWeights

    config = ModelConfig.from_blocks(net.blocks, image_shape)
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
    """Build the slayer network described by ``config`` (weights freshly initialised)."""
    from lava.lib.dl import slayer

    cuba = slayer.block.cuba
    neuron = config.neuron.slayer_params()
    blocks: list[torch.nn.Module] = []
    shape = config.input_shape
    last = len(config.layers) - 1
    for i, layer in enumerate(config.layers):
        params = dict(neuron)
        if config.norm == "bn" and isinstance(layer, Conv | Dense) and i != last:
            params["norm"] = functools.partial(BatchNorm, _width(layer))
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
                )
            )
        elif isinstance(layer, Pool):
            blocks.append(cuba.Pool(params, layer.kernel, weight_scale=POOL_WEIGHT * config.neuron.threshold))
        elif isinstance(layer, Dense):
            blocks.append(cuba.Dense(params, shape[0], layer.features, weight_scale=2))
        else:
            blocks.append(cuba.Flatten())
        shape = _output_shape(i, layer, shape)
    return SpikingNet(config, blocks)
