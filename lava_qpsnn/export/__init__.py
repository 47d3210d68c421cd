"""Export: a checkpoint written as a NetX HDF5 (``.net``) file that unmodified ``lava.lib.dl.netx`` loads.

:mod:`~lava_qpsnn.export.fixed_point` makes the exact integer network a trained network deploys
as, :mod:`~lava_qpsnn.export.writer` writes it with lava-dl's own block writers and the metadata
of :mod:`lava_qpsnn.netx`, :mod:`~lava_qpsnn.export.limits` checks it against Lava's 24-bit
neuron state before it is written, :mod:`~lava_qpsnn.export.summary` is the per-layer table.
The command line is ``python -m netx_export``.
"""

from .fixed_point import fixed_point_model, to_fixed_point
from .summary import LayerSummary, format_summary
from .writer import export_netx

__all__ = ["export_netx", "fixed_point_model", "to_fixed_point", "format_summary", "LayerSummary"]
