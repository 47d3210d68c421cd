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

from importlib import import_module as _import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from .lava.compat import patch_lava as _patch_lava

_patch_lava()

from .data import Dataset, Encoding, encode_test_split, load_dataset, register_dataset  # noqa: E402
from .evaluation import Evaluation, evaluate  # noqa: E402
from .export.fixed_point import fixed_point_network  # noqa: E402
from .lava.run import build_network, run_lava  # noqa: E402
from .netx import NetInfo, read_net_info, read_netx  # noqa: E402
from .pipeline import prune_checkpoint, train_checkpoint  # noqa: E402
from .report.diagnosis import Diagnosis, diagnose, format_diagnosis  # noqa: E402
from .report.network import LayerReport, NetworkReport, format_report, report_network  # noqa: E402
from .report.plots import write_diagnosis_plots, write_plots  # noqa: E402
from .sim import simulate  # noqa: E402
from .training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .training.loop import TrainConfig, accuracy, classify, output_spikes, train  # noqa: E402
from .training.models import SpikingNet, build_model, prepare_network  # noqa: E402
from .training.norm import BatchNorm  # noqa: E402
from .training.prune import (  # noqa: E402
    Criterion,
    PruneConfig,
    calibration_batch,
    channel_scores,
    compact,
    prune_and_finetune,
    record_activity,
    register_criterion,
    score_stability,
)
from .training.quantize import QuantConfig, quantize_model  # noqa: E402
from .training.specs import Conv, Dense, Flatten, ModelConfig, NeuronConfig, Pool, format_arch  # noqa: E402

__version__ = _version("lava-qpsnn")

_LAVA_PROCESSES = ("Classifier", "Encoder", "Readout")  # importing them imports Lava: loaded on first use

if TYPE_CHECKING:
    from .lava.processes import Classifier, Encoder, Readout


def __getattr__(name: str):
    if name in _LAVA_PROCESSES:
        value = globals()[name] = getattr(_import_module(".lava.processes", __name__), name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAVA_PROCESSES))


__all__ = [
    # data
    "Dataset",
    "Encoding",
    "encode_test_split",
    "load_dataset",
    "register_dataset",
    # networks and training
    "BatchNorm",
    "Conv",
    "Dense",
    "Flatten",
    "ModelConfig",
    "NeuronConfig",
    "Pool",
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
    "Criterion",
    "PruneConfig",
    "QuantConfig",
    "calibration_batch",
    "channel_scores",
    "compact",
    "prune_and_finetune",
    "prune_checkpoint",
    "quantize_model",
    "record_activity",
    "register_criterion",
    "score_stability",
    # checkpoints and .net files
    "Checkpoint",
    "fixed_point_network",
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
    # differences between the stages, float to Lava
    "Diagnosis",
    "diagnose",
    "format_diagnosis",
    "write_diagnosis_plots",
]
