"""Loihi 2's numbers as Lava 0.10's fixed-point models and netx use them, and the range checks on them.

Every stage that makes or reads integers for Lava (the fixed-point conversion, the exporter,
the ``.net`` reader, the simulator, the 24-bit limit checks) takes its ranges from here.
"""

from __future__ import annotations

import numpy as np

from .errors import ExportError

__all__ = [
    "WEIGHT_MAX",
    "WEIGHT_MIN",
    "VTH_MAX",
    "BIAS_MAX",
    "BIAS_MIN",
    "STATE_LIMIT",
    "CONV_OUTPUT_LIMIT",
    "DECAY_UNITY",
    "STATE_SHIFT",
    "MAX_DELAY",
    "check_weight_range",
    "check_bias_range",
]

WEIGHT_MAX = 254  # netx keeps mixed-sign weights in [-256, 254] (8-bit synapse, shared exponent)
WEIGHT_MIN = -256
VTH_MAX = (1 << 17) - 1  # the LIF threshold is an unsigned 17-bit mantissa
BIAS_MAX = (1 << 12) - 1  # the bias mantissa is a signed 13-bit integer
BIAS_MIN = -(1 << 12)
STATE_LIMIT = 1 << 23  # u and v are 24-bit: |u| < 2^23 never wraps, v > -2^23 is never clipped
CONV_OUTPUT_LIMIT = 1 << 24  # the fixed-point conv's 24-bit output
DECAY_UNITY = 4096  # decays are 12-bit fractions of 4096
STATE_SHIFT = 6  # a_in, the bias and vth enter the 24-bit state shifted left by 6 bits
MAX_DELAY = 62  # netx clips axonal delays to [0, 62] when any exceeds 62


def check_weight_range(integers: np.ndarray, where: str) -> None:
    """Refuse integer weights netx would clip (outside ``WEIGHT_MIN..WEIGHT_MAX``)."""
    low, high = int(np.min(integers)), int(np.max(integers))
    if high > WEIGHT_MAX or low < WEIGHT_MIN:
        raise ExportError(
            f"{where} has integer weights in {low}..{high}, beyond Loihi's 8-bit synapse "
            f"{WEIGHT_MIN}..{WEIGHT_MAX} (netx would clip them): quantize the network (QuantConfig)",
            settings=("bits",),
        )


def check_bias_range(
    bias: np.ndarray,
    where: str,
    fix: str = "retrain with fewer bits or without BatchNorm",
    settings: tuple[str, ...] = ("bits", "norm"),
) -> None:
    """Refuse an integer bias beyond Lava's 13-bit bias mantissa; ``fix`` and ``settings`` say what helps."""
    if np.max(bias) > BIAS_MAX or np.min(bias) < BIAS_MIN:
        raise ExportError(
            f"{where} has a bias reaching {int(np.abs(bias).max())}, beyond Lava's 13-bit bias "
            f"{BIAS_MIN}..{BIAS_MAX}: {fix}",
            settings=settings,
        )
