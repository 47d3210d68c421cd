"""``--smoke``, every benchmark's tiny setting: the test suite runs it, so a change that breaks a benchmark fails there.

A smoke run goes through the whole script in seconds (digits or generated data, one epoch, one seed,
a few samples); its figures mean nothing. Without ``--out`` it writes into a new temporary folder,
never over a result in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, **tiny: object
) -> argparse.Namespace:
    """``parser``'s arguments with ``--smoke`` added, which makes ``tiny`` the defaults (options given still win)."""
    parser.add_argument(
        "--smoke", action="store_true", help="tiny settings, seconds: checks that the script runs (no result)"
    )
    args = parser.parse_args(argv)
    unknown = set(tiny) - set(vars(args))
    if unknown:  # a misspelt setting would otherwise change nothing, silently
        raise ValueError(f"smoke settings for options the parser does not have: {sorted(unknown)}")
    if args.smoke:
        parser.set_defaults(out=None, **tiny)
        args = parser.parse_args(argv)
        if args.out is None:
            args.out = Path(tempfile.mkdtemp(prefix="smoke-")) / f"{Path(parser.prog).stem}.md"
    return args
