"""QP-SNN weight quantization for slayer synapses: the settings, and attaching the quantizers.

Training (quantization-aware): a :class:`WeightQuantizer` is attached to each synapse as
slayer's ``pre_hook_fx``, so the network stays a normal slayer network. It maps the latent
float weight ``W`` to ``gamma * m / S`` with integer levels ``m`` and a straight-through
gradient (zero where ``|W / gamma| > 1``):

- ``baseline`` (QP-SNN Eqs 4-6): ``gamma = 1``, the fixed range [-1, 1].
- ``rescaw`` (Eqs 9-10): ``gamma`` = mean ``|W|`` of the layer (the paper's), ``max`` or a
  percentile, detached; by default mean up to 2 bits and max from 3 bits on (see
  :func:`default_gamma`). One gamma per layer, the paper's definition: per-channel scales cannot
  be folded into Lava's one threshold per layer.

The grid (``QuantConfig.grid``), chosen per network:

- ``"zero-free"``, the paper's: ``m`` odd in ``[-S, S]`` with ``S = 2^b - 1`` (2 bits:
  -3, -1, 1, 3; 1 bit: -1, 1, a binary net with a scale). As signed integers on Loihi it
  takes ``b + 1`` bits. At 8 bits it would take 9, which Loihi's 8-bit synapses cannot
  hold, so **zero-free at 8 bits is the symmetric grid** (the meaning of every 8-bit
  checkpoint).
- ``"symmetric"``: ``m`` in ``[-S, S]`` with ``S = 2^(b-1) - 1``, zero included (2 bits:
  the ternary -1, 0, 1; 8 bits: -127..127). It takes exactly ``b`` signed bits on Loihi,
  one fewer than the zero-free grid, and needs ``b >= 2``.

The default is the symmetric grid from 2 bits on and zero-free at 1 bit, where it is the
only grid (chosen by validation accuracy, see ``benchmarks/results/recipe.md``).

With BatchNorm (:mod:`lava_qpsnn.training.norm`) the quantizer sees the folded weights ``W * s`` and
the bias is scaled like the weights.

The integer network a quantized network deploys as is made by
:func:`lava_qpsnn.export.fixed_point.to_fixed_point`; :func:`layer_scales` stores the one
reduction it needs (ReScaW's gamma) with the checkpoint, so every machine exports the same
integers. The hooks themselves live in :mod:`lava_qpsnn.training.hooks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .hooks import (
    GRIDS,
    WeightQuantizer,
    check_bits,
    check_grid,
    core_hook,
    default_grid,
    folded_weight,
    set_core_hook,
)
from .models import weight_blocks

__all__ = [
    "QuantConfig",
    "quantize_model",
    "quant_config_of",
    "layer_scales",
    "synapse_bits",
    "default_gamma",
    "QUANTIZERS",
    "GAMMAS",
    "GRIDS",
]

QUANTIZERS = ("baseline", "rescaw")
GAMMAS = ("mean", "max", "percentile")


def default_gamma(bits: int) -> str:
    """ReScaW's scale when none is given: mean |W| up to 2 bits, max |W| from 3 bits on.

    With few levels, clipping the large weights to mean |W| buys resolution where most
    weights are; with 7 or more levels per side there is resolution to spare, and clipping
    costs more than it gains.
    """
    return "mean" if bits <= 2 else "max"


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize a network's weights.

    Attributes
    ----------
    bits : weight bits of the hidden layers, 1..8
    quantizer : ``"baseline"`` or ``"rescaw"``
    first_last_bits : bits of the first and last conv/dense layers (8: the paper keeps them in
        float, which Loihi cannot hold), or
        None to quantize them with ``bits`` too
    gamma : ReScaW scale: ``"mean"`` (the paper's best), ``"max"``, ``"percentile"``; None
        picks :func:`default_gamma` of ``bits`` (and is recorded as that name)
    percentile : the percentile of ``|W|`` used when ``gamma="percentile"``
    grid : ``"symmetric"`` or ``"zero-free"`` (see the module docstring), for every layer;
        None picks :func:`default_grid` of ``bits`` (and is recorded as that name)
    """

    bits: int
    quantizer: str = "rescaw"
    first_last_bits: int | None = 8
    gamma: str | None = None
    percentile: float = 99.0
    grid: str | None = None

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.first_last_bits is not None:
            check_bits(self.first_last_bits, "first_last_bits")
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"unknown quantizer {self.quantizer!r}: choose one of {', '.join(QUANTIZERS)}")
        if self.gamma is None:
            object.__setattr__(self, "gamma", default_gamma(self.bits))
        if self.gamma not in GAMMAS:
            raise ConfigError(f"unknown gamma {self.gamma!r}: choose one of {', '.join(GAMMAS)}")
        if not 0 < self.percentile <= 100:
            raise ConfigError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.grid is None:
            object.__setattr__(self, "grid", default_grid(self.bits))
        for bits in {self.bits, self.first_last_bits or self.bits}:
            check_grid(bits, self.grid)

    def layer_bits(self, index: int, count: int) -> int:
        """Bits of conv/dense layer ``index`` of ``count``."""
        if self.first_last_bits is not None and index in (0, count - 1):
            return self.first_last_bits
        return self.bits

    def to_dict(self) -> dict:
        return dict(vars(self))

    def differences(self, other: QuantConfig, layers: int) -> list[str]:
        """What differs between two configs in effect on a network of ``layers`` weight layers."""
        out = []
        mine, theirs = (
            [self.layer_bits(i, layers) for i in range(layers)],
            [other.layer_bits(i, layers) for i in range(layers)],
        )
        if mine != theirs:
            out.append(f"bits per layer {mine} vs {theirs}")
        if self.quantizer != other.quantizer:
            out.append(f"quantizer {self.quantizer} vs {other.quantizer}")
        if self.quantizer == "rescaw" and (self.gamma, self.percentile) != (other.gamma, other.percentile):
            out.append(f"gamma {self.gamma} vs {other.gamma}")
        if self.grid != other.grid:
            out.append(f"grid {self.grid} vs {other.grid}")
        return out


