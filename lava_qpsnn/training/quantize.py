"""QP-SNN weight quantization for slayer synapses, and the exact integer network it deploys as.

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

Deployment (:func:`to_fixed_point`): each quantized layer becomes integer weights
``n = m * 2^e`` (``e`` per bit width, the largest with ``|n| <= 254``; netx turns ``2^e``
into Lava's weight exponent) and the scale ``gamma / S`` moves into the threshold:
``vth = round(theta * 2^e * S / gamma)``, the bias likewise. With reset to zero, scaling weights,
bias and threshold together leaves spikes unchanged in exact arithmetic, so this is the trained
network up to the rounding of ``vth`` and the bias (relative error at most 1 / (2 vth)) and to slayer's
integer truncation of states happening at another scale. The same freedom keeps a layer inside
Lava's 24-bit state: given the window length, a layer whose worst case (:mod:`lava_qpsnn.export.limits`)
or bias would leave Lava's range at that ``e`` takes the largest smaller ``e`` under which both
fit, while ``theta * 2^e * S / gamma`` stays >= 1 (else it keeps ``e`` and the exporter
decides). The fixed-point accuracy is measured and reported beside the training model's. The
integer network is a slayer network too, and it is what runs in Lava, bit for bit
(:func:`~lava_qpsnn.lava.compat.match_lava_spike_test` makes slayer's spike test Lava's at
every threshold). The only reduction in the conversion, ReScaW's mean ``|W|``, is computed
once and stored with the checkpoint (:func:`layer_scales`), so the same checkpoint converts
to the same integers on every machine.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, ExportError
from ..export.limits import worst_case
from ..lava.compat import match_lava_spike_test
from .models import weight_blocks
from .norm import FoldedWeights, IntegerBias, folded_norm

__all__ = [
    "QuantConfig",
    "WeightQuantizer",
    "core_hook",
    "set_core_hook",
    "quant_config_of",
    "layer_scales",
    "IntegerWeights",
    "quantize_model",
    "synapse_bits",
    "to_fixed_point",
    "grid_max",
    "weight_exponent",
    "check_on_grid",
    "QUANTIZERS",
    "GAMMAS",
    "GRIDS",
]

QUANTIZERS = ("baseline", "rescaw")
GAMMAS = ("mean", "max", "percentile")
GRIDS = ("symmetric", "zero-free")
MAX_LOIHI_WEIGHT = 254  # netx keeps mixed-sign weights in [-256, 254]
MAX_LOIHI_VTH = (1 << 17) - 1  # Lava's LIF vth is an unsigned 17-bit mantissa
MAX_LOIHI_BIAS = (1 << 12) - 1  # Lava's bias_mant is a signed 13-bit integer


def _zero_free(bits: int, grid: str) -> bool:
    """Whether levels are odd (the zero-free grid below 8 bits)."""
    return grid == "zero-free" and bits < 8


def grid_max(bits: int, grid: str = "zero-free") -> int:
    """``S``: the largest integer level of the ``bits``-bit ``grid``."""
    return (1 << bits) - 1 if _zero_free(bits, grid) else (1 << (bits - 1)) - 1


def weight_exponent(bits: int, grid: str = "zero-free") -> int:
    """``e``: levels are stored as ``m * 2^e``, the largest with ``|m * 2^e| <= 254``."""
    return int(math.floor(math.log2(MAX_LOIHI_WEIGHT / grid_max(bits, grid))))


def default_grid(bits: int) -> str:
    """The grid ``QuantConfig`` uses when none is given: symmetric where it exists."""
    return "symmetric" if bits >= 2 else "zero-free"


def default_gamma(bits: int) -> str:
    """ReScaW's scale when none is given: mean |W| up to 2 bits, max |W| from 3 bits on.

    With few levels, clipping the large weights to mean |W| buys resolution where most
    weights are; with 7 or more levels per side there is resolution to spare, and clipping
    costs more than it gains.
    """
    return "mean" if bits <= 2 else "max"


def _check_grid(bits: int, grid: str) -> None:
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r}: choose one of {', '.join(GRIDS)}")
    if grid == "symmetric" and bits < 2:
        raise ConfigError(
            "the symmetric grid needs >= 2 bits (1 bit holds only 0): use the zero-free grid at 1 bit",
            settings=("grid",),
        )


def _check_bits(bits: int, setting: str = "bits") -> None:
    if not (isinstance(bits, int) and 1 <= bits <= 8):
        raise ConfigError(
            f"{setting} must be an integer in 1..8 (Loihi 2 synapses hold up to 8 bits), got {bits}",
            settings=(setting,),
        )


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
        _check_bits(self.bits)
        if self.first_last_bits is not None:
            _check_bits(self.first_last_bits, "first_last_bits")
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
            _check_grid(bits, self.grid)

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


class WeightQuantizer(torch.nn.Module):
    """slayer ``pre_hook_fx``: latent weight -> ``gamma * m / S`` with a straight-through gradient.

    ``hook(weight, descale=True)`` returns the integer weights ``m * 2^e`` (slayer's export
    convention); note that these need the threshold of :func:`to_fixed_point` to mean the same.
    """

    def __init__(
        self,
        bits: int,
        quantizer: str = "rescaw",
        gamma: str = "mean",
        percentile: float = 99.0,
        grid: str = "zero-free",
    ) -> None:
        super().__init__()
        _check_bits(bits)
        _check_grid(bits, grid)
        self.bits, self.quantizer, self.gamma_kind, self.percentile = bits, quantizer, gamma, percentile
        self.grid = grid
        # Structured-pruning mask (bool, weight-shaped; see lava_qpsnn.training.prune): pruned weights
        # become 0 (off the zero-free grid; Loihi sees no synapse at all) and gamma is taken
        # over kept weights only, so the masked layer quantizes exactly like its compacted twin.
        self.register_buffer("keep", None)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, quantizer={self.quantizer}, gamma={self.gamma_kind}, grid={self.grid}"

    def gamma(self, weight: torch.Tensor) -> torch.Tensor:
        """The layer's scale over its kept weights (detached; 1 for the baseline quantizer).

        The reduction runs over a 1-D tensor in C order either way (``w[keep]`` of a masked
        layer holds the same values in the same order as its compacted weight), so both give
        bit-identical gammas.
        """
        w = weight.detach().abs()
        w = w.reshape(-1) if self.keep is None else w[self.keep]
        if self.quantizer == "baseline":
            return torch.ones((), dtype=weight.dtype, device=weight.device)
        if self.gamma_kind == "mean":
            value = w.mean()
        elif self.gamma_kind == "max":
            value = w.max()
        else:
            value = torch.quantile(w.float(), self.percentile / 100).to(w.dtype)
        return value.clamp_min(torch.finfo(weight.dtype).tiny)

    def levels(self, weight: torch.Tensor, gamma: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer levels ``m`` (as floats) and the clipped normalised weight ``W / gamma``."""
        gamma = self.gamma(weight) if gamma is None else gamma
        clipped = (weight / gamma).clamp(-1.0, 1.0)
        scale = grid_max(self.bits, self.grid)
        if _zero_free(self.bits, self.grid):  # Eq 4: W_int = round(S/2 (W + 1)), level m = 2 W_int - S (odd)
            levels = 2 * torch.round(scale / 2 * (clipped + 1)) - scale
        else:
            levels = torch.round(scale * clipped)
        if self.keep is not None:
            levels = levels * self.keep
        return levels, clipped

    def forward(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        gamma = self.gamma(weight)
        levels, clipped = self.levels(weight, gamma)
        if descale:
            return levels.detach() * (1 << weight_exponent(self.bits, self.grid))
        quantized = clipped + (levels / grid_max(self.bits, self.grid) - clipped).detach()  # straight-through
        if self.keep is not None:
            quantized = quantized * self.keep  # no gradient into pruned weights
        return gamma * quantized


class IntegerWeights(torch.nn.Module):
    """``pre_hook_fx`` of a fixed-point network: weights are already ``n / w_scale``, ``n`` integer."""

    def __init__(self, bits: int | None, w_scale: int, grid: str = "zero-free", exponent: int | None = None) -> None:
        super().__init__()
        self.bits, self.w_scale, self.grid = bits, w_scale, grid  # bits None: slayer's 8-bit hook made the integers
        self.exponent = exponent  # levels are stored as m * 2^exponent (None: weight_exponent's)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, w_scale={self.w_scale}, grid={self.grid}, exponent={self.exponent}"

    def forward(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        return torch.round(weight * self.w_scale) if descale else weight


def core_hook(synapse: torch.nn.Module):
    """The synapse's own weight hook (quantizer or mask), under a BatchNorm fold if there is one."""
    hook = synapse.pre_hook_fx
    return hook.inner if isinstance(hook, FoldedWeights) else hook


def set_core_hook(synapse: torch.nn.Module, hook) -> None:
    """Install ``hook`` (a module, slayer's bound ``quantize_8bit`` or None) as the synapse's weight hook,
    keeping a BatchNorm fold around it.

    ``nn.Module.__setattr__`` registers a module value before slayer's ``pre_hook_fx``
    property setter could run, so the attribute the synapse's forward reads is set directly.
    """
    outer = synapse.pre_hook_fx
    owner, name = (outer, "inner") if isinstance(outer, FoldedWeights) else (synapse, "_pre_hook_fx")
    owner._modules.pop(name, None)  # a module slot refuses plain callables
    setattr(owner, name, hook)


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
        out.append(float(hook.gamma(_folded_weight(block))) if isinstance(hook, WeightQuantizer) else None)
    return out


def _folded_weight(block: torch.nn.Module) -> torch.Tensor:
    """The weight the core hook sees: the latent weight, times the BatchNorm scale if folded."""
    outer, weight = block.synapse.pre_hook_fx, block.synapse.weight
    return outer.fold(weight) if isinstance(outer, FoldedWeights) else weight


@torch.no_grad()
def to_fixed_point(
    net: torch.nn.Module, scales: list[float | None] | None = None, time_steps: int | None = None
) -> torch.nn.Module:
    """The integer network a quantization-aware ``net`` deploys as (a new network).

    Each quantized layer gets weights ``m * 2^e / w_scale`` and threshold ``vth / w_scale``
    (see the module docstring); a BatchNorm becomes folded integer weights and an integer
    bias; other layers are copied unchanged. ``scales`` are the layers' stored ReScaW
    scales (:func:`layer_scales`; default: computed now). ``time_steps``: the window length,
    which lets a layer take a smaller ``e`` to stay inside Lava's 24-bit state (None: the
    largest ``e`` always). ``net`` is not modified.
    """
    fixed = copy.deepcopy(net).eval()
    blocks = weight_blocks(fixed)
    scales = scales if scales is not None else [None] * len(blocks)
    if len(scales) != len(blocks):
        raise ConfigError(f"got {len(scales)} stored scales for {len(blocks)} conv/dense layers")
    for i, (block, scale) in enumerate(zip(blocks, scales, strict=True)):
        hook, norm = core_hook(block.synapse), folded_norm(i, block)
        if not isinstance(hook, WeightQuantizer) and norm is None:
            continue
        w_scale = block.neuron.w_scale
        weight = _folded_weight(block)
        if not torch.isfinite(weight).all():
            raise ExportError(
                f"weight layer {i} has NaN or infinite weights (training diverged): retrain with a lower learning rate",
                settings=("lr",),
            )
        if isinstance(hook, WeightQuantizer):
            stored = None if scale is None else torch.tensor(scale, dtype=weight.dtype, device=weight.device)
            gamma = hook.gamma(weight) if stored is None else stored
            levels, _ = hook.levels(weight, gamma)
            exponent = _fitting_exponent(block, hook, levels, float(gamma), norm, time_steps)
            step = 1 << exponent
            integers = levels * step
            gain = step * grid_max(hook.bits, hook.grid) / float(gamma)
            bits, grid = hook.bits, hook.grid
        else:  # BatchNorm without lava-qpsnn quantization: slayer's own hook makes the integers
            integers = hook(weight, descale=True) if hook is not None else torch.round(weight * w_scale)
            gain, bits, grid, exponent = float(w_scale), None, "symmetric", None
        if integers.max() > MAX_LOIHI_WEIGHT or integers.min() < -MAX_LOIHI_WEIGHT - 2:
            raise ExportError(
                f"weight layer {i}: integer weights reach {int(integers.abs().max())}, beyond Loihi's -256..254 "
                "(netx would clip them): quantize the network (QuantConfig)",
                settings=("bits",),
            )
        vth = round(block.neuron.threshold * gain)
        if not 1 <= vth <= MAX_LOIHI_VTH:
            raise ExportError(
                f"weight layer {i}: threshold {vth} after folding the weight scale is outside Loihi's "
                f"1..{MAX_LOIHI_VTH}; its weights are nearly all zero or huge: retrain with another quantizer",
                settings=("quantizer",),
            )
        block.synapse.weight.copy_(integers / w_scale)
        block.synapse._pre_hook_fx = IntegerWeights(bits, w_scale, grid, exponent)
        block.neuron._threshold = vth / w_scale
        if norm is not None:
            bias = torch.round(norm.bias() * gain)
            if bias.abs().max() > MAX_LOIHI_BIAS:
                raise ExportError(
                    f"weight layer {i}: BatchNorm bias reaches {int(bias.abs().max())} after scaling, beyond Loihi's "
                    f"13-bit {-MAX_LOIHI_BIAS - 1}..{MAX_LOIHI_BIAS}: retrain with fewer bits or without BatchNorm",
                    settings=("bits", "norm"),
                )
            block.neuron.norm = IntegerBias(bias, w_scale, norm.latency)
    for block in fixed.blocks:
        if hasattr(getattr(block, "neuron", None), "threshold_eps"):
            match_lava_spike_test(block.neuron)
    return fixed


def _fitting_exponent(
    block, hook: WeightQuantizer, levels: torch.Tensor, gamma: float, norm, time_steps: int | None
) -> int:
    """The weight exponent of a quantized layer: :func:`weight_exponent`'s, or the largest smaller one under
    which its worst-case state over ``time_steps`` steps and its bias fit Lava (see the module docstring)."""
    largest = weight_exponent(hook.bits, hook.grid)
    if time_steps is None:
        return largest
    neuron = block.neuron
    decays = int(neuron.cx_current_decay), int(neuron.cx_voltage_decay)
    for exponent in range(largest, -1, -1):
        gain = (1 << exponent) * grid_max(hook.bits, hook.grid) / gamma
        if neuron.threshold * gain < 1:  # vth would be 0 or 1: no resolution left
            break
        bias = np.zeros(1) if norm is None else torch.round(norm.bias() * gain).cpu().numpy()
        if np.abs(bias).max() <= MAX_LOIHI_BIAS:
            integers = levels.cpu().numpy().astype(np.int64) << exponent
            if worst_case(integers, bias.astype(np.int64), *decays, time_steps).within:
                return exponent
    return largest


def check_on_grid(
    weights: np.ndarray, bits: int, where: str, grid: str = "zero-free", exponent: int | None = None
) -> None:
    """Raise :class:`ExportError` unless integer ``weights`` are ``m * 2^e`` with ``m`` on the b-bit ``grid``
    (``e``: ``exponent``, default :func:`weight_exponent`'s)."""
    step = 1 << (weight_exponent(bits, grid) if exponent is None else exponent)
    levels = np.asarray(weights, dtype=np.float64) / step
    ok = np.all(levels == np.rint(levels)) and np.all(np.abs(levels) <= grid_max(bits, grid))
    if ok and _zero_free(bits, grid):
        ok = np.all(np.abs(levels) % 2 == 1)  # the zero-free grid has odd levels only
    if not ok:
        raise ExportError(
            f"{where}: weights are not on the declared {bits}-bit {grid} grid (levels m * {step}); "
            "the fixed-point conversion and the layer's quantizer disagree: report this as a bug"
        )
