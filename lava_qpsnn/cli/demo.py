"""``demo``: :func:`lava_qpsnn.demo.run_demo` with the training options, and its tables."""

from __future__ import annotations

import argparse

from ..demo import format_demo, run_demo
from .options import ALL
from .settings import prune_from_args, quant_from_args, training_settings

__all__ = ["cmd_demo"]


def cmd_demo(args: argparse.Namespace) -> int:
    result = run_demo(
        args.out,
        quant=quant_from_args(args),
        prune=prune_from_args(args),
        **training_settings(args),
        samples=None if args.samples == ALL else args.samples,
        force=args.force,
        device=args.device,
        progress=args.progress,
        on_step=lambda text: print(text, flush=True),
    )
    print()
    print(format_demo(result))
    return 0 if result.exact else 1
