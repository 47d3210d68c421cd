"""The weight hooks lava-qpsnn attaches to slayer synapses (``pre_hook_fx``), and how to reach them.

slayer passes every synapse's weight through its ``pre_hook_fx`` before use (and with
``descale=True`` when exporting). The hooks here are ``nn.Module``s, so they show in ``repr``,
survive ``torch.save`` and DDP, and follow ``.to()``:

- :class:`WeightQuantizer`: quantization-aware training on a b-bit grid
  (:mod:`lava_qpsnn.training.quantize` attaches it);
- :class:`MaskedWeights`: a structured-pruning mask around slayer's own 8-bit hook
  (:mod:`lava_qpsnn.training.prune`; a quantizer carries its mask itself);
- :class:`FoldedWeights`: a BatchNorm folded into the weights, around either of them
  (:mod:`lava_qpsnn.training.norm`);
- :class:`IntegerWeights`: the hook of the fixed-point network, whose weights are integers.

:func:`core_hook` and :func:`set_core_hook` reach the hook under a BatchNorm fold.

The grids (see :mod:`lava_qpsnn.training.quantize`): ``"zero-free"`` has the odd levels
``-S..S`` with ``S = 2^b - 1`` (symmetric at 8 bits, where it would need 9 signed bits),
``"symmetric"`` the levels ``-S..S`` with ``S = 2^(b-1) - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import ConfigError
from ..loihi import WEIGHT_MAX

__all__ = [
    "GRIDS",
    "WeightQuantizer",
    "MaskedWeights",
    "FoldedWeights",
    "IntegerWeights",
    "core_hook",
    "set_core_hook",
    "folded_weight",
    "grid_max",
    "zero_free",
    "weight_exponent",
    "default_grid",
    "check_bits",
    "check_grid",
]

GRIDS = ("symmetric", "zero-free")


def zero_free(bits: int, grid: str) -> bool:
    """Whether levels are odd (the zero-free grid below 8 bits)."""
    return grid == "zero-free" and bits < 8


def grid_max(bits: int, grid: str) -> int:
    """``S``: the largest integer level of the ``bits``-bit ``grid``."""
    return (1 << bits) - 1 if zero_free(bits, grid) else (1 << (bits - 1)) - 1


def weight_exponent(bits: int, grid: str) -> int:
    """``e``: levels are stored as ``m * 2^e``, the largest with ``|m * 2^e| <= 254``."""
    return int(math.floor(math.log2(WEIGHT_MAX / grid_max(bits, grid))))


def default_grid(bits: int) -> str:
    """The grid used when none is given: symmetric where it exists (from 2 bits), else zero-free."""
    return "symmetric" if bits >= 2 else "zero-free"


def check_grid(bits: int, grid: str) -> None:
    """One-line error unless ``grid`` is known and holds ``bits``-bit levels."""
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r}: choose one of {', '.join(GRIDS)}")
    if grid == "symmetric" and bits < 2:
        raise ConfigError(
            "the symmetric grid needs >= 2 bits (1 bit holds only 0): use the zero-free grid at 1 bit",
            settings=("grid",),
        )


def check_bits(bits: int, setting: str = "bits") -> None:
    """One-line error unless ``bits`` is an integer in 1..8 (what a Loihi 2 synapse holds)."""
    if not (isinstance(bits, int) and 1 <= bits <= 8):
        raise ConfigError(
            f"{setting} must be an integer in 1..8 (Loihi 2 synapses hold up to 8 bits), got {bits}",
            settings=(setting,),
        )


class WeightQuantizer(torch.nn.Module):
    """slayer ``pre_hook_fx``: latent weight -> ``gamma * m / S`` with a straight-through gradient.

    ``hook(weight, descale=True)`` returns the integer weights ``m * 2^e`` (slayer's export
    convention); these need the fixed-point network's threshold to mean the same
    (:func:`lava_qpsnn.export.fixed_point.to_fixed_point`). ``grid`` None takes :func:`default_grid`.
    """

    def __init__(
        self,
        bits: int,
        quantizer: str = "rescaw",
        gamma: str = "mean",
        percentile: float = 99.0,
        grid: str | None = None,
    ) -> None:
        super().__init__()
        check_bits(bits)
        grid = default_grid(bits) if grid is None else grid
        check_grid(bits, grid)
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
        if zero_free(self.bits, self.grid):  # Eq 4: W_int = round(S/2 (W + 1)), level m = 2 W_int - S (odd)
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


class MaskedWeights(torch.nn.Module):
    """``pre_hook_fx`` that masks what another (element-wise) hook returns, e.g. slayer's ``quantize_8bit``."""

    def __init__(self, inner: Callable | None, keep: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("keep", keep)

    def forward(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        weight = weight * self.keep
        return weight if self.inner is None else self.inner(weight, descale=descale)


class FoldedWeights(torch.nn.Module):
    """Synapse ``pre_hook_fx``: scales each output channel by its BatchNorm's ``s``, then applies ``inner``.

    ``inner`` is the quantizer (or slayer's default 8-bit hook), so the grid holds the folded
    weights. The BatchNorm (:class:`lava_qpsnn.training.norm.BatchNorm`) is referenced, not owned
    (it lives in the neuron, where slayer puts it).
    """

    def __init__(self, inner: Callable | None, norm: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        object.__setattr__(self, "norm", norm)  # not a submodule: the neuron owns it

    def fold(self, weight: torch.Tensor) -> torch.Tensor:
        """``W * s``: each output channel scaled by its BatchNorm's ``s``."""
        return weight * self.norm.scale().reshape(-1, *[1] * (weight.dim() - 1))

    def forward(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        folded = self.fold(weight)
        return folded if self.inner is None else self.inner(folded, descale=descale)


class IntegerWeights(torch.nn.Module):
    """``pre_hook_fx`` of a fixed-point network: weights are already ``n / w_scale``, ``n`` integer.

    ``bits`` None: slayer's 8-bit hook made the integers; ``exponent``: levels are stored as
    ``m * 2^exponent`` (None: :func:`weight_exponent`'s).
    """

    def __init__(self, bits: int | None, w_scale: int, grid: str, exponent: int | None = None) -> None:
        super().__init__()
        self.bits, self.w_scale, self.grid, self.exponent = bits, w_scale, grid, exponent

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


def folded_weight(synapse: torch.nn.Module) -> torch.Tensor:
    """The weight the core hook sees: the latent weight, times the BatchNorm scale if one is folded."""
    outer, weight = synapse.pre_hook_fx, synapse.weight
    return outer.fold(weight) if isinstance(outer, FoldedWeights) else weight
