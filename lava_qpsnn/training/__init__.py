"""Build and train: networks of slayer blocks, BatchNorm folding, QP-SNN quantization (ReScaW) and
structured pruning (SVS), the training loop, checkpoints, resumable and distributed runs.

The building blocks are named here; the whole pipeline (train a checkpoint in one call) is
:func:`lava_qpsnn.train_checkpoint`.
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .loop import TrainConfig, accuracy, classify, output_spikes, train
from .models import SpikingNet, build_model, prepare_model, weight_blocks
from .norm import BatchNorm, Bias
from .prune import (
    Criterion,
    LayerActivity,
    LayerScores,
    PruneConfig,
    Stability,
    apply_masks,
    calibration_batch,
    channel_scores,
    compact,
    prune_and_finetune,
    record_activity,
    register_criterion,
    score_stability,
    select_channels,
)
from .quantize import QuantConfig, quantize_model
from .slayer_blocks import config_of_blocks
from .specs import Conv, Dense, Flatten, LayerSpec, ModelConfig, NeuronConfig, Pool, format_arch, parse_arch

__all__ = [
    # networks
    "Conv",
    "Dense",
    "Flatten",
    "Pool",
    "LayerSpec",
    "ModelConfig",
    "NeuronConfig",
    "SpikingNet",
    "BatchNorm",
    "Bias",
    "build_model",
    "prepare_model",
    "config_of_blocks",
    "weight_blocks",
    "parse_arch",
    "format_arch",
    # training and PyTorch-side evaluation
    "TrainConfig",
    "train",
    "accuracy",
    "classify",
    "output_spikes",
    # QP-SNN: quantization and pruning
    "QuantConfig",
    "quantize_model",
    "PruneConfig",
    "Criterion",
    "LayerActivity",
    "LayerScores",
    "Stability",
    "register_criterion",
    "record_activity",
    "channel_scores",
    "select_channels",
    "apply_masks",
    "compact",
    "prune_and_finetune",
    "score_stability",
    "calibration_batch",
    # checkpoints
    "Checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]
