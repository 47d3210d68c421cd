"""``python -m lava_qpsnn {train,prune,eval,run,report,diagnose,demo}``: the command line.

Every subcommand returns an exit status; user errors (:class:`~lava_qpsnn.errors.QpsnnError`) print one
line and return 2, Ctrl-C returns 130, a closed output pipe 141 (:mod:`lava_qpsnn.command`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .command import ArgumentParser, finite_float, option_hint, option_strings, run_guarded
from .data import Encoding, dataset_names, load_dataset
from .errors import ConfigError
from .evaluation import BACKENDS, Evaluation, evaluate
from .export.fixed_point import fixed_point_network
from .files import check_output_path
from .lava.sizing import BUDGET_SECONDS, PROBE_SAMPLES, RunProbe, format_duration, measure_rate, sized_samples
from .lava.targets import TARGETS, check_target, describe_target
from .netx import check_exported_from, read_net_info
from .pipeline import prune_checkpoint, train_checkpoint
from .table import format_table
from .training import distributed
from .training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .training.device import DEVICES, resolve_device
from .training.loop import LOSSES, SCHEDULES, TrainConfig
from .training.prune import CRITERIA, PruneConfig
from .training.quantize import GAMMAS, GRIDS, QUANTIZERS, QuantConfig, synapse_bits
from .training.resume import state_path
from .training.specs import NORMS, PRESETS, NeuronConfig

__all__ = ["main", "ArgumentParser"]


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def cmd_train(args: argparse.Namespace) -> int:
    state = _run_state_path(args)
    with _ranks(args, state, args.dataset):
        checkpoint = _train_from_args(args, state=state)
        _save_run(checkpoint, args, state)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    state = _run_state_path(args)
    checkpoint = load_checkpoint(args.checkpoint)
    prune = _prune_from_args(args)
    with _ranks(args, state, checkpoint.dataset):
        if checkpoint.training is None:
            print(f"note: {args.checkpoint} records no training settings; fine-tuning uses the defaults of 'train'")
        pruned = prune_checkpoint(checkpoint, prune, device=args.device, state=state, progress=args.progress)
        _save_run(pruned, args, state)
    return 0


@contextlib.contextmanager
def _ranks(args: argparse.Namespace, state: Path, dataset: str) -> Iterator[None]:
    """Under torchrun, join the other ranks (:mod:`~lava_qpsnn.training.distributed`) for the command's work.

    Every rank must have been given the same options and see the same saved run ``state`` (or
    none); each machine's first rank loads ``dataset`` before the others (one writer per data
    cache); ``args.device`` becomes this rank's device (its own GPU on ``cuda``); only rank 0
    prints and writes files (the others' stdout is discarded). Without torchrun, nothing changes.
    """
    with distributed.session(resolve_device(args.device)) as device:
        if distributed.world_size() > 1:  # one process: no state to hash, no data set to load twice
            options = {name: str(value) for name, value in vars(args).items() if name not in ("func", "options")}
            distributed.check_same("options", json.dumps(options, sort_keys=True))
            saved = hashlib.sha256(state.read_bytes()).hexdigest() if state.exists() else "none"
            shared = f"every rank must see the same {state} to resume: put --out on a file system all ranks share"
            distributed.check_same("saved run state", saved, fix=shared)
            with distributed.node_leader_first():
                load_dataset(dataset)
        args.device = str(device)
        with contextlib.ExitStack() as stack:
            if not distributed.is_main():
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            yield


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
    if not distributed.is_main():
        return
    save_checkpoint(checkpoint, args.out, force=args.force)
    state.unlink(missing_ok=True)
    m = _split_metrics(checkpoint.metrics)
    if checkpoint.quant is not None:
        bits = synapse_bits(checkpoint.build())
        note = "" if checkpoint.quant.bits in bits else " (all are first/last layers: add --first-last-bits same)"
        print(f"weight bits per conv/dense layer: {bits}{note}")
    if checkpoint.pruning is not None:
        print_pruning(checkpoint)
    print(
        f"{m['split']} accuracy {_percent(m['test_accuracy'])} (train {_percent(m.get('train_accuracy'))}), "
        f"fixed-point network as exported {_percent(m['fixed_point_test_accuracy'])}; saved {args.out}"
    )


def _split_metrics(metrics: dict[str, float]) -> dict:
    """``metrics`` under their test-split names, and ``split``: the split they were measured on.

    A run with ``--validation`` names them after the validation split (the test split unread).
    """
    split = "validation" if "validation_accuracy" in metrics else "test"
    return {"split": split, **{name.replace("validation", "test"): value for name, value in metrics.items()}}


def print_pruning(checkpoint: Checkpoint) -> None:
    record, m = checkpoint.pruning, _split_metrics(checkpoint.metrics)
    print(
        f"pruned ({record['criterion']}, ratios {record['layer_ratios']}): widths {record['widths_before'][:-1]} -> "
        f"{list(checkpoint.model.widths[:-1])}; {m['split']} accuracy unpruned "
        f"{_percent(m['unpruned_test_accuracy'])}, "
        f"masked before fine-tuning {_percent(m['pruned_test_accuracy_before_finetune'])}"
    )
    for layer in record["capped_layers"]:
        print(f"note: the ratio of prunable layer {layer} would remove every channel; kept one")


def _reject_options(args: argparse.Namespace, options: tuple[str, ...], needed: str) -> None:
    """One-line error for options given without the option they refine (``needed``, e.g. ``--bits 4``)."""
    given = [f"--{n.replace('_', '-')}" for n in options if getattr(args, n) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply with {needed.split()[0]}: add e.g. {needed}")


def _prune_from_args(args: argparse.Namespace) -> PruneConfig | None:
    if args.prune is None:
        _reject_options(args, ("criterion", "finetune_epochs", "prune_steps", "calibration_samples"), "--prune 0.5")
        return None
    defaults = PruneConfig((0.0,))
    return PruneConfig(
        args.prune,
        criterion=args.criterion or defaults.criterion,
        finetune_epochs=defaults.finetune_epochs if args.finetune_epochs is None else args.finetune_epochs,
        steps=defaults.steps if args.prune_steps is None else args.prune_steps,
        calibration_samples=(
            defaults.calibration_samples if args.calibration_samples is None else args.calibration_samples
        ),
    )


def _quant_from_args(args: argparse.Namespace) -> QuantConfig | None:
    if args.bits is None:
        _reject_options(args, ("quantizer", "first_last_bits", "gamma", "grid"), "--bits 4")
        return None
    defaults = QuantConfig(args.bits)
    first_last = {None: defaults.first_last_bits, "same": None}.get(args.first_last_bits, args.first_last_bits)
    quantizer, gamma = args.quantizer or defaults.quantizer, args.gamma or defaults.gamma
    return QuantConfig(args.bits, quantizer, first_last, gamma, grid=args.grid)


def _train_from_args(args: argparse.Namespace, state: Path | None = None) -> Checkpoint:
    quant = _quant_from_args(args)
    return train_checkpoint(
        dataset=args.dataset,
        arch=args.arch,
        norm=args.norm,
        encoding=Encoding(time_steps=args.time_steps, seed=args.seed),
        config=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            loss=args.loss,
            schedule=args.schedule,
            weight_decay=args.weight_decay,
            init_gain=args.init_gain,
            val_samples=args.val_samples,
            validation=args.validation,
        ),
        neuron=NeuronConfig(threshold=args.threshold, tau_grad=args.tau_grad, scale_grad=args.scale_grad),
        quant=quant,
        prune=_prune_from_args(args),
        progress=args.progress,
        device=args.device,
        state=state,
    )


def print_evaluation(result: Evaluation) -> None:
    accuracy = _percent(result.accuracy)
    print(f"{result.backend}: {result.samples} test samples, accuracy {accuracy} ({result.seconds:.1f} s)")
    if result.spike_agreement is not None:
        print(
            f"vs PyTorch model (accuracy {_percent(result.reference_accuracy)}): predictions agree on "
            f"{_percent(result.prediction_agreement)}, output spikes identical on {_percent(result.spike_agreement)}"
        )
        if result.mismatched_samples:
            print(f"samples whose output spikes differ: {list(result.mismatched_samples[:20])}")


def _checked_checkpoint(args: argparse.Namespace) -> Checkpoint | None:
    """``--checkpoint``, loaded and checked against the ``.net`` before any work."""
    if args.checkpoint is None:
        return None
    checkpoint = load_checkpoint(args.checkpoint)
    info = read_net_info(args.net)
    check_exported_from(checkpoint, info)
    return checkpoint


def _lava_samples(args: argparse.Namespace, probe: RunProbe) -> int:
    """The samples a Lava run gets: ``--samples N`` as given; otherwise the first few are run and
    timed, and then all samples run (``all``) or as many as are estimated to fit :data:`BUDGET_SECONDS`.
    Says what it chose and why, with the estimate, before the long run."""
    if isinstance(args.samples, int):
        return args.samples
    total = len(load_dataset(read_net_info(args.net).dataset)[1])
    rate = measure_rate(probe, min(PROBE_SAMPLES, total))
    count = total if args.samples == "all" else sized_samples(total, rate)
    budget = format_duration(BUDGET_SECONDS)
    if args.samples == "all":
        what, why = f"all {total:,} test samples", "--samples all"
    elif count == total:
        what, why = f"all {total:,} test samples", f"they fit the {budget} default"
    else:
        what = f"the first {count:,} of {total:,} test samples"
        why = f"as many as fit the {budget} default; --samples all: about {format_duration(rate.seconds(total))}"
    print(
        f"lava: {rate.per_sample:.3f} s per sample after {rate.startup:.1f} s of start-up (measured on "
        f"{rate.samples} samples): running {what}, about {format_duration(rate.seconds(count))} ({why})",
        flush=True,
    )
    return count


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import encode_test_split
    from .lava.run import run_lava

    resolve_device(args.device)
    checkpoint = _checked_checkpoint(args)
    samples = None if args.samples == "all" else args.samples
    if args.backend == "lava":
        info = read_net_info(args.net)
        test_set = load_dataset(info.dataset)[1]
        samples = _lava_samples(
            args,
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
        batch_size=args.batch_size,
        device=args.device,
    )
    print_evaluation(result)
    return 0 if result.spike_agreement in (None, 1.0) else 1


def cmd_run(args: argparse.Namespace) -> int:
    from .lava.deploy import deploy

    check_target(args.target)  # before any work, the checkpoint's too
    resolve_device(args.device)
    checkpoint = _checked_checkpoint(args)
    samples = _lava_samples(
        args,
        lambda n, chunk, on_chunk: deploy(
            args.net, target=args.target, samples=n, samples_per_run=chunk, progress=False, on_chunk=on_chunk
        ),
    )
    result = deploy(args.net, target=args.target, samples=samples, progress=args.progress)
    print(
        f"lava {args.target} ({describe_target(args.target)}): {result.samples} test samples in one Classifier run, "
        f"accuracy {_percent(result.accuracy)} ({result.seconds:.1f} s)"
    )
    if checkpoint is None:
        return 0
    agreement = _agreement_with_pytorch(checkpoint, result.predictions, args.device)
    print(f"predictions agree with the PyTorch fixed-point model on {_percent(agreement)}")
    return 0 if agreement == 1.0 else 1


def _agreement_with_pytorch(checkpoint: Checkpoint, predictions: np.ndarray, device: str) -> float:
    """Fraction of the first test samples on which ``predictions`` equal the checkpoint's fixed-point model's."""
    from .data import stream_test_split
    from .training.loop import classify, output_spikes

    stream = stream_test_split(load_dataset(checkpoint.dataset)[1], checkpoint.encoding).first(len(predictions))
    spikes = output_spikes(fixed_point_network(checkpoint), stream, device=device)
    return float((classify(spikes) == predictions).mean())


DEMO_ARCH = "128-128-10"
QUANT_OPTIONS = ("bits", "quantizer", "first_last_bits", "gamma", "grid")
PRUNE_OPTIONS = ("prune", "criterion", "finetune_epochs", "prune_steps", "calibration_samples")


def cmd_demo(args: argparse.Namespace) -> int:
    """The method in one run: the same network in float and as QP-SNN, both exported and measured side by side,
    every output spike of the QP-SNN one checked in Lava, and that one deployed as a Lava Classifier process."""
    from .export.writer import export_netx
    from .lava.deploy import deploy
    from .report.network import report_network

    _quant_from_args(args), _prune_from_args(args)  # the QP-SNN settings fail here, before any work
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    plain = argparse.Namespace(**{**vars(args), **dict.fromkeys(QUANT_OPTIONS + PRUNE_OPTIONS)})
    what = f"{args.arch} on {args.dataset}, {args.epochs} epochs, {args.time_steps} time steps"
    print(f"[1/5] training the float network ({what})")
    float_ckpt = _train_from_args(plain)
    criterion = args.criterion or "svs"
    print(f"[2/5] the same as QP-SNN: {args.bits}-bit hidden weights, pruning {_ratio_text(args.prune)} ({criterion})")
    qpsnn_ckpt = _train_from_args(args)
    print(f"[3/5] exporting both to NetX HDF5 in {workdir}")
    files = {}
    for name, checkpoint in (("float", float_ckpt), ("qpsnn", qpsnn_ckpt)):
        save_checkpoint(checkpoint, workdir / f"{name}.pt", force=True)
        files[name] = workdir / f"{name}.net"
        export_netx(checkpoint, files[name], force=True)
    print("[4/5] every output spike of qpsnn.net in Lava (Loihi2SimCfg, fixed_pt) and in the simulator vs PyTorch")
    lava = evaluate(
        files["qpsnn"],
        backend="lava",
        samples=args.samples,
        checkpoint=qpsnn_ckpt,
        progress=args.progress,
        device=args.device,
    )
    sim = evaluate(files["qpsnn"], backend="sim", samples=args.samples, checkpoint=qpsnn_ckpt, device=args.device)
    print("[5/5] deploying qpsnn.net as one Lava Classifier process (encoder -> netx -> readout); measuring both")
    deployed = deploy(files["qpsnn"], samples=args.samples, progress=args.progress)
    deployed_agreement = _agreement_with_pytorch(qpsnn_ckpt, deployed.predictions, args.device)
    reports = {
        name: report_network(files[name], checkpoint=ckpt, samples=deployed.samples)
        for name, ckpt in (("float", float_ckpt), ("qpsnn", qpsnn_ckpt))
    }
    print()
    print(format_table(["", "float", "QP-SNN"], _demo_comparison(float_ckpt, qpsnn_ckpt, reports)))
    print()
    print(
        format_table(
            ["QP-SNN in Lava", "value"],
            [
                [f"Lava fixed_pt accuracy ({lava.samples} samples)", _percent(lava.accuracy)],
                ["identical output spikes Lava vs PyTorch", _percent(lava.spike_agreement)],
                [f"simulator accuracy, time ({sim.samples} samples)", f"{_percent(sim.accuracy)}, {sim.seconds:.2f} s"],
                ["identical output spikes simulator vs PyTorch", _percent(sim.spike_agreement)],
                [f"Lava time ({lava.samples} samples)", f"{lava.seconds:.1f} s"],
                [
                    f"Classifier process accuracy, time ({deployed.samples} samples, one run)",
                    f"{_percent(deployed.accuracy)}, {deployed.seconds:.1f} s",
                ],
                ["prediction agreement Classifier vs PyTorch", _percent(deployed_agreement)],
            ],
        )
    )
    return 0 if lava.spike_agreement == sim.spike_agreement == deployed_agreement == 1.0 else 1


def _ratio_text(ratios: tuple[float, ...]) -> str:
    return ", ".join(f"{r:.0%}" for r in ratios) + (" of each hidden layer's channels" if len(ratios) == 1 else "")


def _demo_comparison(float_ckpt: Checkpoint, qpsnn_ckpt: Checkpoint, reports: dict) -> list[list[str]]:
    """Rows of the demo's float vs QP-SNN table."""
    pair = (float_ckpt, qpsnn_ckpt)
    a, b = reports["float"], reports["qpsnn"]

    def bits(report) -> str:
        """Stored bits per synapse layer: the trained grid's, or for lava-dl's 8-bit export what netx keeps."""
        return "-".join(str(layer.summary.weight_bits) for layer in report.layers if layer.summary.params)

    return [
        ["hidden widths", *("-".join(map(str, c.model.widths[:-1])) for c in pair)],
        ["weight bits per layer (as stored)", bits(a), bits(b)],
        ["test accuracy, trained model", *(_percent(c.metrics["test_accuracy"]) for c in pair)],
        ["test accuracy, exported integer network", *(_percent(c.metrics["fixed_point_test_accuracy"]) for c in pair)],
        ["packed weight memory", *(f"{r.packed_bytes / 1024:.2f} KB" for r in (a, b))],
        [
            "smaller than the float network in float32",
            f"{a.float32_bytes_before / a.packed_bytes:.1f}x",
            f"{a.float32_bytes_before / b.packed_bytes:.1f}x",
        ],
        ["SynOps per sample (measured)", *(f"{r.synops_per_sample:,.0f}" for r in (a, b))],
        ["spikes per sample (measured)", *(f"{r.spikes_per_sample:,.0f}" for r in (a, b))],
        ["Loihi 2 neuro cores, chips (ESTIMATE)", *(f"{r.cores}, {r.chips}" for r in (a, b))],
        ["energy per inference (ESTIMATE, Loihi 1 figures)", *(f"{r.energy.joules * 1e9:,.0f} nJ" for r in (a, b))],
    ]


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from .report.network import format_report, report_network
    from .report.plots import check_plot_folder, write_plots

    if args.plot is not None:
        check_plot_folder(args.plot, force=args.force)  # before any work
    checkpoint = load_checkpoint(args.checkpoint) if args.checkpoint else None
    report = report_network(args.net, checkpoint=checkpoint, samples=args.samples, batch_size=args.batch_size)
    written = write_plots(report, args.plot, force=args.force) if args.plot is not None else []
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    if written and not args.json:
        print(f"wrote {', '.join(map(str, written))}")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    import json

    from .report.diagnosis import diagnose, format_diagnosis
    from .report.plots import DIAGNOSIS_PLOT_NAMES, check_plot_folder, write_diagnosis_plots

    if args.plot is not None:
        check_plot_folder(args.plot, force=args.force, names=DIAGNOSIS_PLOT_NAMES)  # before any work
    result = diagnose(
        args.checkpoint,
        args.net,
        samples=args.samples,
        lava_samples=args.lava_samples,
        device=args.device,
        progress=args.progress,
    )
    written = write_diagnosis_plots(result, args.plot, force=args.force) if args.plot is not None else []
    advice = lambda problem: f"{problem}{option_hint(problem, args.options)}"  # noqa: E731
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_diagnosis(result, advice))
    if written and not args.json:
        print(f"wrote {', '.join(map(str, written))}")
    return 0 if result.healthy else 1


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return int(text)

    return parse


