"""The exact integer network a trained network deploys as: what is exported and runs in Lava.

Each quantized layer becomes integer weights ``n = m * 2^e`` (``e`` per bit width, the largest
with ``|n| <= 254``; netx turns ``2^e`` into Lava's weight exponent) and the scale ``gamma / S``
moves into the threshold: ``vth = round(theta * 2^e * S / gamma)``, the bias likewise. With
reset to zero, scaling weights, bias and threshold together leaves spikes unchanged in exact
arithmetic, so this is the trained network up to the rounding of ``vth`` and the bias
(relative error at most 1 / (2 vth)) and to slayer's integer truncation of states happening
at another scale. The same freedom keeps a layer inside Lava's 24-bit state: given the window
length, a layer whose worst case (:mod:`lava_qpsnn.export.limits`) or bias would leave Lava's
range at that ``e`` takes the largest smaller ``e`` under which both fit, while
``theta * 2^e * S / gamma`` stays >= 1 (else it keeps ``e`` and the exporter decides). A layer
left to slayer's 8-bit hook has even integers: one whose folded bias would not fit is halved,
exactly, with its gain.

Direct encoding: layer 0 of the float network reads payloads ``x`` divided by ``P = 2^bits - 1``;
the integer network reads ``x`` itself, so ``P`` joins layer 0's gain (threshold and bias times
``P``), and its ``e`` is chosen for inputs up to ``P``.

The integer network is a slayer network too, and it is what runs in Lava, bit for bit
(:func:`match_lava_spike_test` makes slayer's spike test Lava's at every threshold). The only
reduction in the conversion, ReScaW's mean ``|W|``, is computed once and stored with the
checkpoint (:func:`lava_qpsnn.training.quantize.layer_scales`), so the same checkpoint converts
to the same integers on every machine.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..errors import ConfigError, ExportError
from ..loihi import BIAS_MAX, BIAS_MIN, VTH_MAX, check_bias_range, check_weight_range
from ..training.checkpoint import Checkpoint
from ..training.hooks import (
    IntegerWeights,
    WeightQuantizer,
    core_hook,
    folded_weight,
    grid_max,
    weight_exponent,
    zero_free,
)
from ..training.models import SpikingNet, input_payload_max, scale_input, weight_blocks
from ..training.norm import IntegerBias, folded_norm
from .limits import worst_case

__all__ = ["to_fixed_point", "fixed_point_model", "check_on_grid", "match_lava_spike_test"]


def fixed_point_model(checkpoint: Checkpoint) -> SpikingNet:
    """The integer network of ``checkpoint``: what is exported and runs in Lava, as a PyTorch network."""
    scales = None if checkpoint.scales is None else list(checkpoint.scales)
    return to_fixed_point(checkpoint.build(), scales, checkpoint.encoding.time_steps)


@torch.no_grad()
def to_fixed_point(
    net: torch.nn.Module, scales: list[float | None] | None = None, time_steps: int | None = None
) -> torch.nn.Module:
    """The integer network a quantization-aware ``net`` deploys as (a new network).

    Each quantized layer gets weights ``m * 2^e / w_scale`` and threshold ``vth / w_scale``
    (see the module docstring); a BatchNorm becomes folded integer weights and an integer
    bias; other layers are copied unchanged. A float network fed direct-encoded payloads
    (:func:`~lava_qpsnn.training.models.scale_input`) becomes one that takes them as they are:
    the payload scale moves into layer 0's threshold and bias, like the weight scale.
    ``scales`` are the layers' stored ReScaW scales (:func:`~lava_qpsnn.training.quantize.layer_scales`;
    default: computed now). ``time_steps``: the window length, which lets a layer take a smaller ``e``
    to stay inside Lava's 24-bit state (None: the largest ``e`` whose threshold fits). ``net`` is not modified.
    """
    fixed = copy.deepcopy(net).eval()
    payload_max = input_payload_max(fixed)
    scale_input(fixed, 1)  # the integer network takes the payloads themselves: their scale goes to layer 0
    blocks = weight_blocks(fixed)
    scales = scales if scales is not None else [None] * len(blocks)
    if len(scales) != len(blocks):
        raise ConfigError(f"got {len(scales)} stored scales for {len(blocks)} conv/dense layers")
    for i, (block, scale) in enumerate(zip(blocks, scales, strict=True)):
        hook, norm = core_hook(block.synapse), folded_norm(i, block)
        input_gain = payload_max if i == 0 else 1  # the float layer 0 reads payload / payload_max
        if not isinstance(hook, WeightQuantizer) and norm is None and input_gain == 1:
            continue
        w_scale = block.neuron.w_scale
        weight = folded_weight(block.synapse)
        if not torch.isfinite(weight).all():
            raise ExportError(
                f"weight layer {i} has NaN or infinite weights (training diverged): retrain with a lower learning rate",
                settings=("lr",),
            )
        if isinstance(hook, WeightQuantizer):
            stored = None if scale is None else torch.tensor(scale, dtype=weight.dtype, device=weight.device)
            gamma = hook.gamma(weight) if stored is None else stored
            levels, _ = hook.levels(weight, gamma)
            exponent = _fitting_exponent(block, hook, levels, float(gamma), norm, time_steps, input_gain)
            step = 1 << exponent
            integers = levels * step
            gain = step * grid_max(hook.bits, hook.grid) / float(gamma) * input_gain
            bits, grid = hook.bits, hook.grid
        else:  # BatchNorm or graded input without lava-qpsnn quantization: slayer's own hook makes the integers
            integers = hook(weight, descale=True) if hook is not None else torch.round(weight * w_scale)
            gain, bits, grid, exponent = float(w_scale) * input_gain, None, "symmetric", None
            if norm is not None:
                integers, gain = _halved_to_fit_bias(integers, gain, norm.bias(), block.neuron.threshold)
        check_weight_range(integers.cpu().numpy(), f"weight layer {i}")
        vth = round(block.neuron.threshold * gain)
        if not 1 <= vth <= VTH_MAX:
            raise ExportError(
                f"weight layer {i}: threshold {vth} after folding the weight scale is outside Loihi's "
                f"1..{VTH_MAX}; its weights are nearly all zero or huge: retrain with another quantizer",
                settings=("quantizer",),
            )
        block.synapse.weight.copy_(integers / w_scale)
        block.synapse._pre_hook_fx = IntegerWeights(bits, w_scale, grid, exponent)
        block.neuron._threshold = vth / w_scale
        if norm is not None:
            bias = torch.round(norm.bias() * gain)
            if input_gain > 1:  # graded input: its payload scale multiplies this layer's bias
                fix = "retrain with fewer payload bits or without BatchNorm on this layer (the direct input's scale)"
                check_bias_range(bias.cpu().numpy(), f"weight layer {i}", fix, ("payload_bits", "norm"))
            else:
                check_bias_range(bias.cpu().numpy(), f"weight layer {i}")
            block.neuron.norm = IntegerBias(bias, w_scale, norm.latency)
    for block in fixed.blocks:
        if hasattr(getattr(block, "neuron", None), "threshold_eps"):
            match_lava_spike_test(block.neuron)
    return fixed


def _halved_to_fit_bias(
    integers: torch.Tensor, gain: float, bias: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, float]:
    """Integers and gain halved, as often as a folded bias needs to fit Lava's 13 bits and halving is exact.

    slayer's 8-bit hook stores even integers; halving them with the gain scales weights, bias and
    threshold together, as a smaller weight exponent does for a quantized layer. A BatchNorm after
    graded input (direct encoding multiplies layer 0's gain by the payload scale) needs it most."""
    low, high = float(bias.min()), float(bias.max())
    while (
        not BIAS_MIN <= round(low * gain) <= round(high * gain) <= BIAS_MAX
        and bool((integers % 2 == 0).all())
        and threshold * gain / 2 >= 1
    ):
        integers, gain = integers / 2, gain / 2
    return integers, gain


def _fitting_exponent(
    block, hook: WeightQuantizer, levels: torch.Tensor, gamma: float, norm, time_steps: int | None, input_max: int
) -> int:
    """The weight exponent of a quantized layer: :func:`weight_exponent`'s, or the largest smaller one under
    which its threshold, its bias and its worst-case state over ``time_steps`` steps (inputs up to
    ``input_max``, which also scales the threshold) fit Lava (see the module docstring). If none fits
    them all, the exporter measures the state, at the largest exponent whose threshold fits, or for
    graded input, whose worst case is far beyond typical input, at the smallest."""
    largest = weight_exponent(hook.bits, hook.grid)
    neuron = block.neuron
    decays = int(neuron.cx_current_decay), int(neuron.cx_voltage_decay)
    levels = levels.cpu().numpy().astype(np.int64)
    fitting = []  # exponents whose threshold fits, largest first
    for exponent in range(largest, -1, -1):
        gain = (1 << exponent) * grid_max(hook.bits, hook.grid) / gamma * input_max
        if neuron.threshold * gain < 1:  # vth would be 0 or 1: no resolution left
            break
        if round(neuron.threshold * gain) > VTH_MAX:
            continue
        fitting.append(exponent)
        if time_steps is None:
            return exponent
        bias = np.zeros(1) if norm is None else torch.round(norm.bias() * gain).cpu().numpy()
        if np.abs(bias).max() <= BIAS_MAX:
            if worst_case(levels << exponent, bias.astype(np.int64), *decays, time_steps, input_max=input_max).within:
                return exponent
    if not fitting:
        return largest
    return fitting[-1] if input_max > 1 else fitting[0]


def check_on_grid(weights: np.ndarray, bits: int, where: str, grid: str, exponent: int | None = None) -> None:
    """Raise :class:`ExportError` unless integer ``weights`` are ``m * 2^e`` with ``m`` on the b-bit ``grid``
    (``e``: ``exponent``, default :func:`~lava_qpsnn.training.hooks.weight_exponent`'s)."""
    step = 1 << (weight_exponent(bits, grid) if exponent is None else exponent)
    levels = np.asarray(weights, dtype=np.float64) / step
    ok = np.all(levels == np.rint(levels)) and np.all(np.abs(levels) <= grid_max(bits, grid))
    if ok and zero_free(bits, grid):
        ok = np.all(np.abs(levels) % 2 == 1)  # the zero-free grid has odd levels only
    if not ok:
        raise ExportError(
            f"{where}: weights are not on the declared {bits}-bit {grid} grid (levels m * {step}); "
            "the fixed-point conversion and the layer's quantizer disagree: report this as a bug"
        )


def match_lava_spike_test(neuron: torch.nn.Module) -> None:
    """Make a slayer CUBA neuron of an integer network spike on ``v > vth << 6``, as Lava does, at every ``vth``.

    slayer spikes on ``v >= threshold`` and adds ``threshold_eps`` (0.01 of a state unit)
    to emulate Lava's strict ``>``. Both comparisons run in float32, where ``vth << 6``
    plus 0.01 rounds back to ``vth << 6`` from ``vth = 4096`` on, so the PyTorch model fired
    on an exact tie and Lava did not. In the integer network the voltage is a whole number
    of state units, so one full unit is the same strict test, and ``(vth << 6) + 1`` is
    exact in float32 for every threshold Lava accepts (``vth < 2^17``).

    The integer network's other float32 steps stay exact wherever Lava itself does not
    wrap or clip: synaptic sums are multiples of 1/64 below 2^24 units while Lava's current
    needs ``|a_in| < 2^17``, and slayer's states ``u, v`` are whole units, exact below 2^24,
    while Lava's are 24-bit.
    """
    neuron.threshold_eps = 1.0 / neuron.s_scale
