"""Training and PyTorch-side evaluation of a :class:`~lava_qpsnn.models.SpikingNet`.

Training re-encodes the training images with fresh rate-coded spikes every epoch (a
seeded generator, so runs repeat); evaluation uses the fixed test encoding of
:func:`~lava_qpsnn.data.encode_test_split`, the same spikes Lava receives.
The decision is the class with most output spikes (ties go to the lower class index,
as ``argmax`` does in numpy, torch and the Lava readout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import Dataset, Encoding, encode_test_split, rate_encode
from .errors import ConfigError
from .models import SpikingNet

__all__ = ["TrainConfig", "train", "output_spikes", "classify", "accuracy"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings. The loss is slayer's ``SpikeRate`` (target firing rates)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    true_rate: float = 0.5
    false_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(
                f"need epochs >= 0, batch size >= 1, lr > 0; got {self.epochs}, {self.batch_size}, {self.lr}"
            )


def classify(spikes: np.ndarray | torch.Tensor) -> np.ndarray:
    """Predicted class per sample from output spikes ``N x classes x T``."""
    counts = np.asarray(spikes).sum(axis=-1)
    return counts.argmax(axis=1)


@torch.no_grad()
def output_spikes(model: SpikingNet, spikes: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Run ``spikes`` (``NCHWT``) through ``model``; return output spikes ``N x classes x T``."""
    model.eval()
    outputs = [model(torch.from_numpy(spikes[i : i + batch_size])).numpy() for i in range(0, len(spikes), batch_size)]
    return np.concatenate(outputs).astype(np.int8)


def _accuracy(model: SpikingNet, spikes: np.ndarray, labels: np.ndarray) -> float:
    return float((classify(output_spikes(model, spikes)) == labels).mean())


def accuracy(model: SpikingNet, test_set: Dataset, encoding: Encoding) -> float:
    """Accuracy of ``model`` on the fixed encoding of ``test_set``."""
    return _accuracy(model, encode_test_split(test_set, encoding), test_set.labels)


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
    from lava.lib.dl import slayer

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    loss_fn = slayer.loss.SpikeRate(true_rate=config.true_rate, false_rate=config.false_rate, reduction="sum")
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    test_spikes = encode_test_split(test_set, encoding)
    labels = torch.from_numpy(train_set.labels)
    batches = range(0, len(train_set), config.batch_size)
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
            correct += int((out.sum(-1).argmax(1) == labels[index]).sum())
            bar.update()
        bar.set_postfix(
            epoch=epoch + 1,
            train=f"{correct / len(train_set):.3f}",
            test=f"{_accuracy(model, test_spikes, test_set.labels):.3f}",
        )
    bar.close()
    return {"train_accuracy": correct / len(train_set), "test_accuracy": _accuracy(model, test_spikes, test_set.labels)}