def _first_last_bits(text: str) -> int | str:
    if text == "same":  # the first and last layers use --bits too
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1..8 or 'same', got {text!r}") from None


def _samples(text: str) -> int | str:
    """``--samples`` of a Lava run: a count >= 1 or 'all'."""
    if text == "all":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of samples >= 1 or 'all', got {text!r}")
    return int(text)


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(finite_float(r) for r in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected ratios like 0.5 or 0.3,0.6, got {text!r}") from None


def _add_training_options(parser: argparse.ArgumentParser, *, epochs: int) -> None:
    parser.add_argument("--dataset", default="digits", choices=dataset_names())
    parser.add_argument(
        "--arch",
        default="mlp",
        metavar="SPEC",
        help="layers, e.g. 16c3-p2-32c3-p2-128-10 (NcK[sS][gG] conv, pK pooling, N dense; the last is the classes), "
        f"or a preset: {', '.join(f'{k} ({v.format(classes=10)})' for k, v in PRESETS.items())}",
    )
    parser.add_argument("--norm", default="none", choices=NORMS, help="bn: BatchNorm folded into weights and bias")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--time-steps", type=int, default=16, help="time steps per sample (T)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=finite_float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, shuffling and spike encoding")
    _add_device_option(parser)
    parser.add_argument(
        "--val-samples",
        type=int,
        default=TrainConfig.val_samples,
        metavar="N",
        help="accuracy after every epoch on a fixed subset of N training samples (0: none; default %(default)s); "
        "the test split is read only at the end",
    )
    t = parser.add_argument_group("training recipe (defaults chosen on a validation split)")
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
        "--init-gain",
        type=finite_float,
        default=TrainConfig.init_gain,
        help="re-draw initial weights with std gain * threshold / sqrt(fan_in) (default: slayer's initialisation)",
    )
    t.add_argument("--threshold", type=finite_float, default=NeuronConfig.threshold, help="neuron threshold")
    t.add_argument(
        "--tau-grad", type=finite_float, default=NeuronConfig.tau_grad, help="width of slayer's surrogate gradient"
    )
    t.add_argument(
        "--scale-grad", type=finite_float, default=NeuronConfig.scale_grad, help="height of slayer's surrogate gradient"
    )
    q = parser.add_argument_group("quantization (QP-SNN); without --bits: slayer's default 8-bit hook")
    q.add_argument("--bits", type=int, help="weight bits of the hidden layers, 1..8")
    q.add_argument("--quantizer", choices=QUANTIZERS, help="QP-SNN baseline (Eqs 4-6) or ReScaW (default)")
    q.add_argument(
        "--first-last-bits",
        type=_first_last_bits,
        help="bits of the first and last layers (default 8: the paper keeps them in float, Loihi has no float "
        "weights), or 'same' for --bits",
    )
    q.add_argument(
        "--gamma", choices=GAMMAS, help="ReScaW scale of each layer (default: mean |W| up to 2 bits, max |W| from 3)"
    )
    q.add_argument(
        "--grid",
        choices=GRIDS,
        help="levels: symmetric (with zero; b signed bits on Loihi; default from 2 bits) or zero-free "
        "(the paper's, b + 1 signed bits below 8; the only 1-bit grid)",
    )
    _add_pruning_options(parser, required=False)


