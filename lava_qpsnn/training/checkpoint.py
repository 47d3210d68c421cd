"""The self-describing, versioned ``model.pt``.

A checkpoint is plain data: a format tag, a format version, the model (as layer specs),
data and encoding settings, the training settings and metrics, the quantization settings as
the model's hooks implement them, the quantizers' scales (so that every machine exports the
same integers) and the state dict. It loads with ``torch.load(..., weights_only=True)`` (no code
runs from the file), and every other command rebuilds the network from it alone.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data import Encoding
from ..errors import CheckpointError, ConfigError, QpsnnError
from ..files import atomic_output
from .checkpoint_fields import check_agreement, check_complete
from .hooks import MaskedWeights, core_hook
from .loop import TrainConfig, check_input_scale
from .models import SpikingNet, build_model, scale_input, weight_blocks
from .norm import folded_norm
from .quantize import QuantConfig, layer_scales, quant_config_of, quantize_model
from .slayer_blocks import config_of_blocks, with_trained_decays
from .specs import ModelConfig

__all__ = [
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "FORMAT",
    "VERSION",
]

FORMAT = "lava-qpsnn-checkpoint"
VERSION = 2


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to rebuild, evaluate and export a trained network."""

    model: ModelConfig
    dataset: str
    encoding: Encoding
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    quant: QuantConfig | None = None
    pruning: dict | None = None  # how the model was pruned (lava_qpsnn.training.prune.prune_and_finetune)
    scales: tuple[float | None, ...] | None = None  # each weight layer's quantizer scale (None: computed)
    training: TrainConfig | None = None  # how it was trained: what fine-tuning after pruning reuses

    @property
    def unpruned_model(self) -> ModelConfig:
        """The architecture before pruning (the model itself when it was not pruned)."""
        if self.pruning is None:
            return self.model
        return self.model.with_widths(self.pruning["widths_before"])

    @classmethod
    def of(
        cls,
        net: torch.nn.Module,
        *,
        dataset: str,
        encoding: Encoding,
        metrics: dict | None = None,
        quant: QuantConfig | None = None,
        pruning: dict | None = None,
        image_shape: tuple[int, int, int] | None = None,
        training: TrainConfig | None = None,
    ) -> Checkpoint:
        """Package ``net``: a :class:`SpikingNet` or any module whose ``blocks`` are slayer blocks.

        The quantization settings are read from ``net``'s hooks; ``quant``, if given, must agree
        with them; learnable decays are recorded at their trained values. A network not built by
        :func:`build_model` needs the data's ``image_shape``.
        """
        if isinstance(net, SpikingNet):
            model = with_trained_decays(net.config, net.blocks)
        elif image_shape is None:
            raise ConfigError("a network not built by lava_qpsnn needs image_shape=(C, H, W) of its data")
        else:
            model = config_of_blocks(net.blocks, image_shape)
        _check_packable(net)
        check_input_scale(net, encoding)
        found = quant_config_of(net)
        layers = len(weight_blocks(net))
        if quant is not None and (found is None or quant.differences(found, layers)):
            detail = "no quantizers" if found is None else "; ".join(quant.differences(found, layers))
            raise ConfigError(f"the given QuantConfig disagrees with the model's hooks ({detail}): omit it or fix it")
        state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        scales = tuple(layer_scales(net)) if found is not None else None
        checkpoint = cls(model, dataset, encoding, state, dict(metrics or {}), found, pruning, scales, training)
        try:  # the specs must rebuild this very network: fail now, not when the file is loaded
            checkpoint.build()
        except CheckpointError as exc:
            raise ConfigError(f"the network cannot be rebuilt from its layer specs: {exc}") from None
        return checkpoint

    def build(self) -> SpikingNet:
        """A fresh :class:`SpikingNet` with the stored weights (and quantization hooks), taking the encoding's input."""
        net = scale_input(build_model(self.model), self.encoding.payload_max)
        if self.quant is not None:
            quantize_model(net, self.quant)
        try:
            net.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split("\n", 1)[-1].split())[:160]
            raise CheckpointError(
                f"checkpoint weights do not fit its model ({detail}): re-train the checkpoint"
            ) from None
        return net.eval()

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model.to_dict(),
            "dataset": self.dataset,
            "encoding": dict(vars(self.encoding)),
            "metrics": dict(self.metrics),
            "quant": None if self.quant is None else self.quant.to_dict(),
            "pruning": self.pruning,
            "scales": None if self.scales is None else list(self.scales),
            "training": None if self.training is None else self.training.to_dict(),
            "state_dict": self.state_dict,
        }


