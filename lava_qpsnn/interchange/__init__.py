"""NIR in and out: networks exchanged with other frameworks through the Neuromorphic Intermediate Representation.

:func:`export_nir` writes an exported network as a NIR graph (float parameters that snnTorch, Norse,
SpikingJelly and others read, the exact integers in each node's metadata); :func:`import_nir` makes a
checkpoint of a NIR graph (another framework's, or ours again exactly). How NIR's continuous-time
neurons map onto Loihi's CUBA neuron is in :mod:`~lava_qpsnn.interchange.neurons`, which nodes map
and how in :mod:`~lava_qpsnn.interchange.mapping`. :func:`snntorch_graph` writes an snnTorch network's graph
where snnTorch's own exporter fails, :func:`snntorch_module` reads a graph into snnTorch and
:func:`snntorch_spikes` runs it.
Needs the ``nir`` package (``pip install nir``).
"""

from .importer import import_nir
from .neurons import DEFAULT_DT
from .peers import snntorch_graph, snntorch_module, snntorch_spikes
from .writer import export_nir

__all__ = ["export_nir", "import_nir", "snntorch_graph", "snntorch_module", "snntorch_spikes", "DEFAULT_DT"]
