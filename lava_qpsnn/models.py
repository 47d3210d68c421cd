"""Spiking networks built from lava-dl slayer CUBA blocks.

A :class:`SpikingNet` is a plain ``torch.nn.Module`` holding a list of slayer blocks, so
slayer's training machinery and each block's ``export_hdf5`` work unchanged. It is fully
described by a :class:`ModelConfig`, which the checkpoint stores to rebuild it.

Layouts: the network takes spikes ``NCHWT`` (as the data encoder makes them) and returns
output spikes ``N x classes x T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .errors import ConfigError

__all__ = ["NeuronConfig", "ModelConfig", "SpikingNet", "build_model", "ARCHITECTURES"]

ARCHITECTURES = ("mlp", "conv")


@dataclass(frozen=True)
class NeuronConfig:
    """CUBA LIF parameters in slayer's units.

    The defaults are the QP-SNN neuron: no current state (``current_decay=1``), membrane
    leak 0.5, threshold 1.0, hard reset to 0. netx maps them to Lava's LIF as
    ``du=4095, dv=2048, vth=64``. ``tau_grad`` and ``scale_grad`` shape slayer's surrogate
    gradient (width ``100 * tau_grad * threshold``): slayer's ``tau_grad=1`` is nearly flat
    over the voltages seen; 0.003 was chosen on a validation split
    (``benchmarks/results/recipe.md``). They only affect training.
    """

    threshold: float = 1.0
    current_decay: float = 1.0
    voltage_decay: float = 0.5
    tau_grad: float = 0.003
    scale_grad: float = 1.0

    def __post_init__(self) -> None:
        if self.threshold <= 0:
            raise ConfigError(f"neuron threshold must be > 0, got {self.threshold}")
        for name in ("current_decay", "voltage_decay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"neuron {name} must be in [0, 1], got {value}")

    def slayer_params(self) -> dict:
        """Keyword arguments for slayer's ``block.cuba`` constructors."""
        return {
            "threshold": self.threshold,
            "current_decay": self.current_decay,
            "voltage_decay": self.voltage_decay,
            "tau_grad": self.tau_grad,
            "scale_grad": self.scale_grad,
        }


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a :class:`SpikingNet`.

    Attributes
    ----------
    arch : ``"mlp"`` (dense layers) or ``"conv"`` (3x3 convs, the second with stride 2,
        then a dense classifier; no pooling, which netx cannot build).
    image_shape : ``(C, H, W)`` of the data.
    num_classes : number of output neurons.
    hidden : hidden layer widths (mlp: neurons per layer; conv: channels per conv).
    """

    arch: str
    image_shape: tuple[int, int, int]
    num_classes: int
    hidden: tuple[int, ...] = ()
    neuron: NeuronConfig = field(default_factory=NeuronConfig)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unknown model {self.arch!r}: choose one of {', '.join(ARCHITECTURES)}")
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden) or _DEFAULT_HIDDEN[self.arch])
        if self.arch == "conv" and len(self.hidden) != 2:
            raise ConfigError(f"the conv model takes 2 channel counts, got {list(self.hidden)}")
        if min(self.hidden) < 1 or self.num_classes < 2:
            raise ConfigError(f"layer widths must be >= 1 and classes >= 2, got {self.hidden}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one time step of the network input (the NetX input layer, C-order)."""
        return (math.prod(self.image_shape),) if self.arch == "mlp" else self.image_shape

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "hidden": list(self.hidden),
            "neuron": dict(vars(self.neuron)),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(
            arch=data["arch"],
            image_shape=tuple(data["image_shape"]),
            num_classes=int(data["num_classes"]),
            hidden=tuple(data["hidden"]),
            neuron=NeuronConfig(**data["neuron"]),
        )


_DEFAULT_HIDDEN = {"mlp": (128,), "conv": (8, 16)}


class SpikingNet(torch.nn.Module):
    """A feed-forward stack of slayer CUBA blocks (see :func:`build_model`)."""

    def __init__(self, config: ModelConfig, blocks: list[torch.nn.Module]) -> None:
        super().__init__()
        self.config = config
        self.blocks = torch.nn.ModuleList(blocks)
        # slayer learns neuron and flatten shapes on the first forward pass; export
        # needs them, so run one empty step now.
        with torch.no_grad():
            self(torch.zeros(1, *config.image_shape, 1))

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """Map input spikes ``NCHWT`` to output spikes ``N x classes x T``."""
        x = spikes.reshape(spikes.shape[0], *self.config.input_shape, spikes.shape[-1])
        for block in self.blocks:
            x = block(x)
        return x


def build_model(config: ModelConfig) -> SpikingNet:
    """Build the slayer network described by ``config`` (weights freshly initialised)."""
    from lava.lib.dl import slayer

    neuron = config.neuron.slayer_params()
    blocks: list[torch.nn.Module] = []
    if config.arch == "mlp":
        widths = [config.input_shape[0], *config.hidden]
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            blocks.append(slayer.block.cuba.Dense(neuron, n_in, n_out, weight_scale=2))
        blocks.append(slayer.block.cuba.Dense(neuron, widths[-1], config.num_classes, weight_scale=2))
    else:
        channels, height, width = config.image_shape
        c1, c2 = config.hidden
        blocks += [
            slayer.block.cuba.Conv(neuron, channels, c1, 3, padding=1, weight_scale=2),
            slayer.block.cuba.Conv(neuron, c1, c2, 3, stride=2, padding=1, weight_scale=2),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(
                neuron,
                c2 * math.ceil(height / 2) * math.ceil(width / 2),
                config.num_classes,
                weight_scale=2,
            ),
        ]
    return SpikingNet(config, blocks)
