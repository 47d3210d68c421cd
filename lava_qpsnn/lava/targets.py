"""Where a Lava run executes: ``cpu`` (Lava's bit-accurate fixed-point models on the CPU) or ``loihi2``.

The one place a target name becomes a Lava run configuration. The process graph, the input
injection and the readout are the same code for both targets; on ``loihi2`` the Classifier
also puts lava-loihi's spike adapters between its host processes and the chip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, LavaRuntimeError

if TYPE_CHECKING:
    from lava.magma.core.run_configs import RunConfig

__all__ = ["TARGETS", "check_target", "describe_target", "run_config"]

TARGETS = ("cpu", "loihi2")

LOIHI_ACCESS = (
    "lava-loihi is not installed: Loihi 2 runs need Intel's Lava extension for Loihi, which Intel gives to members "
    "of its Neuromorphic Research Community (INRC); install it into this environment, or use the 'cpu' target"
)


def check_target(target: str) -> None:
    """Fail at once, before any work, for an unknown target or a missing Loihi runtime."""
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    if target == "loihi2":
        from lava.utils import loihi

        if not loihi.is_installed():
            raise LavaRuntimeError(LOIHI_ACCESS, settings=("target",))


def describe_target(target: str) -> str:
    """The run configuration of ``target`` in words, for messages."""
    return {"cpu": "Loihi2SimCfg, fixed_pt", "loihi2": "Loihi2HwCfg"}[target]


def run_config(target: str) -> RunConfig:
    """Lava run configuration of ``target``.

    ``cpu`` must select the ``fixed_pt`` models: netx layers have no floating-point models
    and an untagged config would pick other models of Lava's own processes.
    """
    check_target(target)
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt") if target == "cpu" else Loihi2HwCfg()
