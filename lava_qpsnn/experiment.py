"""One call from settings to a trained checkpoint: used by the CLI, the demo and the benchmarks."""

from __future__ import annotations

from .checkpoint import Checkpoint
from .data import Encoding, load_dataset, split_validation
from .models import ModelConfig, NeuronConfig, build_model
from .prune import PruneConfig, prunable_blocks, prune_and_finetune
from .quantize import QuantConfig, quantize_model, to_fixed_point
from .train import TrainConfig, accuracy, init_weights, train

__all__ = ["train_checkpoint"]


def train_checkpoint(
    *,
    dataset: str = "digits",
    arch: str = "mlp",
    norm: str = "none",
    encoding: Encoding | None = None,
    config: TrainConfig | None = None,
    quant: QuantConfig | None = None,
    prune: PruneConfig | None = None,
    neuron: NeuronConfig | None = None,
    validation: float | None = None,
    progress: bool = True,
) -> Checkpoint:
    """Build, (quantize,) train, (prune, fine-tune, compact,) and package a model.

    ``arch`` is a layer spec or preset (:func:`~lava_qpsnn.models.parse_arch`), ``norm``
    ``"bn"`` or ``"none"``.

    Metrics recorded: ``train_accuracy``, ``test_accuracy`` (the final model) and
    ``fixed_point_test_accuracy`` (the integer network that is exported and runs in Lava);
    with pruning also ``unpruned_test_accuracy`` and ``pruned_test_accuracy_before_finetune``.

    ``validation`` (a fraction, e.g. 0.2) trains on the rest of the training split and
    evaluates on the carved-off part instead of the test split: every metric named
    ``test`` above is then named ``validation``, and the test split is never read.
    This is how settings are chosen.
    """
    import torch

    encoding = encoding or Encoding()
    config = config or TrainConfig()
    train_set, test_set = load_dataset(dataset)
    if validation is not None:
        train_set, test_set = split_validation(train_set, validation)
    torch.manual_seed(config.seed)
    model_config = ModelConfig.from_arch(
        arch, train_set.images.shape[1:], train_set.num_classes, norm=norm, neuron=neuron or NeuronConfig()
    )
    model = build_model(model_config)
    if config.init_gain is not None:
        init_weights(model, config.init_gain)
    if prune is not None:
        prune.layer_ratios(len(prunable_blocks(model)))  # fail before training, not after
    if quant is not None:
        quantize_model(model, quant)
    metrics = train(model, train_set, test_set, encoding, config, progress=progress)
    record = None
    if prune is not None:
        metrics["unpruned_test_accuracy"] = metrics["test_accuracy"]
        del metrics["train_accuracy"]  # of the unpruned network: replaced by fine-tuning's, if any
        model, record, prune_metrics = prune_and_finetune(
            model, prune, train_set, test_set, encoding, config, progress=progress
        )
        metrics.update(prune_metrics)
    metrics["fixed_point_test_accuracy"] = accuracy(
        to_fixed_point(model, time_steps=encoding.time_steps), test_set, encoding
    )
    if validation is not None:
        metrics = {name.replace("test", "validation"): value for name, value in metrics.items()}
    return Checkpoint.of(model, dataset=dataset, encoding=encoding, metrics=metrics, pruning=record)
