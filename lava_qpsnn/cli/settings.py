"""The parsed options turned back into the settings they fill (see :mod:`lava_qpsnn.cli.options`)."""

from __future__ import annotations

import argparse

from ..data import Encoding
from ..errors import ConfigError
from ..training.loop import TrainConfig
from ..training.prune import PruneConfig
from ..training.quantize import QuantConfig
from ..training.specs import NeuronConfig

__all__ = [
    "training_settings",
    "encoding_from_args",
    "train_config_from_args",
    "neuron_from_args",
    "quant_from_args",
    "prune_from_args",
]

# the options that refine --bits and --prune, with their settings' defaults
QUANT_DEFAULTS = {
    "quantizer": QuantConfig.quantizer,
    "first_last_bits": QuantConfig.first_last_bits,
    "gamma": QuantConfig.gamma,
    "percentile": QuantConfig.percentile,
    "grid": QuantConfig.grid,
}
PRUNE_DEFAULTS = {
    "criterion": PruneConfig.criterion,
    "finetune_epochs": PruneConfig.finetune_epochs,
    "prune_steps": PruneConfig.steps,
    "calibration_samples": PruneConfig.calibration_samples,
}


def _refine_only(args: argparse.Namespace, defaults: dict, needed: str) -> None:
    """One-line error for options changed without the option they refine (``needed``, e.g. ``--bits 4``)."""
    given = [f"--{name.replace('_', '-')}" for name, default in defaults.items() if getattr(args, name) != default]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply with {needed.split()[0]}: add e.g. {needed}")


def quant_from_args(args: argparse.Namespace) -> QuantConfig | None:
    if args.bits is None:
        _refine_only(args, QUANT_DEFAULTS, "--bits 4")
        return None
    return QuantConfig(args.bits, args.quantizer, args.first_last_bits, args.gamma, args.percentile, args.grid)


def prune_from_args(args: argparse.Namespace) -> PruneConfig | None:
    if args.prune is None:
        _refine_only(args, PRUNE_DEFAULTS, "--prune 0.5")
        return None
    return PruneConfig(
        args.prune,
        criterion=args.criterion,
        finetune_epochs=args.finetune_epochs,
        steps=args.prune_steps,
        calibration_samples=args.calibration_samples,
    )


def training_settings(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`~lava_qpsnn.pipeline.train_checkpoint` that describe the network and
    how it is trained (data set, layers, norm, encoding, recipe, neuron)."""
    return dict(
        dataset=args.dataset,
        arch=args.arch,
        norm=args.norm,
        encoding=encoding_from_args(args),
        config=train_config_from_args(args),
        neuron=neuron_from_args(args),
    )


def encoding_from_args(args: argparse.Namespace) -> Encoding:
    bits = {} if args.payload_bits is None else {"bits": args.payload_bits}
    if args.encoding == "direct" and args.payload_bits is None:
        bits = {"bits": args.direct_payload_bits}
    return Encoding(time_steps=args.time_steps, seed=args.seed, kind=args.encoding, **bits)


def neuron_from_args(args: argparse.Namespace) -> NeuronConfig:
    return NeuronConfig(
        threshold=args.threshold,
        current_decay=args.current_decay,
        voltage_decay=args.voltage_decay,
        tau_grad=args.tau_grad,
        scale_grad=args.scale_grad,
        requires_grad=args.learn_decays,
    )


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        loss=args.loss,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        init_gain=args.init_gain,
        monitor_samples=args.monitor_samples,
        validation=getattr(args, "validation", None),
    )
