"""Lava processes that deploy a trained network: encoder, readout and a one-process classifier.

Each follows Lava's process/model split (``lava/proc/lif/process.py`` + ``models.py``):
the Process declares ports and variables, its ProcessModel(s), selected by tag, compute.

- :class:`Encoder`: images -> spikes, the training encoding bit for bit (host CPU).
- :class:`Readout`: output spikes -> one class per sample window (host CPU).
- :class:`Classifier`: ``encoder -> netx network -> readout`` built from a ``.net``.

Three lines::

    clf = Classifier("model.net")
    clf.run(condition=RunSteps(num_steps=clf.num_steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    predictions = clf.predictions.get().astype(int); clf.stop()

Importing this package imports Lava (``lava_qpsnn`` itself does not). The process modules
import absolutely: Lava's compiler finds ProcessModels by executing every module beside a
process as a top-level file, where relative imports fail (with a warning per module).
"""

from .classifier import Classifier, ClassifierModel
from .encoder import Encoder, PyEncoderModel
from .readout import NO_LABEL, PyReadoutModel, Readout

__all__ = ["Classifier", "ClassifierModel", "Encoder", "PyEncoderModel", "NO_LABEL", "PyReadoutModel", "Readout"]
