"""``eval`` and ``run``: an exported network on its test set, in the simulator or Lava, checked against PyTorch."""

from __future__ import annotations

import argparse

from ..data import encode_test_split, load_dataset
from ..evaluation import Evaluation, evaluate
from ..lava.deployment import agreement_with_pytorch, deploy
from ..lava.run import run_lava
from ..lava.sizing import BUDGET_SECONDS, RunProbe, choose_samples, format_duration
from ..lava.targets import check_target, describe_target
from ..netx import NetInfo, check_exported_from, read_net_info
from ..training.checkpoint import Checkpoint, load_checkpoint
from ..training.device import resolve_device
from .options import ALL
from .train import percent

__all__ = ["cmd_eval", "cmd_run", "LAVA_SAMPLES"]

LAVA_SAMPLES = (
    "run the first few samples, time them, then as many as fit about "
    f"{format_duration(BUDGET_SECONDS)} (the choice and the estimate for all are printed first); "
    "N: the first N; all: every test sample"
)  # the policy is lava_qpsnn.lava.sizing's


def cmd_eval(args: argparse.Namespace) -> int:
    resolve_device(args.device)
    checkpoint, info = _inputs(args)
    samples = None if args.samples in (ALL, None) else args.samples
    if args.backend == "lava":
        test_set = load_dataset(info.dataset)[1]
        samples = _lava_samples(
            args.samples,
            len(test_set),
            lambda n, chunk, on_chunk: run_lava(
                args.net,
                encode_test_split(test_set, info.encoding, n),
                samples_per_run=chunk,
                progress=False,
                on_chunk=on_chunk,
            ),
        )
    result = evaluate(
        args.net,
        backend=args.backend,
        samples=samples,
        checkpoint=checkpoint,
        progress=args.progress,
        batch_size=args.eval_batch_size,
        device=args.device,
    )
    print_evaluation(result)
    return 0 if result.spike_agreement in (None, 1.0) else 1


def cmd_run(args: argparse.Namespace) -> int:
    check_target(args.target)  # before any work, the checkpoint's too
    resolve_device(args.device)
    checkpoint, info = _inputs(args)
    samples = _lava_samples(
        args.samples,
        len(load_dataset(info.dataset)[1]),
        lambda n, chunk, on_chunk: deploy(
            args.net, target=args.target, samples=n, samples_per_run=chunk, progress=False, on_chunk=on_chunk
        ),
    )
    result = deploy(args.net, target=args.target, samples=samples, progress=args.progress)
    print(
        f"lava {args.target} ({describe_target(args.target)}): {result.samples} test samples in one Classifier run, "
        f"accuracy {percent(result.accuracy)} ({result.seconds:.1f} s)"
    )
    if checkpoint is None:
        return 0
    agreement = agreement_with_pytorch(checkpoint, result.predictions, args.device)
    print(f"predictions agree with the PyTorch fixed-point model on {percent(agreement)}")
    return 0 if agreement == 1.0 else 1


def print_evaluation(result: Evaluation) -> None:
    print(
        f"{result.backend}: {result.samples} test samples, accuracy {percent(result.accuracy)} ({result.seconds:.1f} s)"
    )
    if result.spike_agreement is not None:
        print(
            f"vs PyTorch model (accuracy {percent(result.reference_accuracy)}): predictions agree on "
            f"{percent(result.prediction_agreement)}, output spikes identical on {percent(result.spike_agreement)}"
        )
        if result.mismatched_samples:
            print(f"samples whose output spikes differ: {list(result.mismatched_samples[:20])}")


def _inputs(args: argparse.Namespace) -> tuple[Checkpoint | None, NetInfo]:
    """The optional checkpoint and the ``.net``, each read once and checked against each other before any work."""
    checkpoint = None if args.checkpoint is None else load_checkpoint(args.checkpoint)
    info = read_net_info(args.net)
    if checkpoint is not None:
        check_exported_from(checkpoint, info)
    return checkpoint, info


def _lava_samples(requested: int | str | None, total: int, probe: RunProbe) -> int:
    """The samples a Lava run of a test split of ``total`` gets (:func:`~lava_qpsnn.lava.sizing.choose_samples`),
    said with its reason and estimate before the long run."""
    choice = choose_samples(requested, total, probe)
    if choice.rate is None:
        return choice.count
    rate, budget = choice.rate, format_duration(BUDGET_SECONDS)
    what = (
        f"all {total:,} test samples"
        if choice.count == total
        else f"the first {choice.count:,} of {total:,} test samples"
    )
    why = {
        "all": "--samples all",
        "fits": f"they fit the {budget} default",
        "budget": f"as many as fit the {budget} default; --samples all: about {format_duration(rate.seconds(total))}",
    }[choice.reason]
    print(
        f"lava: {rate.per_sample:.3f} s per sample after {rate.startup:.1f} s of start-up (measured on "
        f"{rate.samples} samples): running {what}, about {format_duration(rate.seconds(choice.count))} ({why})",
        flush=True,
    )
    return choice.count
