"""QP-SNN's pruning schedule: score once on a calibration batch, mask, fine-tune, compact.

The network is (quantized and) trained, each prunable layer's channels are scored once on a
calibration batch of training data, the lowest-scoring ``ratio`` of them are masked at once,
and the masked network is fine-tuned (:func:`prune_and_finetune`; ``steps > 1`` prunes in equal
increments with fine-tuning in between instead). :func:`~lava_qpsnn.training.prune.compact`
then builds the smaller network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...data import Dataset, Encoding, InputStream, input_stream
from ...errors import ConfigError
from ..device import resolve_device
from ..loop import TrainConfig, accuracy, train
from ..models import weight_blocks
from ..resume import RunState
from .compact import compact
from .criteria import channel_scores, criterion_named, select_channels
from .masks import apply_masks, kept_channels
from .plan import channel_parts, check_group_ratios, layer_keeps, prunable_blocks

__all__ = ["PruneConfig", "prune_and_finetune", "calibration_stream", "calibration_batch"]


@dataclass(frozen=True)
class PruneConfig:
    """How to prune.

    Attributes
    ----------
    ratios : fraction of channels to remove, in [0, 1): one value for every prunable layer,
        or one per prunable layer (first to last)
    criterion : ``"sca"``, ``"svs"`` (default), ``"l1"`` or ``"random"``
    finetune_epochs : epochs of fine-tuning after pruning (split over ``steps``)
    finetune_lr : Adam learning rate of fine-tuning (the paper's 1e-3)
    steps : 1 = one-shot (the paper's schedule); n > 1 = iterative, in n equal increments
    calibration_samples : training samples the scores are computed on (the paper uses ~640)
    """

    ratios: tuple[float, ...]
    criterion: str = "svs"
    finetune_epochs: int = 10
    finetune_lr: float = 1e-3
    steps: int = 1
    calibration_samples: int = 640

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if not self.ratios or any(not 0.0 <= r < 1.0 for r in self.ratios):
            raise ConfigError(f"pruning ratios must be in [0, 1), got {list(self.ratios)}", settings=("prune",))
        criterion_named(self.criterion)
        if self.finetune_epochs < 0 or self.steps < 1 or self.calibration_samples < 1 or self.finetune_lr <= 0:
            raise ConfigError(
                "need fine-tuning epochs >= 0, pruning steps >= 1, calibration samples >= 1 and a positive "
                f"fine-tuning lr; got {self.finetune_epochs}, {self.steps}, {self.calibration_samples}, "
                f"{self.finetune_lr}",
                settings=("finetune_epochs", "prune_steps", "calibration_samples"),
            )

    def layer_ratios(self, count: int) -> tuple[float, ...]:
        """The ratio of each of ``count`` prunable layers."""
        if len(self.ratios) == 1:
            return self.ratios * count
        if len(self.ratios) != count:
            raise ConfigError(
                f"got {len(self.ratios)} pruning ratios but the model has {count} prunable layers "
                "(every conv/dense layer but the last and the depthwise convs): give one ratio or one per layer",
                settings=("prune",),
            )
        return self.ratios

    def to_dict(self) -> dict:
        return {**vars(self), "ratios": list(self.ratios)}


def calibration_stream(train_set: Dataset, encoding: Encoding, samples: int, seed: int) -> InputStream:
    """``samples`` training images (a seeded random subset), encoded as in training, batch by batch on demand."""
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(train_set))[:samples]
    return input_stream(train_set.images[index], encoding, rng.bit_generator.state)


def calibration_batch(train_set: Dataset, encoding: Encoding, samples: int, seed: int) -> np.ndarray:
    """The whole :func:`calibration_stream` at once, as float32 input (``N x ... x T``)."""
    return calibration_stream(train_set, encoding, samples, seed).encode().astype(np.float32)


def _select(
    net: torch.nn.Module,
    calibration: np.ndarray,
    criterion: str,
    seed: int,
    ratios: Sequence[float],
    keeps: Sequence[np.ndarray],
) -> dict[str, list]:
    """One pruning increment's channel choice: ``{"keeps": per-layer keep lists, "capped": layers kept at one}``."""
    scores = channel_scores(net, calibration, criterion, seed=seed)
    parts = channel_parts(net)
    selected = [select_channels(*choice) for choice in zip(scores, ratios, keeps, parts, strict=True)]
    return {"keeps": [k.tolist() for k, _ in selected], "capped": [i for i, (_, c) in enumerate(selected) if c]}


def prune_and_finetune(
    net: torch.nn.Module,
    config: PruneConfig,
    train_set: Dataset,
    test_set: Dataset,
    encoding: Encoding,
    train_config: TrainConfig,
    *,
    progress: bool = True,
    device: str | torch.device | None = None,
    run: RunState | None = None,
) -> tuple[torch.nn.Module, dict, dict[str, float]]:
    """Prune a trained ``net`` (in place, with masks), fine-tune it, and return its compaction.

    The one implementation of the schedule: ``train --prune`` runs it after training, ``prune``
    on a trained checkpoint. Returns ``(compact_net, record, metrics)``: ``record`` describes
    the pruning for the checkpoint (criterion, per-layer ratios, widths before and after, kept
    channel indices of every conv/dense layer but the last, depthwise ones included, layers
    whose ratio was capped to keep one channel); ``metrics`` holds the
    test accuracy before pruning, right after masking (before fine-tuning), the final test
    accuracy, and the last fine-tuning's train accuracy (absent without fine-tuning).
    ``device`` moves ``net`` there first; ``run`` makes it resumable (stages ``prune-1``,
    ``finetune-1``, ...; see :mod:`~lava_qpsnn.training.resume`).
    """
    if device is not None:
        net.to(resolve_device(device))
    run = run or RunState()
    ratios = config.layer_ratios(len(prunable_blocks(net)))
    check_group_ratios(net, ratios)
    calibration = calibration_stream(train_set, encoding, config.calibration_samples, train_config.seed + 2)
    metrics = {"unpruned_test_accuracy": run.stage("unpruned", accuracy, net, test_set, encoding)}
    keeps = kept_channels(net)
    capped: set[int] = set()
    # equal shares, the remainder to the last steps: the final increment is always fine-tuned if any is
    epochs = [
        config.finetune_epochs // config.steps + (i >= config.steps - config.finetune_epochs % config.steps)
        for i in range(config.steps)
    ]
    for step, step_epochs in enumerate(epochs, start=1):
        targets = [r * step / config.steps for r in ratios]
        seed = train_config.seed + step
        selected = run.stage(f"prune-{step}", _select, net, calibration, config.criterion, seed, targets, keeps)
        keeps = [np.array(k, bool) for k in selected["keeps"]]
        apply_masks(net, keeps)  # (again, if a resumed run skipped the stage: masks before the saved weights)
        capped |= set(selected["capped"])
        if step == 1:
            metrics["pruned_test_accuracy_before_finetune"] = run.stage("masked", accuracy, net, test_set, encoding)
        finetune = TrainConfig(
            **{
                **vars(train_config),
                "epochs": step_epochs,
                "lr": config.finetune_lr,
                "seed": train_config.seed + 100 * step,
            }
        )
        if step_epochs:
            stage = f"finetune-{step}"
            kwargs = dict(progress=progress, run=run, stage=stage)
            metrics.update(run.stage(stage, train, net, train_set, test_set, encoding, finetune, **kwargs))
    metrics["test_accuracy"] = accuracy(net, test_set, encoding)
    record = {
        **config.to_dict(),
        "layer_ratios": list(ratios),
        "widths_before": [int(b.synapse.weight.shape[0]) for b in weight_blocks(net)],
        "kept_channels": [np.flatnonzero(k).tolist() for k in layer_keeps(net, keeps)[:-1]],
        "capped_layers": sorted(capped),
    }
    return compact(net), record, metrics
