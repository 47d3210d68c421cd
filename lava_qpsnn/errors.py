"""Typed errors. Each message is one line: what was expected, what was found, what to do.

The command-line entry points catch :class:`QpsnnError`, print its message and exit
with status 2; anything else is a bug and keeps its traceback.
"""

__all__ = [
    "QpsnnError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "ExportError",
    "OutputPathError",
    "NetxFileError",
    "NirFileError",
    "LavaRuntimeError",
    "StateLimitWarning",
    "NirMappingWarning",
]


class QpsnnError(Exception):
    """Base class of every error a user can cause and fix.

    The message speaks in library terms. ``settings`` names what fixes it as Python parameter
    names (``time_steps``); the command lines print those as their options (``[--time-steps]``).
    """

    def __init__(self, message: str = "", *, settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings = tuple(settings)


class ConfigError(QpsnnError, ValueError):
    """An option or setting is out of range or unknown."""


class DataError(QpsnnError):
    """A data set is unknown, missing or malformed."""


class CheckpointError(QpsnnError):
    """A model.pt is missing, corrupt, foreign or of another format version."""


class ExportError(QpsnnError):
    """A model cannot be written as NetX HDF5, or the output path is unusable."""


class OutputPathError(QpsnnError):
    """An output file exists (and replacing it was not allowed) or its folder is missing."""


class NetxFileError(QpsnnError):
    """A .net file is missing, not HDF5, or not a network we can run."""


class NirFileError(QpsnnError):
    """A .nir file is missing, malformed, or holds a graph that does not map onto a lava-qpsnn network."""


class LavaRuntimeError(QpsnnError):
    """Lava (or its Loihi extension) is not available for the requested run, or failed inside its runtime."""


class StateLimitWarning(UserWarning):
    """A network exports, but only measured activity (not its worst case) stays inside Lava's 24-bit state."""


class NirMappingWarning(UserWarning):
    """A NIR node maps onto Loihi's CUBA neuron, but not exactly: the message states the difference."""
