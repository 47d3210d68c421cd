"""netx_export: write a lava-qpsnn checkpoint as a NetX HDF5 network for ``lava.lib.dl.netx``.

Run it as ``python -m netx_export model.pt [-o model.net] [--force]``.
"""

from lava_qpsnn.lava_compat import patch_lava

from .writer import LayerSummary, export_netx

__all__ = ["export_netx", "LayerSummary"]

patch_lava()
