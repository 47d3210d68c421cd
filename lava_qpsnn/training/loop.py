"""Training and PyTorch-side evaluation of a :class:`~lava_qpsnn.training.models.SpikingNet`.

Training re-encodes the training images every epoch (rate-coded spikes from a seeded generator,
so runs repeat; direct encoding's payloads are the same every epoch); evaluation uses the fixed test encoding of
:func:`~lava_qpsnn.data.encode_test_split`, the same spikes Lava receives. After each epoch
the model is scored on a fixed subset of the training split (``monitor_samples``), so the test
split is read once, at the end, and the state is saved for a resumable run
(:mod:`~lava_qpsnn.training.resume`).
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

from ..data import (
    Dataset,
    Encoding,
    InputStream,
    encode_images,
    encode_test_split,
    shift_images,
    spike_batches,
    stream_test_split,
)
from ..errors import ConfigError
from ..memory import keep_freed_memory
from .device import model_device, resolve_device
from .distributed import is_main, my_batches, share, sum_over_ranks, world_size, wrap
from .models import SpikingNet, input_payload_max, weight_blocks
from .resume import RunState, capture_rng, restore_rng

__all__ = [
    "TrainConfig",
    "train",
    "output_spikes",
    "classify",
    "accuracy",
    "monitor_subset",
    "check_input_scale",
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
    monitor_samples : training samples (a fixed, seeded subset with a fixed encoding) whose
        accuracy is measured after every epoch; 0 measures nothing. They stay in training:
        the figure tracks fitting without reading the test split.
    augment_shift : each training image is moved by up to this many pixels in each direction, a new
        random offset every time it is seen (:func:`~lava_qpsnn.data.shift_images`); 0: as it is
    validation : None, or a fraction of the training split held out for choosing settings
        (:func:`~lava_qpsnn.data.split_validation`): ``train_checkpoint`` and
        ``prune_checkpoint`` then train on the rest and measure on it, never reading the test
        split. Recorded in the checkpoint, so pruning it later keeps the same split.
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
    monitor_samples: int = 256
    augment_shift: int = 0
    validation: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not 0 < self.lr < math.inf:
            raise ConfigError(
                f"need epochs >= 0, batch size >= 1, lr > 0; got {self.epochs}, {self.batch_size}, {self.lr}"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}")
        if not 0 <= self.weight_decay < math.inf or (self.init_gain is not None and not 0 < self.init_gain < math.inf):
            raise ConfigError(f"need weight decay >= 0 and init gain > 0; got {self.weight_decay}, {self.init_gain}")
        if self.augment_shift < 0:
            raise ConfigError(f"the augmentation shift must be >= 0 pixels, got {self.augment_shift}")
        if self.monitor_samples < 0:
            raise ConfigError(
                f"monitor samples must be >= 0, got {self.monitor_samples}", settings=("monitor_samples",)
            )
        if self.validation is not None and not 0 < self.validation < 1:
            raise ConfigError(f"the validation fraction must be in (0, 1), got {self.validation}")

    def to_dict(self) -> dict:
        return dict(vars(self))


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


def _loss_function(config: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
    """``loss(output spikes n x classes x T, labels n, B)`` for ``config.loss``: this rank's n samples' part of
    the loss of a global batch of B (the whole loss when n = B; see :mod:`~lava_qpsnn.training.distributed`)."""
    ce = torch.nn.functional.cross_entropy
    if config.loss == "ce-count":
        return lambda out, labels, batch: ce(out.sum(-1), labels, reduction="sum") / batch
    if config.loss == "ce-rate":
        steps = lambda out: out.shape[-1]  # noqa: E731
        return lambda out, labels, batch: (
            ce(out, labels[:, None].expand(-1, steps(out)), reduction="sum") / (batch * steps(out))
        )
    from lava.lib.dl import slayer

    spike_rate = slayer.loss.SpikeRate(true_rate=config.true_rate, false_rate=config.false_rate, reduction="sum")
    return lambda out, labels, batch: spike_rate(out, labels)


def classify(spikes: np.ndarray | torch.Tensor) -> np.ndarray:
    """Predicted class per sample from output spikes ``N x classes x T``."""
    counts = np.asarray(spikes).sum(axis=-1)
    return counts.argmax(axis=1)


@torch.no_grad()
def output_spikes(
    model: SpikingNet,
    spikes: np.ndarray | InputStream,
    batch_size: int = 256,
    *,
    device: str | torch.device | None = None,
    layers: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Run ``spikes`` (``NCHWT``, any dtype, or a stream) through ``model``; return output spikes ``N x classes x T``.

    Input goes to float32 one batch at a time, so bool spikes stay compact. ``device``
    moves ``model`` there first (in place); by default it runs where ``model`` is.
    ``layers=True`` returns the spikes of every block with a neuron (conv, pooling, dense),
    in the order of a ``.net``'s neuron layers (as :func:`~lava_qpsnn.sim.simulate` returns them).
    """
    if device is not None:
        model.to(resolve_device(device))
    model.eval()
    where = model_device(model)
    spiking = [block for block in model.blocks if getattr(block, "neuron", None) is not None] if layers else []
    recorded: list[list[np.ndarray]] = [[] for _ in spiking]
    handles = [_record_spikes(block, into) for block, into in zip(spiking, recorded, strict=True)]
    outputs = []
    try:
        for x in spike_batches(spikes, batch_size):
            out = model(torch.as_tensor(x).to(where, torch.float32))
            if not layers:  # with layers, the output is the last layer recorded
                outputs.append(out.cpu().numpy().astype(np.int8))
    finally:
        for handle in handles:
            handle.remove()
    return [np.concatenate(layer) for layer in recorded] if layers else np.concatenate(outputs)


