"""lava-qpsnn: quantized and pruned spiking neural networks for Intel Loihi 2.

Train with lava-dl's slayer, export NetX HDF5 (``python -m netx_export``), run as Lava
processes. Importing this package first makes lava-nc 0.10 work on Python 3.11
(see :mod:`lava_qpsnn.lava_compat`); Lava itself is imported only when used.
"""

from importlib.metadata import version as _version

from .lava_compat import patch_lava

patch_lava()

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from .data import Encoding, encode_test_split, load_dataset  # noqa: E402
from .evaluate import Evaluation, evaluate  # noqa: E402
from .lava_run import run_lava  # noqa: E402
from .models import ModelConfig, NeuronConfig, SpikingNet, build_model, prepare_network  # noqa: E402
from .prune import PruneConfig, compact  # noqa: E402
from .report import LayerReport, NetworkReport, report_network  # noqa: E402
from .sim import read_netx, simulate  # noqa: E402
from .train import TrainConfig, classify, output_spikes, train  # noqa: E402

__version__ = _version("lava-qpsnn")

__all__ = [
    "Checkpoint",
    "Encoding",
    "Evaluation",
    "LayerReport",
    "ModelConfig",
    "NetworkReport",
    "NeuronConfig",
    "PruneConfig",
    "SpikingNet",
    "TrainConfig",
    "build_model",
    "classify",
    "compact",
    "encode_test_split",
    "evaluate",
    "load_checkpoint",
    "load_dataset",
    "output_spikes",
    "prepare_network",
    "read_netx",
    "report_network",
    "run_lava",
    "save_checkpoint",
    "simulate",
    "train",
]
