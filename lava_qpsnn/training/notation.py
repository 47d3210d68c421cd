"""The layer-spec notation SNN papers use, ``16c3-p2-32c3s2-128-10``, with per-layer BatchNorm, delays and threshold.

A token is a layer: ``NcK[sS][gG]`` a conv, ``pK`` pooling, ``N`` dense. A conv or dense token
may end in ``bn`` (BatchNorm on that layer: ``16c3bn``), any of them in ``d`` (learnable axonal
delays on its output spikes, for a layer that feeds a dense layer: ``128bnd``) and in ``tX`` (that
layer's threshold, X in the same units as the neuron's: ``p2t0.5``, ``128bndt1.5``). Everything else a layer's
neuron may differ in (decays, surrogate gradient) is set in Python
(:class:`~lava_qpsnn.training.layer_specs.Conv`'s ``neuron``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..errors import ConfigError
from .layer_specs import Conv, Dense, Flatten, LayerSpec, NeuronConfig, Pool

__all__ = ["parse_arch", "format_arch", "PRESETS"]

PRESETS = {
    "mlp": "128-{classes}",
    "conv": "8c3-16c3s2-{classes}",
}
_TOKEN = re.compile(
    r"(?:(?P<channels>\d+)c(?P<kernel>\d+)(?:s(?P<stride>\d+))?(?:g(?P<groups>\d+))?|p(?P<pool>\d+)|(?P<dense>\d+))"
    r"(?P<bn>bn)?(?P<delay>d)?(?:t(?P<threshold>\d+(?:\.\d+)?))?"
)


def parse_arch(text: str, num_classes: int | None = None, neuron: NeuronConfig | None = None) -> tuple[LayerSpec, ...]:
    """Layers of a spec like ``16c3bn-p2-32c3s2-128dt0.5-10`` (or a preset name: ``mlp``, ``conv``).

    ``NcK`` conv (N channels, kernel K; optional ``sS`` stride, ``gG`` groups), ``pK``
    pooling, a bare number a dense layer; a ``bn`` suffix puts BatchNorm on a conv or dense layer,
    ``d`` learnable axonal delays on a layer's output spikes,
    ``tX`` gives a layer ``neuron`` (the model's, default :class:`NeuronConfig`) with threshold X.
    A flatten is inserted before the first dense layer that follows a conv or pooling layer.
    Presets take ``num_classes`` as their output width.
    """
    neuron = neuron or NeuronConfig()
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
                f"each optionally ending in bn (BatchNorm), d (axonal delays) and tX (threshold X), joined by '-', "
                f"e.g. 16c3bn-p2-32c3-p2-128dt0.5-10, or a preset ({', '.join(PRESETS)})"
            )
        g = match.groupdict()
        own = {}
        if g["threshold"] is not None and float(g["threshold"]) != neuron.threshold:
            own["neuron"] = replace(neuron, threshold=float(g["threshold"]))
        if g["bn"]:
            if g["pool"] is not None:
                raise ConfigError(f"bad layer {token!r}: pooling acts on spikes and takes no BatchNorm: drop its bn")
            own["norm"] = "bn"
        if g["delay"]:
            own["delay"] = True
        if g["dense"] is not None:
            if layers and isinstance(layers[-1], Conv | Pool):
                layers.append(Flatten())
            layers.append(Dense(int(g["dense"]), **own))
        elif g["pool"] is not None:
            layers.append(Pool(int(g["pool"]), **own))
        else:
            size = (int(g["channels"]), int(g["kernel"]), int(g["stride"] or 1))
            layers.append(Conv(*size, groups=int(g["groups"] or 1), **own))
    return tuple(layers)


def format_arch(layers: Sequence[LayerSpec], neuron: NeuronConfig | None = None) -> str:
    """The spec string of ``layers`` (inverse of :func:`parse_arch` with the same ``neuron``).

    A layer's own neuron is written as its threshold; differences in anything else (decays, a plain
    ``"bias"`` norm) have no notation and are left out.
    """
    neuron = neuron or NeuronConfig()
    tokens = []
    for layer in layers:
        if isinstance(layer, Conv):
            extra = (f"s{layer.stride}" if layer.stride > 1 else "") + (f"g{layer.groups}" if layer.groups > 1 else "")
            token = f"{layer.channels}c{layer.kernel}{extra}"
        elif isinstance(layer, Pool):
            token = f"p{layer.kernel}"
        elif isinstance(layer, Dense):
            token = str(layer.features)
        else:
            continue
        if getattr(layer, "norm", None) == "bn":
            token += "bn"
        if layer.delay:
            token += "d"
        if layer.neuron is not None and layer.neuron.threshold != neuron.threshold:
            token += f"t{np.format_float_positional(layer.neuron.threshold, trim='-')}"
        tokens.append(token)
    return "-".join(tokens)
