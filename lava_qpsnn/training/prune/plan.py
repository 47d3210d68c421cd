"""The channel plan: which layers choose their channels, in how many equal parts, and which follow.

A grouped conv with G groups stays a conv with G groups of equal size only if its output
channels, and the output channels of the layer that feeds it, are pruned alike in every group.
So each *prunable layer* keeps the same number of channels in each of its ``parts`` equal,
consecutive slices: the least common multiple of its own groups and of the groups of the
layer it feeds (1 for ungrouped networks: the whole layer is one part). A conv whose every
group reads one channel (``groups == in_channels``, a depthwise conv) is not pruned on its
own: it *follows* the layer before, losing the groups whose input channel was pruned, with
their output channels, so its output keeps exactly the channels its input keeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ...errors import ConfigError
from ..models import weight_blocks

__all__ = ["prunable_blocks", "channel_parts", "channels_left", "layer_keeps", "check_group_ratios"]


def _follows(blocks: Sequence[torch.nn.Module], index: int) -> bool:
    """Whether weight layer ``index`` is a depthwise conv that follows the channels of the layer before."""
    synapse = blocks[index].synapse
    return 0 < index < len(blocks) - 1 and 1 < synapse.groups == synapse.in_channels


def prunable_blocks(net: torch.nn.Module) -> list[torch.nn.Module]:
    """Conv and dense blocks that choose which output channels to keep: all but the last (the classes)
    and the depthwise convs that follow the layer before."""
    blocks = weight_blocks(net)
    return [b for i, b in enumerate(blocks[:-1]) if not _follows(blocks, i)]


def channel_parts(net: torch.nn.Module) -> list[int]:
    """For each prunable layer, the number of equal, consecutive slices of its channels that must keep
    equally many: its own groups and those of the layer it feeds (through depthwise convs that follow it)."""
    blocks = weight_blocks(net)
    need = 1  # parts the output of blocks[i] must keep equal, for the layers after it
    parts = []
    for i in range(len(blocks) - 2, -1, -1):
        after = blocks[i + 1]
        if not _follows(blocks, i + 1):
            need = after.synapse.groups
        elif after.synapse.in_channels % need:  # a depthwise conv's output repeats its input channels
            copies = after.synapse.out_channels // after.synapse.in_channels
            raise ConfigError(
                f"weight layer {i + 1} (depthwise) makes {copies} copies of each of its {after.synapse.in_channels} "
                f"input channels, which the grouped layers after it split into {need} groups: channel pruning "
                "cannot keep those groups equal"
            )
        if not _follows(blocks, i):
            parts.append(math.lcm(need, blocks[i].synapse.groups))
    return parts[::-1]


def channels_left(count: int, ratio: float) -> int:
    """Channels of ``count`` left after removing ``ratio * count`` rounded half up (0.5 of 5 and of 7 both round up)."""
    return count - math.floor(ratio * count + 0.5)


def layer_keeps(net: torch.nn.Module, channel_keeps: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """Keep-mask of every weight layer's output channels, from those of the prunable layers (None: the last).

    A depthwise conv that follows keeps the output channels of the groups whose input it keeps.
    """
    blocks = weight_blocks(net)
    chosen = iter(channel_keeps)
    keeps: list[np.ndarray | None] = []
    for i, block in enumerate(blocks[:-1]):
        if _follows(blocks, i):
            synapse = block.synapse
            keeps.append(np.repeat(keeps[-1], synapse.out_channels // synapse.in_channels))
        else:
            keeps.append(np.asarray(next(chosen), bool))
    return [*keeps, None]


def check_group_ratios(net: torch.nn.Module, ratios: Sequence[float]) -> None:
    """One-line :class:`~lava_qpsnn.errors.ConfigError` if a ratio would empty a part of a grouped layer.

    An ungrouped layer keeps its best channel instead (and says so); a grouped one cannot keep
    its groups equal, so it is refused before any work, naming the largest ratio that works.
    """
    blocks = prunable_blocks(net)
    for layer, (block, parts, ratio) in enumerate(zip(blocks, channel_parts(net), ratios, strict=True)):
        size = block.synapse.out_channels // parts
        if parts > 1 and channels_left(size, ratio) < 1:
            works = f"use {(size - 1) / size:g} or less" if size > 1 else "use 0"
            raise ConfigError(
                f"prunable layer {layer} keeps its channels in {parts} equal groups of {size}, as grouped "
                f"convolutions need: a pruning ratio of {ratio} would leave none in a group; {works}",
                settings=("prune",),
            )
