"""From settings to a checkpoint: train (and prune) in one call, from scratch or from a checkpoint, or prune one.

Used by the CLI, the demo and the benchmarks. ``train --prune`` and ``prune`` run the same
schedule (:func:`~lava_qpsnn.training.prune.prune_and_finetune`) on the same network, so they give the
same weights and metrics.
"""

from __future__ import annotations

import hashlib
import os

import torch

from .data import Dataset, Encoding, load_dataset, split_validation
from .errors import ConfigError
from .export.fixed_point import to_fixed_point
from .training.checkpoint import Checkpoint
from .training.device import resolve_device
from .training.loop import TrainConfig, accuracy, init_weights, train
from .training.models import build_model, scale_input
from .training.prune import PruneConfig, channels_left, check_group_ratios, prunable_blocks, prune_and_finetune
from .training.quantize import QuantConfig, quantize_model
from .training.resume import RunState, settings_of
from .training.specs import ModelConfig, NeuronConfig

__all__ = ["train_checkpoint", "prune_checkpoint"]


def train_checkpoint(
    *,
    dataset: str | None = None,
    arch: str = "mlp",
    norm: str = "none",
    encoding: Encoding | None = None,
    config: TrainConfig | None = None,
    quant: QuantConfig | None = None,
    prune: PruneConfig | None = None,
    neuron: NeuronConfig | None = None,
    init: Checkpoint | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
    state: str | os.PathLike | None = None,
) -> Checkpoint:
    """Build, (quantize,) train, (prune, fine-tune, compact,) and package a model.

    ``arch`` is a layer spec or preset (:func:`~lava_qpsnn.training.notation.parse_arch`), ``norm``
    ``"bn"`` or ``"none"``; ``device`` is ``"cpu"``, ``"cuda"`` or ``"auto"``.

    ``dataset`` defaults to ``"digits"``, ``encoding`` to :class:`Encoding`'s defaults.

    ``init``: train this checkpoint's network further instead (e.g. one imported from NIR), with its
    weights, neurons, BatchNorm and delays, on its data set and encoding unless ``dataset`` or ``encoding``
    say otherwise; ``arch``, ``norm`` and ``neuron`` are then unused. It is
    quantized by ``quant`` unless it already is (then it trains on with its own quantizers), and pruned
    by ``prune`` unless it already is; both at once are refused.

    Metrics recorded: ``train_accuracy``, ``test_accuracy`` (the final model) and
    ``fixed_point_test_accuracy`` (the integer network that is exported and runs in Lava);
    with pruning also ``unpruned_test_accuracy`` and ``pruned_test_accuracy_before_finetune``.

    With ``config.validation`` (a fraction, e.g. 0.2) it trains on the rest of the training
    split and evaluates on the carved-off part instead of the test split: every metric named
    ``test`` above is then named ``validation``, and the test split is never read.
    This is how settings are chosen.

    ``state`` is a file the run's state is saved to after every epoch; if it exists, the run
    continues from it (it must come from the same settings) and ends as if never stopped.
    It is left in place: delete it once the checkpoint is saved.
    """
    dataset = dataset or (init.dataset if init is not None else "digits")
    encoding = encoding or (init.encoding if init is not None else Encoding())
    config = config or TrainConfig()
    neuron = neuron or NeuronConfig()
    where = resolve_device(device)
    train_set, test_set = _splits(dataset, config.validation)
    torch.manual_seed(config.seed)
    if init is None:
        model_config = ModelConfig.from_arch(
            arch, train_set.images.shape[1:], train_set.num_classes, norm=norm, neuron=neuron
        )
        model = scale_input(build_model(model_config), encoding.payload_max)
        if config.init_gain is not None:
            init_weights(model, config.init_gain)
    else:
        model_config, model = init.model, _initial_model(init, train_set, encoding, quant, prune)
    _check_window(model, encoding)
    if prune is not None:
        check_group_ratios(model, prune.layer_ratios(len(prunable_blocks(model))))  # fail before training
    if quant is not None:
        quantize_model(model, quant)
    model.to(where)
    source = {} if init is None else {"source": _digest(init)}
    run = RunState(
        state,
        settings_of(
            dataset=dataset,
            model=model_config.to_dict(),
            encoding=encoding,
            train=config,
            quant=quant,
            prune=prune,
            **source,
        ),
    )
    metrics = run.stage("train", train, model, train_set, test_set, encoding, config, progress=progress, run=run)
    record = None if init is None else init.pruning  # a pruned initial network stays a pruned one
    if prune is not None:
        model, record, metrics = prune_and_finetune(
            model, prune, train_set, test_set, encoding, config, progress=progress, run=run
        )
    return _package(model, dataset, encoding, test_set, metrics, record, config)


