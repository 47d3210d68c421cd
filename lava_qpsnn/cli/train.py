"""``train`` and ``prune``: settings -> a trained (and pruned) checkpoint, resumable, under torchrun too."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..files import check_output_path
from ..pipeline import prune_checkpoint, train_checkpoint
from ..training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..training.device import resolve_device
from ..training.distributed import is_main, ranks
from ..training.quantize import synapse_bits
from ..training.resume import state_path
from .settings import prune_from_args, quant_from_args, training_settings

__all__ = ["cmd_train", "cmd_prune", "percent", "split_metrics"]


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def cmd_train(args: argparse.Namespace) -> int:
    quant, prune = quant_from_args(args), prune_from_args(args)  # bad settings fail before any work
    init = load_checkpoint(args.init) if args.init is not None else None
    settings = training_settings(args, init)
    state = _run_state_path(args)
    with ranks(args.device, _options_of(args), state, settings["dataset"]) as device:
        checkpoint = train_checkpoint(
            **settings,
            quant=quant,
            prune=prune,
            progress=args.progress,
            device=device,
            state=state,
        )
        _save_run(checkpoint, args, state)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    state = _run_state_path(args)
    checkpoint = load_checkpoint(args.checkpoint)
    prune = prune_from_args(args)
    with ranks(args.device, _options_of(args), state, checkpoint.dataset) as device:
        if checkpoint.training is None:
            print(f"note: {args.checkpoint} records no training settings; fine-tuning uses the defaults of 'train'")
        pruned = prune_checkpoint(checkpoint, prune, device=device, state=state, progress=args.progress)
        _save_run(pruned, args, state)
    return 0


def _options_of(args: argparse.Namespace) -> dict[str, str]:
    """The command's options as text: every rank under torchrun must have been given the same."""
    return {name: str(value) for name, value in vars(args).items() if name not in ("func", "options")}


def _run_state_path(args: argparse.Namespace) -> Path:
    """Check the output, the device and the saved state of an interrupted run before any work."""
    check_output_path(args.out, force=args.force)
    resolve_device(args.device)
    state = state_path(args.out)
    if state.exists() and not args.resume:
        raise ConfigError(f"{state} holds an interrupted run: pass --resume to continue it, or delete it to start over")
    return state


def _save_run(checkpoint: Checkpoint, args: argparse.Namespace, state: Path) -> None:
    """Write the finished run's checkpoint, then drop its saved state; print what it achieved (rank 0 only)."""
    if not is_main():
        return
    save_checkpoint(checkpoint, args.out, force=args.force)
    state.unlink(missing_ok=True)
    m = split_metrics(checkpoint.metrics)
    if checkpoint.quant is not None:
        bits = synapse_bits(checkpoint.build())
        note = "" if checkpoint.quant.bits in bits else " (all are first/last layers: add --first-last-bits same)"
        print(f"weight bits per conv/dense layer: {bits}{note}")
    if checkpoint.pruning is not None:
        _print_pruning(checkpoint)
    print(
        f"{m['split']} accuracy {percent(m['test_accuracy'])} (train {percent(m.get('train_accuracy'))}), "
        f"fixed-point network as exported {percent(m['fixed_point_test_accuracy'])}; saved {args.out}"
    )


def split_metrics(metrics: dict[str, float]) -> dict:
    """``metrics`` under their test-split names, and ``split``: the split they were measured on.

    A run with ``--validation`` names them after the validation split (the test split unread).
    """
    split = "validation" if "validation_accuracy" in metrics else "test"
    return {"split": split, **{name.replace("validation", "test"): value for name, value in metrics.items()}}


def _print_pruning(checkpoint: Checkpoint) -> None:
    record, m = checkpoint.pruning, split_metrics(checkpoint.metrics)
    print(
        f"pruned ({record['criterion']}, ratios {record['layer_ratios']}): widths {record['widths_before'][:-1]} -> "
        f"{list(checkpoint.model.widths[:-1])}; {m['split']} accuracy unpruned "
        f"{percent(m.get('unpruned_test_accuracy'))}, "
        f"masked before fine-tuning {percent(m.get('pruned_test_accuracy_before_finetune'))}"
    )
    for layer in record["capped_layers"]:
        print(f"note: the ratio of prunable layer {layer} would remove every channel; kept one")
