"""Pruning masks: channel keep-masks turned into weight masks in the hooks.

Which layers are pruned, and how grouped convolutions constrain them, is the channel plan
(:mod:`~lava_qpsnn.training.prune.plan`). Pooling layers pass channel masks through; a flatten
repeats each channel's mask per position; a grouped conv's weights keep, for each output
channel, the kept inputs of its own group. A mask lives in the weight hook (the quantizer's
``keep``, or a :class:`~lava_qpsnn.training.hooks.MaskedWeights` around slayer's default hook)
and in the BatchNorm (its bias), so a masked channel has all-zero weights and bias, never
spikes and feeds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...errors import ConfigError
from ..hooks import FoldedWeights, MaskedWeights, WeightQuantizer, core_hook, set_core_hook
from ..models import weight_blocks
from .plan import channel_parts, layer_keeps, prunable_blocks

__all__ = ["kept_channels", "input_keep", "weight_keep", "apply_masks"]


def kept_channels(net: torch.nn.Module) -> list[np.ndarray]:
    """Keep-mask of each prunable layer's output channels (all True when unmasked)."""
    out = []
    for block in prunable_blocks(net):
        keep = getattr(core_hook(block.synapse), "keep", None)
        channels = block.synapse.weight.shape[0]
        out.append(np.ones(channels, bool) if keep is None else keep.flatten(1).any(1).cpu().numpy())
    return out


def input_keep(block: torch.nn.Module, previous: np.ndarray | None) -> np.ndarray | None:
    """Keep-mask over ``block``'s input features, given the previous weight layer's channel mask.

    Pooling keeps channels; across a flatten each channel owns ``in_features / channels``
    consecutive features (C order).
    """
    if previous is None:
        return None
    return np.repeat(previous, block.synapse.in_channels // len(previous))


def weight_keep(block: torch.nn.Module, out_keep: np.ndarray | None, in_keep: np.ndarray | None) -> np.ndarray:
    """Which entries of the ``out x (in / groups)`` weight stay: kept outputs times the kept inputs of their group."""
    synapse = block.synapse
    out, per_group = synapse.weight.shape[:2]
    rows = np.ones(out, bool) if out_keep is None else out_keep
    if in_keep is None:
        return np.repeat(rows[:, None], per_group, 1)
    return rows[:, None] & np.repeat(in_keep.reshape(synapse.groups, per_group), out // synapse.groups, 0)


def _weight_masks(net: torch.nn.Module, keeps: Sequence[np.ndarray | None]) -> list[torch.Tensor]:
    """Weight-shaped masks of every conv/dense layer for its output-channel mask (None: all kept)."""
    masks, previous = [], None
    for block, out_keep in zip(weight_blocks(net), keeps, strict=True):
        weight = block.synapse.weight
        keep = torch.from_numpy(weight_keep(block, out_keep, input_keep(block, previous)))
        keep = keep.reshape(*keep.shape, *[1] * (weight.dim() - 2))
        masks.append(keep.expand(weight.shape).clone().to(weight.device))
        previous = out_keep
    return masks


def apply_masks(net: torch.nn.Module, channel_keeps: Sequence[np.ndarray]) -> torch.nn.Module:
    """Mask ``net`` in place: one keep-mask per prunable layer (see :func:`kept_channels`)."""
    blocks = prunable_blocks(net)
    if len(channel_keeps) != len(blocks):
        raise ConfigError(f"got {len(channel_keeps)} channel masks for {len(blocks)} prunable layers")
    for layer, (keep, parts) in enumerate(zip(channel_keeps, channel_parts(net), strict=True)):
        counts = np.asarray(keep, bool).reshape(parts, -1).sum(1)
        if len(set(counts)) > 1:
            raise ConfigError(
                f"the channel mask of prunable layer {layer} keeps {counts.tolist()} channels of its {parts} groups: "
                f"keep the same number in each (select_channels(..., parts={parts}) does)"
            )
    keeps = layer_keeps(net, channel_keeps)
    for block, mask, out_keep in zip(weight_blocks(net), _weight_masks(net, keeps), keeps, strict=True):
        hook = core_hook(block.synapse)
        if isinstance(hook, MaskedWeights):
            hook = hook.inner
        if isinstance(hook, WeightQuantizer):
            hook.keep = mask
        else:
            set_core_hook(block.synapse, MaskedWeights(hook, mask))
        outer = block.synapse.pre_hook_fx
        if isinstance(outer, FoldedWeights) and out_keep is not None:  # a pruned channel's bias goes too
            outer.norm.keep = torch.from_numpy(out_keep).to(mask.device)
    return net