def prune_checkpoint(
    checkpoint: Checkpoint,
    prune: PruneConfig,
    *,
    progress: bool = True,
    device: str | torch.device = "cpu",
    state: str | os.PathLike | None = None,
) -> Checkpoint:
    """Prune and fine-tune a trained, unpruned checkpoint as ``train --prune`` would have.

    Fine-tuning uses the training settings the checkpoint records (``TrainConfig()`` for one
    that records none), on the training and test splits of its data set. A pruned checkpoint,
    or a ratio that would remove every channel of a layer, is refused before any work.
    A checkpoint trained with a validation split (``TrainConfig.validation``) is fine-tuned
    and measured on the same split, the test split unread. ``state`` makes the run resumable,
    as in :func:`train_checkpoint`.
    """
    if checkpoint.pruning is not None:
        record = checkpoint.pruning
        raise ConfigError(
            f"the checkpoint is already pruned ({record['criterion']}, ratios {record['layer_ratios']}): "
            "prune the unpruned checkpoint it came from"
        )
    net = checkpoint.build().to(resolve_device(device))
    widths = [int(b.synapse.weight.shape[0]) for b in prunable_blocks(net)]
    for layer, (width, ratio) in enumerate(zip(widths, prune.layer_ratios(len(widths)), strict=True)):
        if channels_left(width, ratio) < 1:
            raise ConfigError(
                f"a pruning ratio of {ratio} would remove all {width} channels of prunable layer {layer}: "
                "use a smaller ratio",
                settings=("prune",),
            )
    config = checkpoint.training or TrainConfig()
    train_set, test_set = _splits(checkpoint.dataset, config.validation)
    run = RunState(state, settings_of(source=_digest(checkpoint), train=config, prune=prune))
    small, record, metrics = prune_and_finetune(
        net, prune, train_set, test_set, checkpoint.encoding, config, progress=progress, run=run
    )
    return _package(small, checkpoint.dataset, checkpoint.encoding, test_set, metrics, record, config)


def _initial_model(
    init: Checkpoint, train_set: Dataset, encoding: Encoding, quant: QuantConfig | None, prune: PruneConfig | None
) -> torch.nn.Module:
    """``init``'s network, ready to train on ``train_set`` with ``encoding``; one-line errors where it cannot."""
    shape, classes = tuple(train_set.images.shape[1:]), train_set.num_classes
    if (init.model.image_shape, init.model.num_classes) != (shape, classes):
        have = f"{'x'.join(map(str, init.model.image_shape))} images of {init.model.num_classes} classes"
        raise ConfigError(
            f"the initial network takes {have}, the data set has {'x'.join(map(str, shape))} images of {classes} "
            f"classes: train it on the data it was made for ({init.dataset})",
            settings=("dataset",),
        )
    if quant is not None and init.quant is not None:
        raise ConfigError(
            f"the initial network is already quantized ({init.quant.bits} bits, {init.quant.quantizer}): train it "
            "further with its own quantizers, without new quantization settings",
            settings=("bits",),
        )
    if prune is not None and init.pruning is not None:
        raise ConfigError(
            f"the initial network is already pruned ({init.pruning['criterion']}, ratios "
            f"{init.pruning['layer_ratios']}): train it further without pruning settings, or start from the unpruned "
            "network it came from",
            settings=("prune",),
        )
    return scale_input(init.build(), encoding.payload_max).train()


def _check_window(model: torch.nn.Module, encoding: Encoding) -> None:
    """Refuse a window no output spike can reach: each spiking layer delays a sample by one step (slayer and Lava)."""
    depth = sum(getattr(block, "neuron", None) is not None for block in model.blocks)
    if encoding.time_steps <= depth:
        raise ConfigError(
            f"{encoding.time_steps} time steps do not outlast the network's depth ({depth} spiking layers, one step "
            f"of latency each): no output spike of a sample would arrive in its window; use more than {depth} time "
            "steps or fewer layers",
            settings=("time_steps", "arch"),
        )


def _splits(dataset: str, validation: float | None) -> tuple[Dataset, Dataset]:
    """``(train, test)``, or with a ``validation`` fraction ``(the rest of train, validation)``."""
    train_set, test_set = load_dataset(dataset)
    return (train_set, test_set) if validation is None else split_validation(train_set, validation)


def _package(
    net: torch.nn.Module,
    dataset: str,
    encoding: Encoding,
    test_set: Dataset,
    metrics: dict[str, float],
    record: dict | None,
    config: TrainConfig,
) -> Checkpoint:
    """The checkpoint of a trained (and compacted) ``net``, with its fixed-point test accuracy.

    With ``config.validation``, ``test_set`` is the validation split and every metric named
    ``test`` is named ``validation`` instead.
    """
    fixed = to_fixed_point(net, time_steps=encoding.time_steps)
    metrics = {**metrics, "fixed_point_test_accuracy": accuracy(fixed, test_set, encoding)}
    if config.validation is not None:
        metrics = {name.replace("test", "validation"): value for name, value in metrics.items()}
    return Checkpoint.of(net, dataset=dataset, encoding=encoding, metrics=metrics, pruning=record, training=config)


def _digest(checkpoint: Checkpoint) -> str:
    """A fingerprint of a checkpoint's weights: a run state must continue from the same network."""
    digest = hashlib.sha256()
    for name, tensor in sorted(checkpoint.state_dict.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
