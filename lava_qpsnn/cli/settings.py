"""The parsed options turned back into the settings they fill (see :mod:`lava_qpsnn.cli.options`)."""

from __future__ import annotations

import argparse

from ..data import Encoding
from ..errors import ConfigError
from ..training.checkpoint import Checkpoint
from ..training.loop import TrainConfig
from ..training.prune import PruneConfig
from ..training.quantize import QuantConfig
from ..training.specs import NeuronConfig

__all__ = [
    "training_settings",
    "dataset_from_args",
    "check_network_options",
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


def training_settings(args: argparse.Namespace, init: Checkpoint | None = None) -> dict:
    """The keyword arguments of :func:`~lava_qpsnn.pipeline.train_checkpoint` that describe the network and
    how it is trained (data set, layers, norm, encoding, recipe, neuron); with ``init``, the checkpoint
    whose network it trains further."""
    settings = dict(
        dataset=dataset_from_args(args, init),
        encoding=encoding_from_args(args, init),
        config=train_config_from_args(args),
    )
    if init is not None:
        check_network_options(args)
        return {**settings, "init": init}
    return {**settings, "arch": args.arch, "norm": args.norm, "neuron": neuron_from_args(args)}


def dataset_from_args(args: argparse.Namespace, init: Checkpoint | None = None) -> str:
    """``--dataset``, else the initial checkpoint's, else the command's default."""
    return args.dataset or (init.dataset if init is not None else args.default_dataset)


def check_network_options(args: argparse.Namespace) -> None:
    """One-line error for options that describe a new network, given with a checkpoint whose network is trained."""
    given = [name for name, default in args.network_defaults.items() if getattr(args, name) != default]
    if given:
        options = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        raise ConfigError(
            f"{options} {'describes' if len(given) == 1 else 'describe'} a new network, but --init trains the "
            f"checkpoint's own (its layers and neurons): drop {'it' if len(given) == 1 else 'them'}",
            settings=tuple(given),
        )


def encoding_from_args(args: argparse.Namespace, init: Checkpoint | None = None) -> Encoding:
    """The options' encoding; those not given are the initial checkpoint's, else the command's defaults.

    ``--encoding direct`` alone sends the default payload bits, or the checkpoint's if it is direct-encoded.
    """
    base = init.encoding if init is not None else args.default_encoding
    kind = args.encoding or base.kind
    bits = args.payload_bits
    if bits is None and kind == "direct":
        bits = base.bits if base.kind == "direct" else args.default_encoding.bits
    time_steps = args.time_steps if args.time_steps is not None else base.time_steps
    seed = args.seed if args.seed is not None else base.seed if init is not None else TrainConfig.seed
    return Encoding(time_steps=time_steps, seed=seed, kind=kind, **({} if bits is None else {"bits": bits}))


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
        seed=TrainConfig.seed if args.seed is None else args.seed,
        loss=args.loss,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        init_gain=args.init_gain,
        monitor_samples=args.monitor_samples,
        augment_shift=args.augment_shift,
        validation=getattr(args, "validation", None),
    )
