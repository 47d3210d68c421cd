"""netx_export: write a lava-qpsnn checkpoint as a NetX HDF5 network for ``lava.lib.dl.netx``.

Run it as ``python -m netx_export model.pt [--out model.net] [--force]``. The exporter itself
lives in :mod:`lava_qpsnn.export`; this package is its command line and names its API, so
the dependency runs one way: ``netx_export`` uses ``lava_qpsnn``, never the reverse.
"""

from lava_qpsnn.export.summary import LayerSummary, format_summary
from lava_qpsnn.export.writer import export_netx

__all__ = ["export_netx", "format_summary", "LayerSummary"]