def _record_spikes(block: torch.nn.Module, into: list[np.ndarray]) -> torch.utils.hooks.RemovableHandle:
    """Append the spikes of ``block``'s neurons to ``into`` on every forward: the block's output, or, where it
    has axonal delays, their input (the delays act on the way to the next layer, as the ``.net`` stores them)."""
    delay = getattr(block, "delay", None)
    if delay is not None:
        return delay.register_forward_pre_hook(lambda _m, args: into.append(args[0].cpu().numpy().astype(np.int8)))
    return block.register_forward_hook(lambda _m, _i, out: into.append(out.cpu().numpy().astype(np.int8)))


@torch.no_grad()
def _accuracy(model: SpikingNet, spikes: np.ndarray | InputStream, labels: np.ndarray, batch_size: int = 256) -> float:
    """Share of ``labels`` predicted; with several ranks each runs its share of the batches."""
    model.eval()
    where = model_device(model)
    correct = 0
    for i, x in my_batches(enumerate(spike_batches(spikes, batch_size))):
        predicted = classify(model(torch.as_tensor(x).to(where, torch.float32)).cpu().numpy())
        correct += int((predicted == labels[i * batch_size : i * batch_size + len(x)]).sum())
    return sum_over_ranks(correct) / len(labels)


def accuracy(model: SpikingNet, test_set: Dataset, encoding: Encoding) -> float:
    """Accuracy of ``model`` on the fixed encoding of ``test_set`` (encoded batch by batch)."""
    return _accuracy(model, stream_test_split(test_set, encoding), test_set.labels)


def check_input_scale(net: torch.nn.Module, encoding: Encoding) -> None:
    """Refuse a float network that would read ``encoding``'s input at another scale than it was made for."""
    takes = input_payload_max(net)
    if takes != encoding.payload_max:
        raise ConfigError(
            f"the network takes input values up to {takes} but {encoding.describe()} sends up to "
            f"{encoding.payload_max}: call lava_qpsnn.training.models.scale_input(net, encoding.payload_max) first"
        )


def monitor_subset(train_set: Dataset, samples: int) -> Dataset:
    """The fixed subset of ``samples`` training images scored after every epoch (the same for every seed)."""
    index = np.sort(np.random.default_rng(0).permutation(len(train_set))[:samples])
    return Dataset(train_set.images[index], train_set.labels[index], train_set.num_classes)


