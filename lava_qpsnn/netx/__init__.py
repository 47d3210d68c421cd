"""The NetX HDF5 (``.net``) format: the one validated reader, our metadata, and file comparison.

Export writes this format, and the simulator, the Lava runs and the reports read it, all through
this package: :func:`read_netx` turns a file into the integers Lava computes with
(:class:`NetxNetwork`), :func:`read_net_info` adds what lava-qpsnn stores beside netx's layers
(data set, encoding, classes, the netx call: :mod:`~lava_qpsnn.netx.document`),
:mod:`~lava_qpsnn.netx.diff` compares two files entry by entry.
"""

from .document import netx_arguments, netx_call
from .groups import open_netx
from .layers import ConvLayer, DenseLayer, FlattenLayer, InputLayer, Layer, NetxNetwork, Neuron
from .metadata import NetInfo, check_exported_from, read_net_info
from .reader import lava_dense_weights, read_netx

__all__ = [
    "read_netx",
    "read_net_info",
    "check_exported_from",
    "netx_arguments",
    "netx_call",
    "open_netx",
    "lava_dense_weights",
    "NetInfo",
    "NetxNetwork",
    "Neuron",
    "Layer",
    "InputLayer",
    "DenseLayer",
    "ConvLayer",
    "FlattenLayer",
]
