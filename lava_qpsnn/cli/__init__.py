"""``python -m lava_qpsnn {train,prune,eval,run,report,diagnose,demo,import-nir}``: the command line.

One module per group of commands (:mod:`~lava_qpsnn.cli.train`, :mod:`~lava_qpsnn.cli.evaluate`,
:mod:`~lava_qpsnn.cli.report`, :mod:`~lava_qpsnn.cli.demo`), the option groups they share in
:mod:`~lava_qpsnn.cli.options`. Every subcommand returns an exit status; user errors
(:class:`~lava_qpsnn.errors.QpsnnError`) print one line and return 2, Ctrl-C returns 130, a closed
output pipe 141 (:mod:`lava_qpsnn.command`).

The same words mean the same on every command: the files a command reads are positional, a
checkpoint before a network (``eval [model.pt] model.net``); ``--samples N|all`` counts test
samples; ``--batch-size`` is the training batch and ``--eval-batch-size`` the test samples run at
a time; ``--out`` is what a command writes and ``--force`` lets it replace existing files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..command import ArgumentParser, finite_float, option_strings, run_guarded
from ..data import dataset_names
from ..demo import DEMO_ARCH, DEMO_ENCODING
from ..evaluation import BACKENDS
from ..lava.targets import TARGETS
from ..training.distributed import launched_by_torchrun
from .demo import cmd_demo
from .evaluate import LAVA_SAMPLES, cmd_eval, cmd_run
from .interchange import cmd_import_nir
from .options import (
    ALL,
    add_common_options,
    add_device_option,
    add_eval_batch_size,
    add_init_option,
    add_output_options,
    add_pruning_options,
    add_renamed,
    add_result_options,
    add_samples_option,
    add_training_options,
    add_validation_option,
    count,
)
from .report import cmd_diagnose, cmd_report
from .train import cmd_prune, cmd_train

__all__ = ["main", "build_parser"]

DISTRIBUTED_COMMANDS = (cmd_train, cmd_prune)
CHECKPOINT = "model.pt written by 'python -m lava_qpsnn train'"
NET = ".net written by 'python -m netx_export'"


def _program() -> str:
    """The name the user typed: the console script's, or ``python -m lava_qpsnn``."""
    return "lava-qpsnn" if Path(sys.argv[0]).name == "lava-qpsnn" else "python -m lava_qpsnn"


