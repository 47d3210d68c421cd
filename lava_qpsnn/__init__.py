"""lava-qpsnn: quantized and pruned spiking neural networks for Intel Loihi 2.

Train with lava-dl's slayer, export NetX HDF5 (``python -m netx_export``), run as Lava
processes. The folders follow the pipeline: :mod:`~lava_qpsnn.data`,
:mod:`~lava_qpsnn.training` (networks, QP-SNN quantization and pruning, the training loop),
:mod:`~lava_qpsnn.export`, :mod:`~lava_qpsnn.sim` (our bit-exact simulator),
:mod:`~lava_qpsnn.lava` (Lava runs and processes) and :mod:`~lava_qpsnn.report`; this module
names the public API of all of them.

Importing this package first makes lava-nc 0.10 work on Python 3.11
(see :mod:`lava_qpsnn.lava.compat`); Lava itself is imported only when used, so the Lava
processes (``Classifier``, ``Encoder``, ``Readout``) load on first access.
"""

from importlib import import_module
from importlib.metadata import version as _version

from .lava.compat import patch_lava

patch_lava()

from .data import Encoding, encode_test_split, load_dataset  # noqa: E402
from .evaluate import Evaluation, evaluate  # noqa: E402
from .export.netx_file import NetInfo, read_net_info  # noqa: E402
from .lava.run import build_network, run_lava  # noqa: E402
from .report.network import LayerReport, NetworkReport, format_report, report_network  # noqa: E402
from .report.plots import write_plots  # noqa: E402
from .sim import read_netx, simulate  # noqa: E402
from .training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .training.experiment import prune_checkpoint, train_checkpoint  # noqa: E402
from .training.loop import TrainConfig, accuracy, classify, output_spikes, train  # noqa: E402
from .training.models import (  # noqa: E402
    ModelConfig,
    NeuronConfig,
    SpikingNet,
    build_model,
    format_arch,
    prepare_network,
)
from .training.norm import BatchNorm  # noqa: E402
from .training.prune import (  # noqa: E402
    PruneConfig,
    calibration_batch,
    channel_scores,
    compact,
    prune_and_finetune,
    score_stability,
)
from .training.quantize import QuantConfig, quantize_model  # noqa: E402

__version__ = _version("lava-qpsnn")

_LAVA_PROCESSES = ("Classifier", "Encoder", "Readout")  # importing them imports Lava: loaded on first use


def __getattr__(name: str):
    if name in _LAVA_PROCESSES:
        value = globals()[name] = getattr(import_module(".lava.processes", __name__), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    # data
    "Encoding",
    "encode_test_split",
    "load_dataset",
    # networks and training
    "BatchNorm",
    "ModelConfig",
    "NeuronConfig",
    "SpikingNet",
    "TrainConfig",
    "accuracy",
    "build_model",
    "classify",
    "format_arch",
    "output_spikes",
    "prepare_network",
    "train",
    "train_checkpoint",
    # QP-SNN: quantization and pruning
    "PruneConfig",
    "QuantConfig",
    "calibration_batch",
    "channel_scores",
    "compact",
    "prune_and_finetune",
    "prune_checkpoint",
    "quantize_model",
    "score_stability",
    # checkpoints and .net files
    "Checkpoint",
    "NetInfo",
    "load_checkpoint",
    "read_net_info",
    "read_netx",
    "save_checkpoint",
    # running: simulator, Lava, evaluation
    "Classifier",
    "Encoder",
    "Evaluation",
    "Readout",
    "build_network",
    "evaluate",
    "run_lava",
    "simulate",
    # cost
    "LayerReport",
    "NetworkReport",
    "format_report",
    "report_network",
    "write_plots",
]