def _add_pruning_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    p = parser.add_argument_group("structured pruning (QP-SNN): score once, prune, fine-tune, compact")
    p.add_argument(
        "--prune",
        type=_ratios,
        required=required,
        metavar="R[,R...]",
        help="fraction of channels to remove in [0, 1): one for every prunable layer, or one per layer",
    )
    p.add_argument("--criterion", choices=CRITERIA, help="channel score (default svs; sca = QP-SNN baseline)")
    p.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs after pruning (default 10)")
    p.add_argument("--prune-steps", type=int, help="prune in N equal increments (default 1: one-shot, the paper's)")
    p.add_argument("--calibration-samples", type=int, help="training samples the scores use (default 640)")


def _add_device_option(parser: argparse.ArgumentParser, what: str = "training") -> None:
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help=f"where PyTorch runs {what} (auto: cuda if PyTorch sees a GPU, else cpu; default %(default)s)",
    )


def _add_validation_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validation",
        type=_fraction,
        metavar="F",
        help="hold out a fixed, stratified fraction F of the training split (e.g. 0.1), train on the rest and "
        "measure every accuracy on the held-out part, never reading the test split: for choosing settings",
    )


def _fraction(text: str) -> float:
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.1, got {text!r}")
    return value


def _add_output_options(parser: argparse.ArgumentParser, default: Path | None) -> None:
    """--out, --force and --resume of a command that trains and writes a checkpoint."""
    parser.add_argument("--out", type=Path, default=default, required=default is None, help="checkpoint to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run whose state OUT.partial holds (saved after every epoch; "
        "the same options are needed, and the result equals an uninterrupted run's)",
    )


