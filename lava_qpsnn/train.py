"""Training and PyTorch-side evaluation of a :class:`~lava_qpsnn.models.SpikingNet`.

Training re-encodes the training images with fresh rate-coded spikes every epoch (a
seeded generator, so runs repeat); evaluation uses the fixed test encoding of
:func:`~lava_qpsnn.data.encode_test_split`, the same spikes Lava receives.
The decision is the class with most output spikes (ties go to the lower class index,
as ``argmax`` does in numpy, torch and the Lava readout).

The losses see exactly what the Lava readout counts: slayer delays every spiking layer
by one step, so the first ``L`` output steps of a sample (``L`` spiking layers) are zero
in PyTorch as in Lava, and the count over the whole window equals the readout's count
from step ``L`` on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import Dataset, Encoding, SpikeStream, encode_test_split, rate_encode, spike_batches, stream_test_split
from .errors import ConfigError
from .models import SpikingNet, weight_blocks

__all__ = [
    "TrainConfig",
    "train",
    "output_spikes",
    "classify",
    "accuracy",
    "init_weights",
    "LOSSES",
    "SCHEDULES",
]

LOSSES = ("ce-count", "ce-rate", "spike-rate")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings; the defaults were chosen on a validation split (``benchmarks/recipe.py``).

    Attributes
    ----------
    loss : ``"ce-count"``: cross-entropy of the output spike counts (the readout's
        decision, as logits); ``"ce-rate"``: cross-entropy of each step's output spikes,
        averaged over steps (snnTorch's ``ce_rate_loss``); ``"spike-rate"``: slayer's
        ``SpikeRate``, the squared error to target rates ``true_rate`` / ``false_rate``.
    schedule : ``"cosine"`` (learning rate annealed to 0 over the run, per batch) or ``"constant"``
    weight_decay : AdamW's decoupled weight decay (0: plain Adam)
    init_gain : None keeps slayer's initial weights; a number re-draws them with
        :func:`init_weights` before training (``train_checkpoint`` does it, not :func:`train`,
        so fine-tuning keeps its weights)
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    loss: str = "ce-count"
    schedule: str = "cosine"
    weight_decay: float = 0.0
    init_gain: float | None = None
    true_rate: float = 0.5
    false_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(
                f"need epochs >= 0, batch size >= 1, lr > 0; got {self.epochs}, {self.batch_size}, {self.lr}"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if self.weight_decay < 0 or (self.init_gain is not None and self.init_gain <= 0):
            raise ConfigError(f"need weight decay >= 0 and init gain > 0; got {self.weight_decay}, {self.init_gain}")


def init_weights(net: torch.nn.Module, gain: float) -> None:
    """Re-draw every synapse weight of ``net.blocks`` (in place) at a scale set by the threshold.

    Weights are uniform with standard deviation ``gain * threshold / sqrt(fan_in)``: if the
    inputs of a neuron spike independently, its input current per step then has a spread of
    ``gain`` thresholds times the square root of the fraction of active inputs, whatever
    the layer's width, so every layer starts near its firing point (slayer's default draws
    ``2 / sqrt(fan_in)`` whatever the threshold). Only conv and dense layers are drawn: pooling
    keeps its constant weights.
    """
    with torch.no_grad():
        for block in weight_blocks(net):
            weight = block.synapse.weight
            fan_in = math.prod(weight.shape[1:])
            bound = math.sqrt(3.0) * gain * float(block.neuron.threshold) / math.sqrt(fan_in)
            weight.uniform_(-bound, bound)


def _loss_function(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(output spikes N x classes x T, labels N)`` for ``config.loss``."""
    if config.loss == "ce-count":
        return lambda out, labels: torch.nn.functional.cross_entropy(out.sum(-1), labels)
    if config.loss == "ce-rate":
        return lambda out, labels: torch.nn.functional.cross_entropy(out, labels[:, None].expand(-1, out.shape[-1]))
    from lava.lib.dl import slayer

    return slayer.loss.SpikeRate(true_rate=config.true_rate, false_rate=config.false_rate, reduction="sum")


def classify(spikes: np.ndarray | torch.Tensor) -> np.ndarray:
    """Predicted class per sample from output spikes ``N x classes x T``."""
    counts = np.asarray(spikes).sum(axis=-1)
    return counts.argmax(axis=1)


@torch.no_grad()
def output_spikes(model: SpikingNet, spikes: np.ndarray | SpikeStream, batch_size: int = 256) -> np.ndarray:
    """Run ``spikes`` (``NCHWT``, any dtype, or a stream) through ``model``; return output spikes ``N x classes x T``.

    Input goes to float32 one batch at a time, so bool spikes stay compact.
    """
    model.eval()
    outputs = [model(torch.as_tensor(x).float()).numpy().astype(np.int8) for x in spike_batches(spikes, batch_size)]
    return np.concatenate(outputs)


def _accuracy(model: SpikingNet, spikes: np.ndarray | SpikeStream, labels: np.ndarray) -> float:
    return float((classify(output_spikes(model, spikes)) == labels).mean())


def accuracy(model: SpikingNet, test_set: Dataset, encoding: Encoding) -> float:
    """Accuracy of ``model`` on the fixed encoding of ``test_set`` (encoded batch by batch)."""
    return _accuracy(model, stream_test_split(test_set, encoding), test_set.labels)


def train(
    model: SpikingNet,
    train_set: Dataset,
    test_set: Dataset,
    encoding: Encoding,
    config: TrainConfig,
    *,
    progress: bool = True,
) -> dict[str, float]:
    """Train ``model`` in place; return final train and test accuracy."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    loss_fn = _loss_function(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batches = range(0, len(train_set), config.batch_size)
    schedule = None
    if config.schedule == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs * len(batches)))
    test_spikes = encode_test_split(test_set, encoding)
    labels = torch.from_numpy(train_set.labels)
    bar = tqdm(total=config.epochs * len(batches), desc="train", unit="batch", disable=not progress)
    correct = 0
    for epoch in range(config.epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(train_set)))
        correct = 0
        for start in batches:
            index = order[start : start + config.batch_size]
            x = torch.from_numpy(rate_encode(train_set.images[index], encoding.time_steps, rng))
            out = model(x)
            loss = loss_fn(out, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            correct += int((out.sum(-1).argmax(1) == labels[index]).sum())
            bar.update()
        if progress:  # the per-epoch test accuracy is only shown, not returned
            bar.set_postfix(
                epoch=epoch + 1,
                train=f"{correct / len(train_set):.3f}",
                test=f"{_accuracy(model, test_spikes, test_set.labels):.3f}",
            )
    bar.close()
    return {"train_accuracy": correct / len(train_set), "test_accuracy": _accuracy(model, test_spikes, test_set.labels)}
