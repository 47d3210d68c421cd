"""``report`` and ``diagnose``: what an exported network costs, and why it does not behave as trained."""

from __future__ import annotations

import argparse
import json

from ..command import option_hint
from ..report.diagnosis import diagnose, format_diagnosis
from ..report.network import format_report, report_network
from ..report.plots import DIAGNOSIS_PLOT_NAMES, check_plot_folder, write_diagnosis_plots, write_report_plots
from ..training.checkpoint import load_checkpoint
from .options import ALL

__all__ = ["cmd_report", "cmd_diagnose"]


def cmd_report(args: argparse.Namespace) -> int:
    if args.plot is not None:
        check_plot_folder(args.plot, force=args.force)  # before any work
    checkpoint = load_checkpoint(args.checkpoint) if args.checkpoint else None
    samples = None if args.samples == ALL else args.samples
    report = report_network(args.net, checkpoint=checkpoint, samples=samples, batch_size=args.eval_batch_size)
    written = write_report_plots(report, args.plot, force=args.force) if args.plot is not None else []
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    if written and not args.json:
        print(f"wrote {', '.join(map(str, written))}")
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    if args.plot is not None:
        check_plot_folder(args.plot, force=args.force, names=DIAGNOSIS_PLOT_NAMES)  # before any work
    result = diagnose(
        args.checkpoint,
        args.net,
        samples=None if args.samples == ALL else args.samples,
        lava_samples=args.lava_samples,
        device=args.device,
        progress=args.progress,
    )
    written = write_diagnosis_plots(result, args.plot, force=args.force) if args.plot is not None else []
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_diagnosis(result, lambda problem: f"{problem}{option_hint(problem, args.options)}"))
    if written and not args.json:
        print(f"wrote {', '.join(map(str, written))}")
    return 0 if result.healthy else 1
