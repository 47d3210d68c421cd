"""Spiking networks as layer specs: the notation SNN papers use, the geometry, the neurons.

A :class:`ModelConfig` is a sequence of layers (:class:`Conv`, :class:`Pool`,
:class:`Dense`, :class:`Flatten`, from :mod:`~lava_qpsnn.training.layer_specs`), written in the
notation SNN papers use (:func:`parse_arch`, e.g. ``16c3-p2-32c3-p2-128-10``), with BatchNorm
(:mod:`lava_qpsnn.training.norm`) on every spiking layer but the output, on some of them, or on none,
and a CUBA neuron per layer (one for all by default). It is plain data: the checkpoint stores it,
:func:`lava_qpsnn.training.models.build_model` makes the slayer network of it,
:func:`lava_qpsnn.training.slayer_blocks.config_of_blocks` reads it back from a hand-written one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..errors import ConfigError
from .layer_specs import (
    KINDS,
    NORMS,
    Conv,
    Dense,
    Flatten,
    LayerSpec,
    NeuronConfig,
    Pool,
    layer_dict,
    layer_of_dict,
    layer_width,
    output_shape,
)
from .notation import PRESETS, format_arch, parse_arch

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
    "KINDS",
]


@dataclass(frozen=True)
class ModelConfig:
    """A feed-forward spiking network: its layers, input shape, normalization and neurons.

    Attributes
    ----------
    layers : the layers in order; the last must be :class:`Dense` (the classes). A layer's own
        ``neuron`` and ``norm`` (``"bn"``, or ``"bias"``: a plain learnable bias) override the model's defaults
        below; a layer with ``delay``
        must feed a dense layer (its delays are stored on that layer's synapses).
    image_shape : ``(C, H, W)`` of the data
    norm : ``"bn"`` (BatchNorm on every conv and hidden dense layer) or ``"none"``
    neuron : the CUBA neuron of every layer without its own

    One network has one config: a layer's neuron equal to the model's is dropped, and BatchNorm
    on every conv and hidden dense layer is written ``norm="bn"`` (layers keep ``"bn"`` only
    beyond it), so a uniform network's config, and checkpoint, is the same however it was said.
    :meth:`neuron_at` and :meth:`norm_at` give each layer's resolved settings.
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
            raise ConfigError(
                f"the last layer must be dense (one neuron per class), got {format_arch(self.layers, self.neuron)!r}"
            )
        self.shapes  # noqa: B018  (validates the geometry)
        self._check_delays()
        self._canonicalize()

    def _check_delays(self) -> None:
        """Axonal delays only where netx can store them: on the synapses of the dense layer they feed."""
        for i, layer in enumerate(self.layers):
            if not getattr(layer, "delay", False):
                continue
            after = next((x for x in self.layers[i + 1 :] if not isinstance(x, Flatten)), None)
            if isinstance(after, Dense):
                continue
            position = sum(not isinstance(x, Flatten) for x in self.layers[: i + 1])
            name = f"layer {position} ({format_arch([layer], self.neuron)})"
            if after is None:
                problem = "is the output layer, whose spikes leave the network with no synapse after it to delay them"
            else:
                kind = "conv" if isinstance(after, Conv) else "pooling"
                problem = f"feeds a {kind} layer, and netx stores no delays on conv or pooling synapses"
            raise ConfigError(
                f"{name} has axonal delays but {problem}: put delays only on layers that feed a dense layer",
                settings=("arch",),
            )

    def _hidden(self, index: int) -> bool:
        """Whether layer ``index`` is a conv or dense layer other than the output."""
        return isinstance(self.layers[index], Conv | Dense) and index != len(self.layers) - 1

    def _canonicalize(self) -> None:
        """Drop per-layer settings equal to the model's, and say BatchNorm on every hidden layer as ``norm="bn"``."""
        norms = [self.norm_at(i) for i in range(len(self.layers))]
        hidden = [i for i in range(len(self.layers)) if self._hidden(i)]
        if hidden and all(norms[i] == "bn" for i in hidden):
            object.__setattr__(self, "norm", "bn")
        elif hidden:
            object.__setattr__(self, "norm", "none")
        layers = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Conv | Pool | Dense) and layer.neuron == self.neuron:
                layer = replace(layer, neuron=None)
            if isinstance(layer, Conv | Dense):
                by_default = self.norm == "bn" and self._hidden(i) and norms[i] == "bn"
                layer = replace(layer, norm=None if norms[i] == "none" or by_default else norms[i])
            layers.append(layer)
        object.__setattr__(self, "layers", tuple(layers))

    def neuron_at(self, index: int) -> NeuronConfig:
        """The neuron of layer ``index``: its own, else the model's."""
        return getattr(self.layers[index], "neuron", None) or self.neuron

    def norm_at(self, index: int) -> str:
        """``"bn"`` if layer ``index`` has BatchNorm (its own, or the model's on a hidden layer), ``"bias"`` if it
        has a plain bias of its own, else ``"none"``."""
        own = getattr(self.layers[index], "norm", None)
        if own is not None:
            return own
        return "bn" if self.norm == "bn" and self._hidden(index) else "none"

    @classmethod
    def from_arch(cls, arch: str, image_shape: Sequence[int], num_classes: int, **kwargs) -> ModelConfig:
        """Config from a spec or preset (:func:`parse_arch`, its thresholds relative to the ``neuron`` given);
        the output width must be ``num_classes``."""
        config = cls(parse_arch(arch, num_classes, kwargs.get("neuron")), tuple(image_shape), **kwargs)
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
        """The same network with new conv/dense widths (the output layer's must stay).

        A depthwise conv (as many groups as input channels) keeps one group per input channel.
        """
        widths = [int(w) for w in widths]
        if len(widths) != len(self.widths) or widths[-1] != self.num_classes or min(widths) < 1:
            raise ConfigError(
                f"widths {widths} do not fit {len(self.widths)} conv/dense layers ending in {self.num_classes} classes"
            )
        widths = iter(widths)
        layers = []
        inputs = new_inputs = self.image_shape[0]  # the next conv's input channels, before and after
        for layer in self.layers:
            if isinstance(layer, Conv):
                groups = new_inputs if layer.groups == inputs else layer.groups  # depthwise: one group per input
                inputs, new_inputs = layer.channels, next(widths)
                layer = replace(layer, channels=new_inputs, groups=groups)
            elif isinstance(layer, Dense):
                layer = replace(layer, features=next(widths))
            layers.append(layer)
        return replace(self, layers=tuple(layers))

    def to_dict(self) -> dict:
        return {
            "layers": [layer_dict(layer) for layer in self.layers],
            "image_shape": list(self.image_shape),
            "norm": self.norm,
            "neuron": self.neuron.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        layers = tuple(layer_of_dict(entry) for entry in data["layers"])
        return cls(layers, tuple(data["image_shape"]), data["norm"], NeuronConfig(**data["neuron"]))