def _check_packable(net: torch.nn.Module) -> None:
    """One-line error for a network a checkpoint cannot hold as it is: masked, or with an unfolded BatchNorm."""
    for i, block in enumerate(weight_blocks(net)):
        norm, hook = folded_norm(i, block), core_hook(block.synapse)
        if (
            isinstance(hook, MaskedWeights)
            or getattr(hook, "keep", None) is not None
            or getattr(norm, "keep", None) is not None
        ):
            raise ConfigError(f"weight layer {i} has a pruning mask: compact() the network before packaging it")


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (see :func:`~lava_qpsnn.files.atomic_output`)."""
    with atomic_output(path, force=force) as tmp:
        torch.save(checkpoint.to_dict(), tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a ``model.pt`` written by :func:`save_checkpoint`; every field is checked, one-line error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: give the path of a model.pt (from save_checkpoint or 'train')")
    data = _read(path)
    if not isinstance(data, dict) or not isinstance(data.get("format"), str) or data["format"] != FORMAT:
        raise CheckpointError(
            f"{path} is not a lava-qpsnn checkpoint (no '{FORMAT}' tag): "
            "use a model.pt written by 'python -m lava_qpsnn train'"
        )
    if type(data.get("version")) is not int or data["version"] != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {data.get('version')}, this lava-qpsnn "
            f"reads version {VERSION}: re-train with this version"
        )
    try:
        if isinstance(data.get("training"), dict):
            data = {**data, "training": _renamed(data["training"])}
        check_complete(data)
        _check_entries(data)
        checkpoint = Checkpoint(
            model=ModelConfig.from_dict(data["model"]),
            dataset=data["dataset"],
            encoding=Encoding(**data["encoding"]),
            state_dict=dict(data["state_dict"]),
            metrics=dict(data["metrics"] or {}),
            quant=None if data["quant"] is None else QuantConfig(**data["quant"]),
            pruning=data["pruning"],
            scales=None if data["scales"] is None else tuple(data["scales"]),
            training=None if data["training"] is None else TrainConfig(**data["training"]),
        )
        checkpoint.unpruned_model  # noqa: B018  (validates the pruning record)
        check_agreement(checkpoint)
        layers = len(weight_blocks(checkpoint.build()))  # the specs rebuild the network and the weights fit it
        if checkpoint.scales is not None and len(checkpoint.scales) != layers:
            raise ValueError(f"{len(checkpoint.scales)} quantizer scales for {layers} conv/dense layers")
        return checkpoint
    except QpsnnError as exc:
        raise CheckpointError(f"{path} holds invalid settings: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError, ArithmeticError) as exc:
        detail = " ".join(str(exc).split())[:120]
        raise CheckpointError(f"{path} is damaged (bad or missing entry: {detail}): re-train it") from None


def _read(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` (no code runs from the file), one line for any failure.

    A file written with plain ``pickle`` makes torch warn about its pickle protocol before it
    fails; that warning is suppressed, the failure is reported.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        text = str(exc).strip()
        if "Weights only load failed" in text:
            reason = "not a torch.save file of plain data"
        else:
            reason = text.splitlines()[0][:120] if text else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable lava-qpsnn checkpoint ({reason}): re-train or re-copy the file"
        ) from None


# entry -> the types it may have; None: optional
_ENTRIES = {
    "model": (dict,),
    "dataset": (str,),
    "encoding": (dict,),
    "state_dict": (dict,),
    "metrics": (dict, None),
    "quant": (dict, None),
    "pruning": (dict, None),
    "scales": (list, tuple, None),
}
_PRUNING_LISTS = ("layer_ratios", "widths_before", "kept_channels", "capped_layers")


def _check_entries(data: dict) -> None:
    """Types and values of every entry that no config class checks (those raise in their __post_init__)."""
    for key, kinds in _ENTRIES.items():
        value = data.get(key)
        if not (value is None and None in kinds) and not isinstance(value, tuple(k for k in kinds if k)):
            raise ValueError(f"'{key}' is {type(value).__name__}")
    if not data["dataset"]:
        raise ValueError("'dataset' is empty")
    for name, tensor in data["state_dict"].items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ValueError(f"state_dict entry {name!r} is not a named tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"state_dict entry {name!r} holds NaN or infinite values")
    for name, value in (data.get("metrics") or {}).items():
        if not _finite(value):
            raise ValueError(f"metric {name!r} is {value!r}, not a finite number")
    for scale in data.get("scales") or ():
        if scale is not None and not (_finite(scale) and scale > 0):
            raise ValueError(f"scale {scale!r} is not a finite positive number")
    pruning = data.get("pruning")
    if pruning is not None and not all(isinstance(pruning.get(k), list) for k in _PRUNING_LISTS):
        raise ValueError(f"the pruning record needs lists {', '.join(_PRUNING_LISTS)}")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _renamed(training: dict) -> dict:
    """Training settings under their current names: files written before ``val_samples`` became
    ``monitor_samples`` (the same setting) still load."""
    return {("monitor_samples" if key == "val_samples" else key): value for key, value in training.items()}
