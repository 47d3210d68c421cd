"""Structured pruning of slayer networks: channel criteria, masks in the weight hooks, compaction, the schedule.

The output channels of conv layers (kernels) and the output neurons of dense layers are pruned,
in every conv and dense layer but the last; grouped convs keep their groups equal. Everything
works on any module whose ``blocks`` are slayer blocks, not only on
:class:`~lava_qpsnn.training.models.SpikingNet`. One module per step:

- :mod:`~lava_qpsnn.training.prune.criteria`: which channels matter (SCA, SVS, L1, random, and
  your own through :func:`register_criterion`), and the choice of the kept ones;
- :mod:`~lava_qpsnn.training.prune.plan`: which layers are pruned, and how grouped convolutions
  constrain them (the same number of channels pruned in every group; depthwise convs follow
  the layer before);
- :mod:`~lava_qpsnn.training.prune.masks`: masks in the weight hooks and the BatchNorm, so a
  masked channel never spikes and feeds nothing;
- :mod:`~lava_qpsnn.training.prune.compact`: the smaller network, pruned channels physically
  removed, whose spikes equal the masked network's;
- :mod:`~lava_qpsnn.training.prune.schedule`: QP-SNN's schedule, score once, mask, fine-tune,
  compact (:func:`prune_and_finetune`).
"""

from .compact import compact
from .criteria import (
    CRITERIA,
    Criterion,
    LayerActivity,
    LayerScores,
    Stability,
    channel_scores,
    criterion_named,
    record_activity,
    register_criterion,
    sca_scores,
    score_stability,
    select_channels,
    svs_scores,
)
from .masks import apply_masks, kept_channels
from .plan import channel_parts, channels_left, check_group_ratios, prunable_blocks
from .schedule import PruneConfig, calibration_batch, calibration_stream, prune_and_finetune

__all__ = [
    "CRITERIA",
    "Criterion",
    "LayerActivity",
    "LayerScores",
    "Stability",
    "PruneConfig",
    "register_criterion",
    "criterion_named",
    "record_activity",
    "channel_scores",
    "select_channels",
    "score_stability",
    "svs_scores",
    "sca_scores",
    "prunable_blocks",
    "channel_parts",
    "check_group_ratios",
    "channels_left",
    "kept_channels",
    "apply_masks",
    "compact",
    "prune_and_finetune",
    "calibration_stream",
    "calibration_batch",
]
