"""The option groups the commands share: each default is the one of the setting it fills.

A group adds the options of one config dataclass (:class:`~lava_qpsnn.training.loop.TrainConfig`,
:class:`~lava_qpsnn.training.quantize.QuantConfig`, ...), with the dataclass's defaults, and
:mod:`~lava_qpsnn.cli.settings` turns them back into that config, so a default lives in one place.
Options renamed since an earlier release stay known, as a one-line error naming the new spelling.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..command import finite_float
from ..data import ENCODINGS, Encoding, dataset_names
from ..training.device import DEVICES
from ..training.loop import LOSSES, SCHEDULES, TrainConfig
from ..training.prune import PruneConfig
from ..training.quantize import GAMMAS, GRIDS, QUANTIZERS, QuantConfig
from ..training.specs import NORMS, PRESETS, ModelConfig, NeuronConfig

__all__ = [
    "add_common_options",
    "add_training_options",
    "add_pruning_options",
    "add_device_option",
    "add_output_options",
    "add_result_options",
    "add_samples_option",
    "add_eval_batch_size",
    "add_renamed",
    "add_validation_option",
    "count",
    "ALL",
]

ALL = "all"  # --samples all: every test sample


def count(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return int(text)

    return parse


def _samples(text: str) -> int | str:
    """``--samples``: a count >= 1 or 'all'."""
    if text == ALL:
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of samples >= 1 or 'all', got {text!r}")
    return int(text)


def _first_last_bits(text: str) -> int | None:
    if text == "same":  # the first and last layers use --bits too
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1..8 or 'same', got {text!r}") from None


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(finite_float(r) for r in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected ratios like 0.5 or 0.3,0.6, got {text!r}") from None


def _fraction(text: str) -> float:
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.1, got {text!r}")
    return value


class _Renamed(argparse.Action):
    """An option's former spelling: using it is a usage error that names the new one."""

    def __init__(self, option_strings: list[str], dest: str, now: str, **kwargs) -> None:
        super().__init__(
            option_strings, argparse.SUPPRESS, nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        self.now = now

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        parser.error(f"{option_string} is now {self.now}")


def add_renamed(parser: argparse.ArgumentParser, old: str, now: str) -> None:
    """Keep ``old`` known to ``parser`` as an error that says ``now`` is its spelling."""
    parser.add_argument(old, action=_Renamed, now=now)


def add_common_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """--progress and --data-dir: on the program and on every command (``suppress``: a command's copy
    sets nothing unless given, so the option works before or after the command name)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=default(True), help="progress bars"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default(None),
        help="the data folder: where MNIST, Fashion-MNIST and CIFAR-10 are looked for and fetched files kept "
        "(default: $LAVA_QPSNN_DATA, else ~/.cache/lava-qpsnn)",
    )


def add_device_option(parser: argparse.ArgumentParser, what: str = "training") -> None:
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help=f"where PyTorch runs {what} (auto: cuda if PyTorch sees a GPU, else cpu; default %(default)s)",
    )


def add_samples_option(parser: argparse.ArgumentParser, help: str, default: int | str) -> None:
    """--samples N|all, the same type on every command."""
    parser.add_argument("--samples", type=_samples, default=default, metavar="N|all", help=help)


def add_eval_batch_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--eval-batch-size",
        type=count(1),
        metavar="N",
        help="test samples encoded and simulated at a time (default: about 256 MB of tensors for the largest "
        "layer); results do not depend on it",
    )
    add_renamed(parser, "--batch-size", "--eval-batch-size (--batch-size is the training batch)")


def add_training_options(
    parser: argparse.ArgumentParser, *, arch: str = "mlp", bits: int | None = None, encoding: Encoding | None = None
) -> None:
    """Data, model, encoding, training recipe, quantization and pruning: what ``train`` and ``demo`` take.

    ``arch``, ``bits`` and ``encoding`` are the command's defaults (``demo`` trains a QP-SNN by default).
    """
    encoding = encoding or Encoding()
    neuron = NeuronConfig()
    # what a run starts from unless told: data, encoding and the network's options (train --init takes the
    # checkpoint's data and encoding, and refuses network options: its network is the checkpoint's)
    parser.set_defaults(
        default_dataset="digits",
        default_encoding=encoding,
        network_defaults={
            "arch": arch,
            "norm": ModelConfig.norm,
            "threshold": neuron.threshold,
            "current_decay": neuron.current_decay,
            "voltage_decay": neuron.voltage_decay,
            "learn_decays": False,
            "tau_grad": neuron.tau_grad,
            "scale_grad": neuron.scale_grad,
            "init_gain": TrainConfig.init_gain,
        },
    )
    parser.add_argument("--dataset", choices=dataset_names(), help="the data (default digits)")
    parser.add_argument(
        "--arch",
        default=arch,
        metavar="SPEC",
        help="layers, e.g. 16c3-p2-32c3-p2-128-10 (NcK[sS][gG] conv, pK pooling, N dense; the last is the classes; "
        "suffix bn: BatchNorm on that conv or dense layer, d: axonal delays on its output spikes, tX: its threshold X, "
        "e.g. 16c3bn-p2t0.5-128bndt1.5-10), "
        f"or a preset: {', '.join(f'{k} ({v.format(classes=10)})' for k, v in PRESETS.items())} "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--norm",
        default=ModelConfig.norm,
        choices=NORMS,
        help="bn: BatchNorm, folded into weights and bias, on every conv and hidden dense layer (on some layers "
        "only: --norm none and the bn suffix in --arch)",
    )
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--time-steps", type=int, help=f"time steps per sample (T) (default {encoding.time_steps})")
    parser.add_argument(
        "--encoding",
        choices=ENCODINGS,
        help="rate: pixel p spikes with probability p each step; direct: the image itself every step, as graded "
        f"spikes of --payload-bits (QP-SNN's setting, at a few time steps) (default {encoding.kind})",
    )
    parser.add_argument(
        "--payload-bits",
        type=int,
        default=None,
        metavar="B",
        help=f"direct encoding: pixel p sends round(p * (2^B - 1)) (default {encoding.bits}"
        + (": 8-bit pixels as they are)" if encoding.bits == 8 else ")"),
    )
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="training batch")
    parser.add_argument("--lr", type=finite_float, default=TrainConfig.lr)
    parser.add_argument(
        "--seed",
        type=int,
        help=f"seeds weights, shuffling and spike encoding (default {TrainConfig.seed}; with --init, the "
        "checkpoint's encoding keeps its seed)",
    )
    add_device_option(parser)
    parser.add_argument(
        "--monitor-samples",
        type=count(0),
        default=TrainConfig.monitor_samples,
        metavar="N",
        help="accuracy after every epoch on a fixed subset of N training samples (0: none; default %(default)s); "
        "the test split is read only at the end",
    )
    add_renamed(parser, "--val-samples", "--monitor-samples")
    t = parser.add_argument_group("training recipe (defaults chosen on a held-out validation split)")
    t.add_argument(
        "--loss",
        choices=LOSSES,
        default=TrainConfig.loss,
        help="ce-count: cross-entropy of output spike counts; ce-rate: per-step cross-entropy (snnTorch's "
        "ce_rate_loss); spike-rate: slayer's SpikeRate (default %(default)s)",
    )
    t.add_argument("--schedule", choices=SCHEDULES, default=TrainConfig.schedule, help="learning rate schedule")
    t.add_argument("--weight-decay", type=finite_float, default=TrainConfig.weight_decay, help="AdamW weight decay")
    t.add_argument(
        "--augment-shift",
        type=count(0),
        default=TrainConfig.augment_shift,
        metavar="PIXELS",
        help="move each training image by up to PIXELS in each direction, anew every epoch (default %(default)s: none)",
    )
    t.add_argument(
        "--init-gain",
        type=finite_float,
        default=TrainConfig.init_gain,
        help="re-draw initial weights with std gain * threshold / sqrt(fan_in) (default: slayer's initialisation)",
    )
    t.add_argument("--threshold", type=finite_float, default=NeuronConfig.threshold, help="neuron threshold")
    t.add_argument(
        "--current-decay",
        type=finite_float,
        default=NeuronConfig.current_decay,
        help="neuron current decay in [0, 1] (default %(default)s: no current state)",
    )
    t.add_argument(
        "--voltage-decay",
        type=finite_float,
        default=NeuronConfig.voltage_decay,
        help="neuron voltage decay in [0, 1] (default %(default)s)",
    )
    t.add_argument(
        "--learn-decays",
        action="store_true",
        help="train the decays with the weights (slayer's requires_grad); exported at their trained values",
    )
    t.add_argument(
        "--tau-grad", type=finite_float, default=NeuronConfig.tau_grad, help="width of slayer's surrogate gradient"
    )
    t.add_argument(
        "--scale-grad", type=finite_float, default=NeuronConfig.scale_grad, help="height of slayer's surrogate gradient"
    )
    q = parser.add_argument_group("quantization (QP-SNN); without --bits: slayer's default 8-bit hook")
    q.add_argument("--bits", type=int, default=bits, help="weight bits of the hidden layers, 1..8")
    q.add_argument(
        "--quantizer",
        choices=QUANTIZERS,
        default=QuantConfig.quantizer,
        help="QP-SNN baseline (Eqs 4-6) or ReScaW (default %(default)s)",
    )
    q.add_argument(
        "--first-last-bits",
        type=_first_last_bits,
        default=QuantConfig.first_last_bits,
        help="bits of the first and last layers (default %(default)s: the paper keeps them in float, Loihi has no "
        "float weights), or 'same' for --bits",
    )
    q.add_argument(
        "--gamma",
        choices=GAMMAS,
        default=QuantConfig.gamma,
        help="ReScaW scale of each layer (default: mean |W| up to 2 bits, max |W| from 3)",
    )
    q.add_argument(
        "--percentile",
        type=finite_float,
        default=QuantConfig.percentile,
        help="the percentile of |W| that --gamma percentile takes (default %(default)s)",
    )
    q.add_argument(
        "--grid",
        choices=GRIDS,
        default=QuantConfig.grid,
        help="levels: symmetric (with zero; b signed bits on Loihi; default from 2 bits) or zero-free "
        "(the paper's, b + 1 signed bits below 8; the only 1-bit grid)",
    )
    add_pruning_options(parser, required=False)


def add_init_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--init",
        type=Path,
        metavar="MODEL.pt",
        help="train this checkpoint's network further (e.g. one from import-nir): its layers, neurons and weights, "
        "its data set and encoding unless --dataset, --time-steps, --encoding, --payload-bits or --seed say "
        "otherwise; "
        "--bits quantizes it, --prune prunes it",
    )


def add_pruning_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    p = parser.add_argument_group("structured pruning (QP-SNN): score once, prune, fine-tune, compact")
    p.add_argument(
        "--prune",
        type=_ratios,
        required=required,
        metavar="R[,R...]",
        help="fraction of channels to remove in [0, 1): one for every prunable layer, or one per layer",
    )
    p.add_argument(
        "--criterion",
        default=PruneConfig.criterion,
        metavar="NAME",
        help="channel score: svs, sca (QP-SNN's baseline), l1, random, or one registered with register_criterion "
        "(default %(default)s)",
    )
    p.add_argument("--finetune-epochs", type=count(0), default=PruneConfig.finetune_epochs, help="after pruning")
    p.add_argument(
        "--prune-steps",
        type=count(1),
        default=PruneConfig.steps,
        help="prune in N equal increments (default %(default)s: one-shot, the paper's)",
    )
    p.add_argument(
        "--calibration-samples",
        type=count(1),
        default=PruneConfig.calibration_samples,
        help="training samples the scores use (default %(default)s)",
    )


def add_validation_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validation",
        type=_fraction,
        metavar="F",
        help="hold out a fixed, stratified fraction F of the training split (e.g. 0.1), train on the rest and "
        "measure every accuracy on the held-out part, never reading the test split: for choosing settings",
    )


def add_output_options(parser: argparse.ArgumentParser, default: Path | None, *, resume: bool = True) -> None:
    """--out and --force of a command that writes files (and --resume where it trains)."""
    parser.add_argument("--out", type=Path, default=default, required=default is None, help="where to write")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    if resume:
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue the interrupted run whose state OUT.partial holds (saved after every epoch; "
            "the same options are needed, and the result equals an uninterrupted run's)",
        )


def add_result_options(parser: argparse.ArgumentParser, plots: str) -> None:
    """--json, --plot and --force of a command that prints a result and can draw it."""
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    parser.add_argument("--plot", type=Path, metavar="DIR", help=f"write {plots} into DIR")
    parser.add_argument("--force", action="store_true", help="replace the PNGs of an earlier --plot in DIR")