def train(
    model: SpikingNet,
    train_set: Dataset,
    test_set: Dataset,
    encoding: Encoding,
    config: TrainConfig,
    *,
    progress: bool = True,
    device: str | torch.device | None = None,
    run: RunState | None = None,
    stage: str = "train",
) -> dict[str, float]:
    """Train ``model`` in place; return the last epoch's train accuracy and the final test accuracy.

    ``device`` moves ``model`` there first (default: where it is). ``run`` saves the state
    after every epoch as ``stage`` and, if it holds a saved state of ``stage``, continues
    after that state's last epoch (see :mod:`~lava_qpsnn.training.resume`).

    Calls :func:`~lava_qpsnn.memory.keep_freed_memory`: the process keeps freed memory for the
    next step (and its peak memory until it exits).

    Under torchrun each rank runs its share of every batch (:mod:`~lava_qpsnn.training.distributed`);
    ``config.batch_size`` is the global batch, the same as in one process.
    """
    if device is not None:
        model.to(resolve_device(device))
    check_input_scale(model, encoding)
    if config.batch_size < world_size():
        raise ConfigError(
            f"a batch of {config.batch_size} cannot give each of {world_size()} ranks a sample",
            settings=("batch_size",),
        )
    keep_freed_memory()  # every step allocates the same large tensors: reuse them (see lava_qpsnn.memory)
    where = model_device(model)
    learner = wrap(model)  # DistributedDataParallel under torchrun, else the model itself
    run = run or RunState()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed + 1)
    loss_fn = _loss_function(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batches = range(0, len(train_set), config.batch_size)
    schedule = None
    if config.schedule == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs * len(batches)))
    history: list[dict[str, float]] = []
    saved = run.epoch_state(stage)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])
        restore_rng(saved["rng"], rng)
        history = list(saved["history"])
    monitor_set = monitor_subset(train_set, config.monitor_samples)
    monitor_spikes = encode_test_split(monitor_set, encoding)
    labels = torch.from_numpy(train_set.labels).to(where)
    bar = tqdm(
        total=config.epochs * len(batches),
        initial=len(history) * len(batches),
        desc=stage,
        unit="batch",
        disable=not (progress and is_main()),
    )
    for epoch in range(len(history), config.epochs):
        model.train()
        order = rng.permutation(len(train_set))
        correct = trained = 0
        for start in batches:
            index = order[start : start + config.batch_size]
            images = shift_images(train_set.images[index], config.augment_shift, rng)
            spikes = encode_images(images, encoding, rng)  # every rank draws all
            if len(index) < world_size():  # a last batch too small to give every rank a sample is skipped
                bar.update()
                continue
            trained += len(index)
            mine = share(np.arange(len(index)))
            x = torch.from_numpy(spikes[mine]).to(where, torch.float32)
            y = labels[torch.from_numpy(index[mine]).to(where)]
            out = learner(x)
            loss = loss_fn(out, y, len(index)) * world_size()  # DDP averages the ranks' gradients
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            correct += int((out.sum(-1).argmax(1) == y).sum())
            bar.update()
        epoch_metrics = {"train_accuracy": sum_over_ranks(correct) / trained}
        if len(monitor_set):
            epoch_metrics["monitor_accuracy"] = _accuracy(model, monitor_spikes, monitor_set.labels)
        history.append(epoch_metrics)
        bar.set_postfix(epoch=epoch + 1, **{k.split("_")[0]: f"{v:.3f}" for k, v in epoch_metrics.items()})
        if is_main():
            run.save(
                stage,
                {
                    "model": _cpu(model.state_dict()),
                    "optimizer": _cpu(optimizer.state_dict()),
                    "schedule": None if schedule is None else schedule.state_dict(),
                    "rng": capture_rng(rng),
                    "history": history,
                },
            )
    bar.close()
    train_accuracy = history[-1]["train_accuracy"] if history else 0.0
    return {"train_accuracy": train_accuracy, "test_accuracy": accuracy(model, test_set, encoding)}


def _cpu(value):
    """``value`` (nested dicts and lists of tensors) with every tensor copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cpu(v) for v in value)
    return value