def synapse_bits(net: torch.nn.Module) -> list[int | None]:
    """Weight bits of each conv and dense layer (None: not quantized by lava-qpsnn)."""
    return [getattr(core_hook(b.synapse), "bits", None) for b in weight_blocks(net)]


def quantize_model(net: torch.nn.Module, config: QuantConfig) -> torch.nn.Module:
    """Attach a :class:`WeightQuantizer` to every conv and dense synapse of ``net`` (in place); return ``net``.

    ``net`` is any module whose ``blocks`` are slayer blocks; pooling layers keep their fixed weights.
    """
    blocks = weight_blocks(net)
    for i, block in enumerate(blocks):
        bits = config.layer_bits(i, len(blocks))
        hook = WeightQuantizer(bits, config.quantizer, config.gamma, config.percentile, config.grid)
        set_core_hook(block.synapse, hook)
    return net


def quant_config_of(net: torch.nn.Module) -> QuantConfig | None:
    """The :class:`QuantConfig` that ``net``'s hooks implement (None: not quantized), read from the hooks."""
    hooks = [core_hook(b.synapse) for b in weight_blocks(net)]
    quantizers = [h for h in hooks if isinstance(h, WeightQuantizer)]
    if not quantizers:
        return None
    kinds = {(h.quantizer, h.gamma_kind, h.percentile, h.grid) for h in quantizers}
    if len(quantizers) != len(hooks) or len(kinds) > 1:
        raise ConfigError(
            "quantize every conv and dense layer with one quantize_model() call: found a mix of "
            f"{len(quantizers)} lava-qpsnn quantizers {sorted(kinds)} among {len(hooks)} layers"
        )
    bits = [h.bits for h in quantizers]
    quantizer, gamma, percentile, grid = kinds.pop()
    inner = bits[1:-1] or bits[:1]
    if len(set(inner)) > 1 or bits[0] != bits[-1]:
        raise ConfigError(f"layer bits {bits} are not one width with equal first and last: use quantize_model()")
    first_last = None if bits[0] == inner[0] else bits[0]
    return QuantConfig(inner[0], quantizer, first_last, gamma, percentile, grid)


@torch.no_grad()
def layer_scales(net: torch.nn.Module) -> list[float | None]:
    """Each conv/dense layer's quantizer scale ``gamma`` now (None where not quantized), to store."""
    out: list[float | None] = []
    for block in weight_blocks(net):
        hook = core_hook(block.synapse)
        out.append(float(hook.gamma(folded_weight(block.synapse))) if isinstance(hook, WeightQuantizer) else None)
    return out
