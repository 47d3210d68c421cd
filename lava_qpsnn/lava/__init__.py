"""Everything that touches Lava: the lava-nc 0.10 workarounds, running a ``.net`` as Lava processes,
run targets (``cpu``: Lava's fixed-point CPU models; ``loihi2``), the deployment processes and
how many samples a Lava run gets.

Lava itself is imported only when a run starts: the processes (``Classifier``, ``Encoder``,
``Readout``) load on first access.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING

from .deployment import Deployment, agreement_with_pytorch, deploy
from .run import build_network, run_lava
from .targets import TARGETS, check_target

_PROCESSES = ("Classifier", "Encoder", "Readout")  # importing them imports Lava: loaded on first use

if TYPE_CHECKING:
    from .processes import Classifier, Encoder, Readout


def __getattr__(name: str):
    if name in _PROCESSES:
        value = globals()[name] = getattr(_import_module(".processes", __name__), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PROCESSES))


__all__ = [
    "run_lava",
    "build_network",
    "deploy",
    "Deployment",
    "agreement_with_pytorch",
    "check_target",
    "TARGETS",
    "Classifier",
    "Encoder",
    "Readout",
]
