"""Compaction: the smaller network with pruned channels, and the matching inputs of the next layer, removed."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch

from ..hooks import FoldedWeights, MaskedWeights, WeightQuantizer, core_hook, set_core_hook
from ..models import SpikingNet, weight_blocks
from .masks import input_keep, kept_channels, weight_keep
from .plan import layer_keeps

__all__ = ["compact"]


def _unmasked(hook: Callable | None) -> Callable | None:
    """A copy of ``hook`` without its pruning mask."""
    if isinstance(hook, MaskedWeights):
        return hook.inner
    if isinstance(hook, WeightQuantizer):
        hook = copy.deepcopy(hook)
        hook.keep = None
    return hook


def _slice_block(block: torch.nn.Module, out_keep: np.ndarray | None, in_keep: np.ndarray | None) -> None:
    """Remove pruned output channels and inputs from a conv/dense block (in place), masks dropped.

    A grouped conv keeps the groups that still have inputs (all of them, unless it is a
    depthwise conv that follows), each with the same number of inputs.
    """
    synapse = block.synapse
    weight = synapse.weight
    keep = torch.from_numpy(weight_keep(block, out_keep, in_keep)).to(weight.device)
    rows = len(keep) if out_keep is None else int(out_keep.sum())
    weight = weight[keep].reshape(rows, -1, *weight.shape[2:])
    synapse.weight = torch.nn.Parameter(weight.clone(), requires_grad=synapse.weight.requires_grad)
    if in_keep is not None:
        synapse.groups = int(in_keep.reshape(synapse.groups, -1).any(1).sum())
    synapse.out_channels, synapse.in_channels = rows, weight.shape[1] * synapse.groups
    set_core_hook(synapse, _unmasked(core_hook(synapse)))
    outer = synapse.pre_hook_fx
    if isinstance(outer, FoldedWeights):
        norm = outer.norm
        if out_keep is not None:
            index = torch.from_numpy(out_keep).to(weight.device)
            norm.weight = torch.nn.Parameter(norm.weight[index].clone())
            norm.shift = torch.nn.Parameter(norm.shift[index].clone())
            norm.running_mean, norm.running_var = norm.running_mean[index].clone(), norm.running_var[index].clone()
            norm.num_features = int(index.sum())
        norm.keep = None


def _slice_delays(block: torch.nn.Module, keep: np.ndarray) -> None:
    """Keep the axonal delays of the kept channels (one per channel, slayer's ``Delay``)."""
    if getattr(block, "delay", None) is not None:
        delay = block.delay.delay
        index = torch.from_numpy(keep).to(delay.device)
        block.delay.delay = torch.nn.Parameter(delay[index].clone(), requires_grad=delay.requires_grad)


def _reshape_neuron(neuron: torch.nn.Module, channels: int) -> None:
    """Tell a slayer neuron its new channel count (it learned its shape on the first forward)."""
    neuron.shape = torch.Size((channels, *neuron.shape[1:]))
    neuron.num_neurons = int(np.prod(neuron.shape))
    neuron.current_state = torch.zeros(1, device=neuron.current_state.device)
    neuron.voltage_state = torch.zeros(1, device=neuron.voltage_state.device)


@torch.no_grad()
def compact(net: torch.nn.Module) -> torch.nn.Module:
    """The smaller network with masked channels physically removed (a new network; ``net`` is untouched).

    Works on a copy of ``net`` (any module with slayer ``blocks``): kept output channels of each
    prunable layer, their BatchNorm entries, and the matching input channels of the next
    weight layer (every spatial position of a channel across a flatten; pooling in between
    keeps channels) are kept, with the kept channels' axonal delays; hooks lose their masks. Its
    output spikes equal the masked network's.
    """
    channel_keeps = iter(layer_keeps(net, kept_channels(net)))
    small = copy.deepcopy(net)
    weighted = {id(b) for b in weight_blocks(small)}
    previous: np.ndarray | None = None
    shape = None
    for block in small.blocks:
        if id(block) in weighted:
            out_keep = next(channel_keeps)
            _slice_block(block, out_keep, input_keep(block, previous))
            if out_keep is not None:
                _reshape_neuron(block.neuron, int(out_keep.sum()))
                _slice_delays(block, out_keep)
            previous = out_keep
        elif getattr(block, "neuron", None) is not None and previous is not None:  # pooling keeps channels
            _reshape_neuron(block.neuron, int(previous.sum()))
            _slice_delays(block, previous)
        elif getattr(block, "neuron", None) is None:  # flatten
            block.shape = [math.prod(shape), 1, 1]
        shape = getattr(block, "neuron", block).shape
    if isinstance(small, SpikingNet):
        small.config = net.config.with_widths([b.synapse.weight.shape[0] for b in weight_blocks(small)])
    return small.train(net.training)
