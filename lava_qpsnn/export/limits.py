"""Lava's 24-bit neuron state: the worst case a layer can reach, and the largest it reaches on data.

Lava's LIF holds its current ``u`` and voltage ``v`` in 24 bits (:mod:`lava_qpsnn.sim`):
``u`` wraps, ``v`` is clipped to ``+-(2^23 - 1)``. slayer's fixed-point model has no such
limit, so a layer whose state leaves 24 bits spikes differently in Lava. ``v``'s positive clip
never matters: a ``v`` above the threshold (``vth << 6 < 2^23 - 1``) spikes and resets to 0
either way. What counts is ``|u|`` and how far ``v`` falls below zero.

Worst case (:func:`worst_case`): inputs are binary spikes, so a neuron's input on one step is
at most the sum of its positive weights and at least the sum of its negative ones (times the
largest payload for the graded input of a direct-encoded network's first layer). Lava's
recurrences are monotone in their input and previous state, so those extremes on every step
of the window, iterated with Lava's rounding, bound ``u`` and ``-v`` exactly: this is the
state the layer reaches if every same-signed input fires on every step.

Measured (:func:`measured_peaks`): the simulator's :func:`~lava_qpsnn.sim.trace` without the
24-bit limits, i.e. the states slayer's model computes; Lava gives the same spikes exactly
while they stay below ``2^23``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..loihi import DECAY_UNITY, STATE_LIMIT, STATE_SHIFT
from ..netx import ConvLayer, DenseLayer, NetxNetwork
from ..sim import trace

__all__ = ["StatePeak", "worst_case", "layer_worst_case", "measured_peaks"]

CHUNK = 16  # samples per simulator run when measuring: bounds the memory of the recorded states


@dataclass(frozen=True)
class StatePeak:
    """The largest ``|u|`` and ``|v|`` of a layer (``v``: below zero, see the module docstring).

    Measured on data (:func:`measured_peaks`) it also holds the first step at which either
    reaches :data:`STATE_LIMIT` (None: never) and, given the spikes of a run with Lava's limits,
    how many of the layer's spikes those limits change.
    """

    current: int
    voltage: int
    first_step: int | None = None
    changed_spikes: int | None = None

    @property
    def within(self) -> bool:
        """Whether Lava holds both exactly (no wrap, no clip)."""
        return self.current < STATE_LIMIT and self.voltage < STATE_LIMIT

    @property
    def largest(self) -> int:
        return max(self.current, self.voltage)


def worst_case(
    weight: np.ndarray,
    bias: np.ndarray | int,
    current_decay: int,
    voltage_decay: int,
    steps: int,
    weight_exp: int = 0,
    input_max: int = 1,
) -> StatePeak:
    """Largest ``|u|`` and ``-v`` any input reaches in ``steps`` steps from zero state.

    ``weight``: ``(out, ...)`` integers Lava sums for each output channel; ``weight_exp``:
    Lava's shift of the sum (dense; 0 for conv); ``bias``: mantissa, scalar, per output
    channel or per neuron; decays: the 12-bit ``iDecay`` and ``vDecay``; ``input_max``: the
    largest input value (1: binary spikes; the largest payload of graded input).
    """
    w = np.asarray(weight, dtype=np.int64).reshape(len(weight), -1)
    up, down = np.clip(w, 0, None).sum(1) * input_max, -np.clip(w, None, 0).sum(1) * input_max
    if weight_exp < 0:  # Lava shifts the sum right (rounding down): positive sums floor, negative ones ceil
        up, down = up >> -weight_exp, -(-down >> -weight_exp)
    else:
        up, down = up << weight_exp, down << weight_exp
    b = np.asarray(bias, dtype=np.int64).reshape(-1)
    if b.size not in (1, len(w)):
        b = b.reshape(len(w), -1).min(1)  # per neuron: the lowest bias of a channel pulls v furthest down
    up, down, b = up << STATE_SHIFT, down << STATE_SHIFT, b << STATE_SHIFT
    keep_u, keep_v = DECAY_UNITY - current_decay, DECAY_UNITY - voltage_decay
    u_up, u_down, v_down = np.zeros_like(up), np.zeros_like(up), np.zeros_like(up)
    current = voltage = 0
    for _ in range(steps):  # magnitudes: rounding toward zero is a floor
        u_up = (u_up * keep_u >> 12) + up
        u_down = (u_down * keep_u >> 12) + down
        v_down = np.maximum((v_down * keep_v >> 12) + u_down - b, 0)  # a spike resets v to 0, above any v < 0
        current = max(current, int(u_up.max(initial=0)), int(u_down.max(initial=0)))
        voltage = max(voltage, int(v_down.max(initial=0)))
    return StatePeak(current, voltage)


def layer_worst_case(layer: DenseLayer | ConvLayer, steps: int, input_max: int = 1) -> StatePeak:
    """:func:`worst_case` of a layer read from a ``.net`` (the integers Lava computes with)."""
    neuron = layer.neuron
    exp = layer.weight_exp if isinstance(layer, DenseLayer) else 0
    return worst_case(layer.weight, neuron.bias, neuron.du + 1, neuron.dv, steps, exp, input_max)


def measured_peaks(
    network: NetxNetwork, spikes: np.ndarray, limited: list[np.ndarray] | None = None
) -> list[StatePeak]:
    """Per neuron layer (:attr:`NetxNetwork.neuron_layers`), the largest ``|u|`` and ``|v|`` reached on ``spikes``.

    Measured without Lava's limits (the states slayer's model computes), so a value of
    :data:`STATE_LIMIT` or more is one Lava would wrap or clip. ``limited``: every layer's
    spikes of the same samples with the limits (:func:`~lava_qpsnn.sim.simulate`), to count
    the spikes the limits change.
    """
    count = len(network.neuron_layers)
    peaks = np.zeros((count, 2), dtype=np.int64)
    first: list[int | None] = [None] * count
    changed = [0] * count
    for start in range(0, len(spikes), CHUNK):
        for i, layer in enumerate(trace(network, spikes[start : start + CHUNK], limits=False)):
            u, v = np.abs(layer.current), np.abs(layer.voltage)
            peaks[i] = np.maximum(peaks[i], (u.max(initial=0), v.max(initial=0)))
            over = np.flatnonzero(((u >= STATE_LIMIT) | (v >= STATE_LIMIT)).reshape(-1, u.shape[-1]).any(axis=0))
            if over.size:
                first[i] = int(over[0]) if first[i] is None else min(first[i], int(over[0]))
            if limited is not None:
                changed[i] += int(np.count_nonzero(layer.spikes != limited[i][start : start + CHUNK]))
    return [
        StatePeak(int(u), int(v), first[i], None if limited is None else changed[i]) for i, (u, v) in enumerate(peaks)
    ]
