"""Pruning masks: which layers may be pruned, and channel keep-masks turned into weight masks in the hooks.

A *prunable layer* is every conv and dense layer but the last (its outputs are the classes).
Pooling layers pass channel masks through; a flatten repeats each channel's mask per position.
A mask lives in the weight hook (the quantizer's ``keep``, or a
:class:`~lava_qpsnn.training.hooks.MaskedWeights` around slayer's default hook) and in the
BatchNorm (its bias), so a masked channel has all-zero weights and bias, never spikes and feeds
nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch

from ...errors import ConfigError
from ..hooks import FoldedWeights, MaskedWeights, WeightQuantizer, core_hook, set_core_hook
from ..models import weight_blocks

__all__ = ["prunable_blocks", "channels_left", "kept_channels", "input_keep", "apply_masks"]


def prunable_blocks(net: torch.nn.Module) -> list[torch.nn.Module]:
    """Conv and dense blocks whose output channels may be pruned: all but the last (the classes)."""
    blocks = weight_blocks(net)
    grouped = [i for i, b in enumerate(blocks) if getattr(b.synapse, "groups", 1) > 1]
    if grouped:
        raise ConfigError(f"weight layers {grouped} are grouped convolutions, which channel pruning does not support")
    return blocks[:-1]


def channels_left(count: int, ratio: float) -> int:
    """Channels of ``count`` left after removing ``ratio * count`` rounded half up (0.5 of 5 and of 7 both round up)."""
    return count - math.floor(ratio * count + 0.5)


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
    repeat = block.synapse.weight.shape[1] // len(previous)
    return np.repeat(previous, repeat)


def _weight_masks(net: torch.nn.Module, channel_keeps: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Weight-shaped masks of every conv/dense layer for the given output-channel masks."""
    masks, previous = [], None
    for block, out_keep in itertools.zip_longest(weight_blocks(net), channel_keeps):
        weight = block.synapse.weight
        shape = weight.shape
        rows = torch.ones(shape[0], dtype=torch.bool) if out_keep is None else torch.from_numpy(out_keep)
        in_keep = input_keep(block, previous)
        cols = torch.ones(shape[1], dtype=torch.bool) if in_keep is None else torch.from_numpy(in_keep)
        mask = (rows[:, None] & cols[None, :]).reshape(shape[0], shape[1], *[1] * (len(shape) - 2))
        masks.append(mask.expand(shape).clone().to(weight.device))
        previous = out_keep
    return masks


def apply_masks(net: torch.nn.Module, channel_keeps: Sequence[np.ndarray]) -> torch.nn.Module:
    """Mask ``net`` in place: one keep-mask per prunable layer (see :func:`kept_channels`)."""
    blocks = prunable_blocks(net)
    if len(channel_keeps) != len(blocks):
        raise ConfigError(f"got {len(channel_keeps)} channel masks for {len(blocks)} prunable layers")
    for block, mask, out_keep in itertools.zip_longest(
        weight_blocks(net), _weight_masks(net, channel_keeps), channel_keeps
    ):
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
