"""NIR's continuous-time neurons and Loihi's CUBA neuron: the forward-Euler map between them, both ways.

Loihi's CUBA neuron (slayer's and Lava's), one step of ``dt``, decays in 1/4096 units::

    u[t] = (1 - iDecay/4096) u[t-1] + x[t]
    v[t] = (1 - vDecay/4096) v[t-1] + u[t]      spike if v > vth, then v = 0

NIR's ``CubaLIF`` (``tau_syn dI/dt = -I + w_in x``, ``tau_mem dv/dt = (v_leak - v) + r I``),
forward Euler with the same step::

    I[t] = (1 - dt/tau_syn) I[t-1] + (dt/tau_syn) w_in x[t]
    v[t] = (1 - dt/tau_mem) v[t-1] + (dt/tau_mem) r I[t]

so ``iDecay = 4096 dt/tau_syn``, ``vDecay = 4096 dt/tau_mem``, and the input gain
``(w_in dt/tau_syn) (r dt/tau_mem)`` folds into the weights. ``LIF`` has no current state
(``iDecay = 4096``, gain ``r dt/tau``); ``IF`` no leak either (``vDecay = 0``, gain ``r dt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..loihi import DECAY_UNITY

__all__ = ["DEFAULT_DT", "Cuba", "node_of_cuba", "cuba_of_node", "rounding"]

DEFAULT_DT = 1e-4  # NIR stores no time step; snnTorch and SpikingJelly write their graphs with this one


@dataclass(frozen=True)
class Cuba:
    """A CUBA neuron in Loihi's units: decays in 1/4096 (floats: what the time constants give before rounding),
    the threshold, and the input gain that folds into the weights before it."""

    i_decay: float
    v_decay: float
    threshold: float
    gain: float


def node_of_cuba(cuba: Cuba, shape: tuple[int, ...], dt: float):
    """The NIR neuron node computing ``cuba`` for ``shape`` neurons (every parameter one value per neuron).

    ``IF`` without leak and current state, ``LIF`` without current state, ``CubaLIF`` otherwise; a
    decay of 0 in a ``CubaLIF`` would need an infinite time constant: raises ``ValueError``.
    """
    import nir

    def full(value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    threshold, zero = full(cuba.threshold), full(0.0)
    if cuba.i_decay == DECAY_UNITY and cuba.v_decay == 0:
        return nir.IF(r=full(cuba.gain / dt), v_threshold=threshold, v_reset=zero)
    if cuba.v_decay == 0 or cuba.i_decay == 0:
        raise ValueError(f"a decay of 0 (iDecay {cuba.i_decay:g}, vDecay {cuba.v_decay:g}) has no finite time constant")
    tau_mem = DECAY_UNITY * dt / cuba.v_decay
    if cuba.i_decay == DECAY_UNITY:
        return nir.LIF(
            tau=full(tau_mem), r=full(cuba.gain * tau_mem / dt), v_leak=zero, v_threshold=threshold, v_reset=zero
        )
    tau_syn = DECAY_UNITY * dt / cuba.i_decay
    return nir.CubaLIF(
        tau_syn=full(tau_syn),
        tau_mem=full(tau_mem),
        r=full(tau_mem / dt),
        v_leak=zero,
        v_threshold=threshold,
        v_reset=zero,
        w_in=full(cuba.gain * tau_syn / dt),
    )


def cuba_of_node(params: dict[str, float], kind: str, dt: float) -> Cuba:
    """The CUBA neuron of a NIR ``IF``/``LIF``/``CubaLIF`` node given as one value per parameter."""
    if kind == "IF":
        return Cuba(DECAY_UNITY, 0.0, params["v_threshold"], params["r"] * dt)
    if kind == "LIF":
        decay = dt / params["tau"]
        return Cuba(DECAY_UNITY, DECAY_UNITY * decay, params["v_threshold"], params["r"] * decay)
    syn, mem = dt / params["tau_syn"], dt / params["tau_mem"]
    return Cuba(DECAY_UNITY * syn, DECAY_UNITY * mem, params["v_threshold"], params["w_in"] * syn * params["r"] * mem)


def voltage_bias(bias: np.ndarray, i_decay: float, gain: float) -> np.ndarray:
    """A bias NIR feeds into a neuron's current, as the bias Loihi adds to its voltage each step.

    The current keeps ``1 - i_decay / 4096`` of itself per step, so a constant input settles at
    ``4096 / i_decay`` times its size: the voltage then gains that, times the input gain, every step (at once
    on Loihi, over ``tau_syn`` in the source). Without a current state (``i_decay = 4096``) it is the same.
    """
    return bias * gain / (i_decay / DECAY_UNITY)


def current_bias(bias: np.ndarray, i_decay: float, gain: float) -> np.ndarray:
    """The inverse of :func:`voltage_bias`: Loihi's voltage bias as the input NIR feeds into the current."""
    return bias * (i_decay / DECAY_UNITY) / gain


def rounding(value: float) -> float:
    """How far a decay in 1/4096 units is from the integer Loihi stores."""
    return abs(value - round(value)) if math.isfinite(value) else math.inf
