"""Where the PyTorch side runs: ``cpu``, ``cuda`` or ``auto`` (cuda when PyTorch sees a GPU).

Only the float training and the PyTorch fixed-point model run there; Lava and the simulator
run on the CPU whatever is chosen. Checkpoints always hold CPU tensors.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError

__all__ = ["DEVICES", "resolve_device", "model_device"]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str | torch.device) -> torch.device:
    """The :class:`torch.device` for ``device``; one-line error for an unknown or unavailable one."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in DEVICES:
        raise ConfigError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda': PyTorch sees no CUDA GPU here; use 'cpu' (or 'auto')", settings=("device",))
    return torch.device(name)


def model_device(net: torch.nn.Module) -> torch.device:
    """The device of ``net``'s parameters (every lava-qpsnn network has a conv or dense weight)."""
    return next(net.parameters()).device
