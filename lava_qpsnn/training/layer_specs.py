"""The layers of a spiking network as plain data: conv, pooling, dense, flatten, and the CUBA neuron.

Each spiking layer may carry its own neuron and (conv and dense layers) BatchNorm; ``None`` means
the model's default (:class:`~lava_qpsnn.training.specs.ModelConfig`). It may also carry learnable
axonal delays on its output spikes (``delay``). A layer is stored in the checkpoint as a dict
(:func:`layer_dict`) that names these fields only when they are set, so a network with one neuron
for all and no delays is written as it always was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import ConfigError

__all__ = [
    "NeuronConfig",
    "Conv",
    "Pool",
    "Dense",
    "Flatten",
    "LayerSpec",
    "KINDS",
    "NORMS",
    "layer_width",
    "output_shape",
    "layer_dict",
    "layer_of_dict",
]

NORMS = ("none", "bn")  # of a model; a layer's own is "bn", "bias" (a plain learnable bias, lava_qpsnn.Bias) or None
LAYER_NORMS = (None, "bn", "bias")


@dataclass(frozen=True)
class NeuronConfig:
    """CUBA LIF parameters in slayer's units.

    The defaults are the QP-SNN neuron: no current state (``current_decay=1``), membrane
    leak 0.5, threshold 1.0, hard reset to 0. netx maps them to Lava's LIF as
    ``du=4095, dv=2048, vth=64``. ``tau_grad`` and ``scale_grad`` shape slayer's surrogate
    gradient (width ``100 * tau_grad * threshold``): slayer's ``tau_grad=1`` is nearly flat
    over the voltages seen; 0.003 was chosen on a validation split
    (``benchmarks/results/recipe.md``). They only affect training. ``requires_grad`` makes
    the decays learnable, as slayer's own parameter of that name: they are trained with the
    weights, stored with them, and exported at their trained values.
    """

    threshold: float = 1.0
    current_decay: float = 1.0
    voltage_decay: float = 0.5
    tau_grad: float = 0.003
    scale_grad: float = 1.0
    requires_grad: bool = False

    def __post_init__(self) -> None:
        for name in ("threshold", "tau_grad", "scale_grad"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ConfigError(f"neuron {name} must be a finite number > 0, got {value}")
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"neuron {name} must be in [0, 1], got {value}")
        if not isinstance(self.requires_grad, bool):
            raise ConfigError(f"neuron requires_grad must be True or False, got {self.requires_grad!r}")

    def slayer_params(self) -> dict:
        """Keyword arguments for slayer's ``block.cuba`` constructors."""
        return dict(vars(self))

    def to_dict(self) -> dict:
        """Its fields; ``requires_grad`` only when set, so files of networks with fixed decays stay as they were."""
        data = dict(vars(self))
        if not self.requires_grad:
            del data["requires_grad"]
        return data


def _check_own(layer: Conv | Pool | Dense) -> None:
    """A layer's own neuron is a :class:`NeuronConfig` or None; its own norm ``"bn"``, ``"bias"`` or None; its delay
    a bool."""
    if layer.neuron is not None and not isinstance(layer.neuron, NeuronConfig):
        raise ConfigError(f"a layer's neuron must be a NeuronConfig or None, got {type(layer.neuron).__name__}")
    if getattr(layer, "norm", None) not in LAYER_NORMS:
        raise ConfigError(
            f"a layer's norm is 'bn', 'bias' or None (the model's), got {layer.norm!r}: for BatchNorm on some layers "
            "only, give the model norm 'none' and norm='bn' to those layers"
        )
    if not isinstance(layer.delay, bool):
        raise ConfigError(f"a layer's delay is True or False, got {layer.delay!r}")


@dataclass(frozen=True)
class Conv:
    """``NcK[sS][gG]``: a spiking conv layer, ``padding`` default ``kernel // 2`` (the same size at stride 1, odd K).

    ``neuron`` and ``norm`` (``"bn"``, or ``"bias"``: a plain learnable bias): this layer's own, None for the
    model's; ``delay``: learnable
    axonal delays on its output spikes, one per channel (slayer's ``delay=True``).
    """

    channels: int
    kernel: int = 3
    stride: int = 1
    padding: int | None = None
    dilation: int = 1
    groups: int = 1
    neuron: NeuronConfig | None = None
    norm: str | None = None
    delay: bool = False

    def __post_init__(self) -> None:
        if self.padding is None:
            object.__setattr__(self, "padding", self.dilation * (self.kernel - 1) // 2)
        if min(self.channels, self.kernel, self.stride, self.dilation, self.groups) < 1 or self.padding < 0:
            raise ConfigError(f"conv layer {self} needs positive sizes and padding >= 0")
        _check_own(self)


@dataclass(frozen=True)
class Pool:
    """``pK``: spike max-pooling over non-overlapping K x K windows (a spiking layer, as in slayer); own ``neuron``
    or None (the model's); ``delay``: axonal delays on its output, one per channel. No BatchNorm: pooling acts on
    spikes with one constant weight."""

    kernel: int
    neuron: NeuronConfig | None = None
    delay: bool = False

    def __post_init__(self) -> None:
        if self.kernel < 1:
            raise ConfigError(f"pooling kernel must be >= 1, got {self.kernel}")
        _check_own(self)


@dataclass(frozen=True)
class Dense:
    """``N``: a spiking dense layer of N neurons (the last one is the output: one neuron per class).

    ``neuron`` and ``norm`` (``"bn"``, or ``"bias"``: a plain learnable bias): this layer's own, None for the
    model's; ``delay``: learnable
    axonal delays on its output spikes, one per neuron (slayer's ``delay=True``).
    """

    features: int
    neuron: NeuronConfig | None = None
    norm: str | None = None
    delay: bool = False

    def __post_init__(self) -> None:
        if self.features < 1:
            raise ConfigError(f"dense layer width must be >= 1, got {self.features}")
        _check_own(self)


@dataclass(frozen=True)
class Flatten:
    """C x H x W -> C*H*W features (C order); inserted before the first dense layer after a conv or pool."""


LayerSpec = Conv | Pool | Dense | Flatten
KINDS = {"conv": Conv, "pool": Pool, "dense": Dense, "flatten": Flatten}
OWN_FIELDS = ("neuron", "norm", "delay")  # written only when set: absent from every file of a network without them


def layer_dict(layer: LayerSpec) -> dict:
    """``layer`` as plain data for the checkpoint: its kind and fields, its own neuron and norm only when set."""
    data = {"kind": type(layer).__name__.lower()}
    for f in fields(layer):
        value = getattr(layer, f.name)
        if f.name in OWN_FIELDS and value in (None, False):
            continue
        data[f.name] = value.to_dict() if isinstance(value, NeuronConfig) else value
    return data


def layer_of_dict(data: dict) -> LayerSpec:
    """The layer :func:`layer_dict` wrote."""
    entry = dict(data)
    kind = KINDS.get(entry.pop("kind", None))
    if kind is None:
        raise ConfigError(f"unknown layer kind in {data}: expected one of {', '.join(KINDS)}")
    if entry.get("neuron") is not None:
        entry["neuron"] = NeuronConfig(**entry["neuron"])
    return kind(**entry)


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