def _net_command(
    sub,
    name: str,
    description: str,
    *,
    samples: str,
    checkpoint: str,
    default_samples: int | None = None,
    sample_count: Callable[[str], int | str] = int,
) -> argparse.ArgumentParser:
    """A subcommand on an exported network and the first test samples, optionally with its checkpoint."""
    p = sub.add_parser(name, help=description)
    p.add_argument("net", type=Path, help=".net written by 'python -m netx_export'")
    p.add_argument("--samples", type=sample_count, default=default_samples, metavar="N", help=samples)
    p.add_argument("--checkpoint", type=Path, help=checkpoint)
    return p


def _add_result_options(parser: argparse.ArgumentParser, plots: str) -> None:
    """--json, --plot and --force of a command that prints a result and can draw it."""
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    parser.add_argument("--plot", type=Path, metavar="DIR", help=f"write {plots} into DIR")
    parser.add_argument("--force", action="store_true", help="replace the PNGs of an earlier --plot in DIR")


def _add_batch_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size",
        type=int,
        help="test samples encoded and simulated at a time (default: about 256 MB of tensors for the largest layer); "
        "results do not depend on it",
    )


LAVA_SAMPLES = (
    "run the first few samples, time them, then as many as fit about "
    f"{format_duration(BUDGET_SECONDS)} (the choice and the estimate for all are printed first); "
    "N: the first N; all: every test sample"
)  # the policy is lava_qpsnn.lava.sizing's


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m lava_qpsnn", description=__doc__.splitlines()[0])
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where downloaded data (MNIST) is cached (default: $LAVA_QPSNN_DATA, else ~/.cache/lava-qpsnn)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a spiking network with lava-dl and save model.pt")
    _add_training_options(p, epochs=20)
    _add_validation_option(p)
    _add_output_options(p, Path("model.pt"))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "prune",
        help="prune and fine-tune a trained model.pt with the schedule of train --prune",
        description="Prune and fine-tune a trained, unpruned model.pt exactly as 'train --prune' would have "
        "after training it: fine-tuning reuses the training settings the checkpoint records.",
    )
    p.add_argument("checkpoint", type=Path, help="trained model.pt written by 'python -m lava_qpsnn train'")
    _add_pruning_options(p, required=True)
    _add_device_option(p, "fine-tuning")
    _add_output_options(p, None)
    p.set_defaults(func=cmd_prune)

    p = _net_command(
        sub,
        "eval",
        "evaluate an exported .net on its test set",
        samples=f"N or all. Default: all with --backend sim; with --backend lava, {LAVA_SAMPLES}",
        checkpoint="model.pt to compare spikes and predictions with",
        sample_count=_samples,
    )
    _add_batch_size(p)
    p.add_argument(
        "--backend",
        default="sim",
        choices=BACKENDS,
        help="sim: our bit-exact simulator (fast); lava: Lava processes, Loihi2SimCfg fixed_pt (the reference)",
    )
    _add_device_option(p, "the checkpoint's fixed-point model")
    p.set_defaults(func=cmd_eval)

    p = _net_command(
        sub,
        "run",
        "classify test samples with the .net as one Lava Classifier process on a target",
        samples=f"N or all. Default: {LAVA_SAMPLES}",
        checkpoint="model.pt whose fixed-point predictions must be reproduced",
        sample_count=_samples,
    )
    p.add_argument(
        "--target",
        default="cpu",
        choices=TARGETS,
        help="cpu: Lava's bit-accurate fixed-point CPU models; loihi2: Loihi 2 through lava-loihi",
    )
    _add_device_option(p, "the checkpoint's fixed-point model")
    p.set_defaults(func=cmd_run)

    p = _net_command(
        sub,
        "report",
        "per-layer memory, spikes and SynOps of a .net; Loihi 2 core and energy ESTIMATES",
        samples="test samples whose spikes and SynOps are measured",
        checkpoint="its model.pt: trained bits and sizes before pruning",
        default_samples=32,
    )
    _add_batch_size(p)
    _add_result_options(p, "memory, SynOps and output spike raster PNGs")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "diagnose",
        help="the same test samples through every stage, float to Lava: where and why they diverge, layer by layer",
        description="Run the first test samples through the float model, the fake-quantized training model, the "
        "fixed-point model, and (with the .net) the simulator and Lava; compare every layer's spikes, name known "
        "causes (a file edited after export, weights netx changes, Lava's 24-bit limits, silent or saturated "
        "layers). Exit status 0: healthy; 1: problems found.",
    )
    p.add_argument("checkpoint", type=Path, help="model.pt")
    p.add_argument("net", type=Path, nargs="?", help="the .net exported from it (optional)")
    p.add_argument("--samples", type=_count(1), default=32, metavar="N", help="test samples (default %(default)s)")
    p.add_argument(
        "--lava-samples",
        type=_count(0),
        default=4,
        metavar="M",
        help="the first M of them also run in Lava, which is slow (default %(default)s; 0: no Lava stage)",
    )
    _add_result_options(p, "per-stage firing rate and divergence raster PNGs")
    _add_device_option(p, "the PyTorch stages")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser(
        "demo", help="the same network in float and as QP-SNN: train, prune, export, check in Lava, compare"
    )
    _add_training_options(p, epochs=20)
    p.add_argument("--workdir", type=Path, default=Path("build/demo"), help="where the .pt and .net files go")
    p.add_argument("--samples", type=int, help="test samples to run in Lava (default: all)")
    # the demo reports on the test split; QP-SNN settings unless given
    p.set_defaults(func=cmd_demo, validation=None, arch=DEMO_ARCH, bits=4, prune=(0.5,))
    for command in sub.choices.values():  # what an error's advice may name as this command's own options
        command.set_defaults(options=option_strings(command))
    return parser


DISTRIBUTED_COMMANDS = (cmd_train, cmd_prune)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if distributed.launched_by_torchrun() and args.func not in DISTRIBUTED_COMMANDS:
        print("lava_qpsnn: error: only train and prune run under torchrun: run this command alone", file=sys.stderr)
        return 2
    if args.data_dir is not None:  # read by the data loaders, in this process and in Lava's workers
        os.environ["LAVA_QPSNN_DATA"] = str(args.data_dir)
    return run_guarded("lava_qpsnn", lambda: args.func(args), args.options)
