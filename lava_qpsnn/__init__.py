"""lava-qpsnn: quantized and pruned spiking neural networks for Intel Loihi 2.

Train with lava-dl's slayer, export NetX HDF5, run as Lava processes. This module names the
pipeline: its functions, the settings they take, the results they return and the error they
raise. The building blocks live in the stages' packages, in pipeline order:
:mod:`~lava_qpsnn.data`, :mod:`~lava_qpsnn.training` (networks, QP-SNN quantization and pruning,
the training loop), :mod:`~lava_qpsnn.netx` (the ``.net`` format), :mod:`~lava_qpsnn.sim` (our
bit-exact simulator), :mod:`~lava_qpsnn.export`, :mod:`~lava_qpsnn.interchange` (NIR graphs in and
out), :mod:`~lava_qpsnn.lava` (Lava runs and processes), :mod:`~lava_qpsnn.report`, and :mod:`~lava_qpsnn.errors`.

Importing this package first makes lava-nc 0.10 work on Python 3.11
(see :mod:`lava_qpsnn.lava.compat`); Lava itself is imported only when a run starts.
"""

from importlib.metadata import version as _version

from .lava.compat import patch_lava as _patch_lava

_patch_lava()

from .data import Encoding, load_dataset  # noqa: E402
from .errors import QpsnnError  # noqa: E402
from .evaluation import Evaluation, evaluate  # noqa: E402
from .export import export_netx, fixed_point_model  # noqa: E402
from .interchange import export_nir, import_nir  # noqa: E402
from .lava import Deployment, deploy, run_lava  # noqa: E402
from .netx import NetInfo, read_net_info  # noqa: E402
from .pipeline import prune_checkpoint, train_checkpoint  # noqa: E402
from .report import Diagnosis, NetworkReport, diagnose, report_network  # noqa: E402
from .sim import simulate  # noqa: E402
from .training import Checkpoint, PruneConfig, QuantConfig, TrainConfig, load_checkpoint, save_checkpoint  # noqa: E402

__version__ = _version("lava-qpsnn")

__all__ = [
    # the pipeline, in order
    "load_dataset",
    "train_checkpoint",
    "prune_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "fixed_point_model",
    "export_netx",
    "export_nir",
    "import_nir",
    "read_net_info",
    "simulate",
    "run_lava",
    "evaluate",
    "deploy",
    "report_network",
    "diagnose",
    # settings
    "Encoding",
    "TrainConfig",
    "QuantConfig",
    "PruneConfig",
    # results
    "Checkpoint",
    "NetInfo",
    "Evaluation",
    "Deployment",
    "NetworkReport",
    "Diagnosis",
    # errors (the subclasses are in lava_qpsnn.errors)
    "QpsnnError",
]