def _net_command(sub, name: str, description: str, checkpoint: str) -> argparse.ArgumentParser:
    """A subcommand on an exported network (and optionally the checkpoint it came from, first)."""
    p = sub.add_parser(name, help=description)
    p.add_argument("checkpoint", type=Path, nargs="?", help=f"{checkpoint} (optional)")
    p.add_argument("net", type=Path, help=NET)
    add_renamed(p, "--checkpoint", f"positional, before the network: {name} model.pt model.net")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=_program(), description=__doc__.splitlines()[0])
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a spiking network with lava-dl and save model.pt")
    add_training_options(p)
    add_init_option(p)
    add_validation_option(p)
    add_output_options(p, Path("model.pt"))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "prune",
        help="prune and fine-tune a trained model.pt with the schedule of train --prune",
        description="Prune and fine-tune a trained, unpruned model.pt exactly as 'train --prune' would have "
        "after training it: fine-tuning reuses the training settings the checkpoint records.",
    )
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT)
    add_pruning_options(p, required=True)
    add_device_option(p, "fine-tuning")
    add_output_options(p, None)
    p.set_defaults(func=cmd_prune)

    p = _net_command(sub, "eval", "evaluate an exported .net on its test set", "model.pt to compare spikes with")
    add_samples_option(p, f"default: all with --backend sim; with --backend lava, {LAVA_SAMPLES}", None)
    add_eval_batch_size(p)
    p.add_argument(
        "--backend",
        default="sim",
        choices=BACKENDS,
        help="sim: our bit-exact simulator (fast); lava: Lava processes, Loihi2SimCfg fixed_pt (the reference)",
    )
    add_device_option(p, "the checkpoint's fixed-point model")
    p.set_defaults(func=cmd_eval)

    p = _net_command(
        sub,
        "run",
        "classify test samples with the .net as one Lava Classifier process on a target",
        "model.pt whose fixed-point predictions must be reproduced",
    )
    add_samples_option(p, f"default: {LAVA_SAMPLES}", None)
    p.add_argument(
        "--target",
        default="cpu",
        choices=TARGETS,
        help="cpu: Lava's bit-accurate fixed-point CPU models; loihi2: Loihi 2 through lava-loihi",
    )
    add_device_option(p, "the checkpoint's fixed-point model")
    p.set_defaults(func=cmd_run)

    p = _net_command(
        sub,
        "report",
        "per-layer memory, spikes and SynOps of a .net; Loihi 2 core and energy ESTIMATES",
        "its model.pt: trained bits and sizes before pruning",
    )
    add_samples_option(p, "test samples whose spikes and SynOps are measured (default %(default)s)", 32)
    add_eval_batch_size(p)
    add_result_options(p, "memory, SynOps and output spike raster PNGs")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "diagnose",
        help="the same test samples through every stage, float to Lava: where and why they diverge, layer by layer",
        description="Run the first test samples through the float model, the fake-quantized training model, the "
        "fixed-point model, and (with the .net) the simulator and Lava; compare every layer's spikes, name known "
        "causes (a file edited after export, weights netx changes, Lava's 24-bit limits, silent or saturated "
        "layers). Exit status 0: healthy; 1: problems found.",
    )
    p.add_argument("checkpoint", type=Path, help=CHECKPOINT)
    p.add_argument("net", type=Path, nargs="?", help=f"{NET}, exported from it (optional)")
    add_samples_option(p, "test samples (default %(default)s; every stage's spikes are kept in memory)", 32)
    p.add_argument(
        "--lava-samples",
        type=count(0),
        default=4,
        metavar="M",
        help="the first M of them also run in Lava, which is slow (default %(default)s; 0: no Lava stage)",
    )
    add_result_options(p, "per-stage firing rate and divergence raster PNGs")
    add_device_option(p, "the PyTorch stages")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser(
        "demo", help="the same network in float and as QP-SNN: train, prune, export, check in Lava, compare"
    )
    add_training_options(p, arch=DEMO_ARCH, bits=4, encoding=DEMO_ENCODING)
    p.set_defaults(prune=(0.5,))  # QP-SNN by default: 4-bit hidden weights, half the channels pruned
    add_output_options(p, Path("build/demo"), resume=False)
    add_renamed(p, "--workdir", "--out")
    add_samples_option(p, "test samples run in Lava (default: all)", ALL)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "import-nir",
        help="make a model.pt of a NIR graph (from snnTorch, Norse, SpikingJelly, ... or netx_export --nir)",
        description="Map a chain of NIR nodes (Input, Affine/Linear, Conv2d, SumPool2d/AvgPool2d, Flatten, IF/LIF/"
        "CubaLIF, Output) onto lava-qpsnn layers and save them as a checkpoint that export, eval and prune take. "
        "A graph written by 'netx_export --nir' becomes its network again, exactly.",
    )
    p.add_argument("graph", type=Path, help="the .nir file")
    p.add_argument("--dataset", choices=dataset_names(), help="the data set it classifies (default: the recorded one)")
    p.add_argument("--time-steps", type=int, help="time steps per sample (default: the recorded ones, else 16)")
    p.add_argument(
        "--dt",
        type=finite_float,
        help="the time step in seconds that discretizes its time constants (default: the recorded one, else 1e-4)",
    )
    add_output_options(p, None, resume=False)
    p.set_defaults(func=cmd_import_nir)

    for command in sub.choices.values():
        add_common_options(command, suppress=True)  # --progress and --data-dir after the command name too
        command.set_defaults(options=option_strings(command))  # what an error's advice may name as its own
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if launched_by_torchrun() and args.func not in DISTRIBUTED_COMMANDS:
        print("lava_qpsnn: error: only train and prune run under torchrun: run this command alone", file=sys.stderr)
        return 2
    if args.data_dir is not None:  # read by the data loaders, in this process and in Lava's workers
        os.environ["LAVA_QPSNN_DATA"] = str(args.data_dir)
    return run_guarded("lava_qpsnn", lambda: args.func(args), args.options)
