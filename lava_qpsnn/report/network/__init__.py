"""What an exported network costs on Loihi 2: weight memory, measured activity, and ESTIMATED cores and energy.

:func:`report_network` reads a ``.net``, runs its first test samples through the bit-exact
simulator (:func:`lava_qpsnn.sim.simulate`) and returns a :class:`NetworkReport`; the
``report`` command prints it as a table or JSON (``python -m lava_qpsnn report model.net``).
Shapes, weights, bits and packed sizes are the exporter's own rows
(:class:`lava_qpsnn.export.summary.LayerSummary`), so both commands agree.

Definitions (per sample = one inference of T time steps, averaged over the samples run):

- **spikes**: output spikes of each neuron layer over the T steps; for the input layer, the
  input spikes.
- **SynOps**: for each synapse layer, the sum over time steps and input spikes of the number
  of synapses each input spike drives: ``out_features`` for a dense layer; for a conv layer,
  the number of (output position, output channel) pairs the spiking pixel is connected to,
  counted exactly (a conv2d of the input spike map with an all-ones kernel, summed), so edge
  pixels and strides count what they really drive. Every stored synapse counts, zero-valued
  weights included, because Loihi stores and processes them (dense connectivity).
- **synapses**: the SynOps of one step in which every input spikes once (all connections);
  **weights**: the values stored (a conv kernel once).
- **max |u|, max |v|**: the largest current and voltage a neuron layer reaches on the samples,
  measured by the simulator without Lava's 24-bit limits (:mod:`lava_qpsnn.export.limits`), next to
  that limit, ``2^23``: Lava computes them exactly below it.
- **packed**: weights x the trained grid's bits (with a checkpoint; otherwise the Loihi
  signed bits found in the file); compression is float32 / packed, against the float32
  network before pruning when the checkpoint records a pruning.

Cores, chips and energy are ESTIMATES from published limits and Loihi 1 per-operation
energies, not measurements: see :mod:`lava_qpsnn.report.loihi2` for the model and its sources.

One module per job: :mod:`~lava_qpsnn.report.network.measure` reads and measures,
:mod:`~lava_qpsnn.report.network.result` holds what is found, :mod:`~lava_qpsnn.report.network.format`
prints it.
"""

from .format import format_report, report_table
from .measure import report_network
from .result import LayerReport, NetworkReport

__all__ = ["LayerReport", "NetworkReport", "report_network", "report_table", "format_report"]
