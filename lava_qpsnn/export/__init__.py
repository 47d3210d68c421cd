"""Export: a checkpoint written as a NetX HDF5 (``.net``) file that unmodified ``lava.lib.dl.netx`` loads.

:mod:`~lava_qpsnn.export.writer` writes the file, :mod:`~lava_qpsnn.export.netx_file` reads and
adds the metadata lava-qpsnn keeps in it, :mod:`~lava_qpsnn.export.limits` checks a network
against Lava's 24-bit neuron state before it is written. The command line is
``python -m netx_export``.
"""
