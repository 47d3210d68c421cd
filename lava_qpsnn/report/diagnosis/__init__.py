"""Why the network in Lava does not behave like the one that was trained: the same input spikes
through every stage of the pipeline, compared layer by layer, with the known causes named.

Stages, in pipeline order (:data:`STAGES`):

- **float**: the trained network with its quantization hooks removed (only for a quantized
  checkpoint; otherwise the trained network is the float one);
- **trained**: the training model (fake-quantized weights);
- **fixed-point**: the integer network that is exported, in PyTorch;
- **simulator**: the ``.net`` in :mod:`lava_qpsnn.sim`;
- **lava**: the ``.net`` in Lava's fixed-point CPU models (a few samples: Lava is slow).

The first three differ by design (quantization, fixed-point rounding): their differences are
shown, not failed. The last three must agree spike for spike (:data:`EXACT_STAGES`); any
difference between them is a problem, as is each cause :func:`diagnose` names: a file that
differs from its checkpoint, weights that netx changes when it builds the network, a layer
past Lava's 24-bit state, a silent or saturated layer.

One module per job: :mod:`~lava_qpsnn.report.diagnosis.stages` runs and compares the stages,
:mod:`~lava_qpsnn.report.diagnosis.causes` names the known causes, :mod:`~lava_qpsnn.report.diagnosis.format`
prints the report, :mod:`~lava_qpsnn.report.diagnosis.result` holds what is found.
"""

from .format import format_diagnosis
from .result import EXACT_STAGES, STAGES, Diagnosis, Divergence, LayerDiagnosis, Problem, Raster
from .stages import diagnose

__all__ = [
    "Diagnosis",
    "Divergence",
    "LayerDiagnosis",
    "Problem",
    "Raster",
    "diagnose",
    "format_diagnosis",
    "STAGES",
    "EXACT_STAGES",
]
