"""What both command lines (``lava_qpsnn`` and ``netx_export``) share around their work.

:func:`run_guarded` turns every way a command can stop into one line and a Unix exit status:

- a user error (:class:`~lava_qpsnn.errors.QpsnnError`) or an OS error (a full disk, a
  folder that vanished): ``prog: error: ...``, status 2; the options of the settings the
  error names follow in brackets (``[--time-steps]``), those the running command does not
  have marked as training options (``[when training: --bits]``);
- Ctrl-C: ``prog: interrupted``, status 130 (128 + SIGINT, as shells report it); outputs are
  written to a temporary file and renamed into place, so an interrupted command leaves none;
- a closed output pipe (``... | head``): no message, status 141 (128 + SIGPIPE), as Unix
  tools end;
- a :class:`~lava_qpsnn.errors.StateLimitWarning` (a layer measured near Lava's 24-bit
  limit at export): ``prog: warning: ...``, one line, and the command goes on.

Anything else is a bug and keeps its traceback. Numeric options are parsed by
:func:`finite_float` so that NaN and infinities are usage errors before any work.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Callable, Collection

from .errors import QpsnnError, StateLimitWarning

__all__ = [
    "ArgumentParser",
    "finite_float",
    "option_strings",
    "option_hint",
    "run_guarded",
    "INTERRUPTED",
    "BROKEN_PIPE",
]

INTERRUPTED = 128 + 2  # SIGINT
BROKEN_PIPE = 128 + 13  # SIGPIPE


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (the usage text stays in ``--help``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see --help\n")


def finite_float(text: str) -> float:
    """An argparse ``type``: a float that is neither NaN nor infinite (ranges are checked by the configs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def option_strings(parser: argparse.ArgumentParser) -> frozenset[str]:
    """Every option a parser accepts (``--bits``, ``-o``, ...); argparse keeps them only in ``_actions``."""
    return frozenset(option for action in parser._actions for option in action.option_strings)


def run_guarded(prog: str, work: Callable[[], int], options: Collection[str] | None = None) -> int:
    """Run ``work`` (a command, returning its exit status) under the rules of the module docstring.

    ``options``: the options of the running command, so that an error's advice names only those
    as its own (None: every setting is named as an option).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", StateLimitWarning)
            warnings.showwarning = _one_line_warnings(prog, warnings.showwarning)
            status = work()
        sys.stdout.flush()  # a closed pipe shows here, inside the guard, not at interpreter exit
        return status
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (QpsnnError, OSError) as exc:
        print(f"{prog}: error: {exc}{option_hint(exc, options)}", file=sys.stderr)
        return 2


def option_hint(error: object, options: Collection[str] | None = None) -> str:
    """The command-line options of the settings an error (or a diagnosis problem) names
    (``time_steps`` -> `` [--time-steps]``).

    Settings that are not options of the running command are those of training (``train``, ``prune``).
    """
    flags = ["--" + name.replace("_", "-") for name in getattr(error, "settings", ())]
    if not flags:
        return ""
    own = [flag for flag in flags if options is None or flag in options]
    other = [flag for flag in flags if flag not in own]
    if other:
        own.append("when training: " + ", ".join(other))
    return f" [{', '.join(own)}]"


def _one_line_warnings(prog: str, show: Callable) -> Callable:
    """``warnings.showwarning`` that prints ours as ``prog: warning: ...`` and passes others on."""

    def showwarning(message, category, *rest) -> None:
        if issubclass(category, StateLimitWarning):
            print(f"{prog}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *rest)

    return showwarning


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush does not raise again (Python's own advice)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced by an object without a file descriptor (e.g. in tests)
        pass
