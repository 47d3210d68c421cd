"""Spiking networks as layer specs: the notation SNN papers use, the geometry, the neuron.

A :class:`ModelConfig` is a sequence of layers (:class:`Conv`, :class:`Pool`,
:class:`Dense`, :class:`Flatten`), written in the notation SNN papers use
(:func:`parse_arch`, e.g. ``16c3-p2-32c3-p2-128-10``), with optional BatchNorm
(:mod:`lava_qpsnn.training.norm`) on every spiking layer but the output, and the CUBA neuron.
It is plain data: the checkpoint stores it, :func:`lava_qpsnn.training.models.build_model`
makes the slayer network of it, :func:`lava_qpsnn.training.slayer_blocks.config_of_blocks`
reads it back from a hand-written one.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from ..errors import ConfigError

__all__ = [
    "NeuronConfig",
    "Conv",
    "Pool",
    "Dense",
    "Flatten",
    "LayerSpec",
    "ModelConfig",
    "parse_arch",
    "format_arch",
    "layer_width",
    "output_shape",
    "PRESETS",
    "NORMS",
]

NORMS = ("none", "bn")


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
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape):
            raise ConfigError(f"image_shape must be (C, H, W), three integers; got {shape}")
        object.__setattr__(self, "image_shape", tuple(int(s) for s in shape))
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
            shape = output_shape(i, layer, shape)
            out.append(shape)
        return out

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels / neurons of every conv and dense layer, in order."""
        return tuple(layer_width(layer) for layer in self.layers if isinstance(layer, Conv | Dense))

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


def layer_width(layer: Conv | Dense) -> int:
    return layer.channels if isinstance(layer, Conv) else layer.features


def output_shape(index: int, layer: LayerSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
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
