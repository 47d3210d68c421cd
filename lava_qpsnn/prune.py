"""Structured pruning of slayer networks: channel scores, masks as weight hooks, compaction.

A *prunable layer* is every synapse layer but the last (its outputs are the classes): the
output channels of conv layers (kernels) and the output neurons of dense layers. Pruning
follows QP-SNN's schedule: the network is (quantized and) trained, each prunable layer's
channels are scored once on a calibration batch of training data, the lowest-scoring
``ratio`` of them are masked at once, and the masked network is fine-tuned
(:func:`prune_and_finetune`; ``steps > 1`` prunes in equal increments with fine-tuning in
between instead). :func:`compact` then builds the smaller network with the pruned channels,
and the matching inputs of the next layer, physically removed.

Criteria (higher score = keep), computed on a calibration batch (:func:`channel_scores`):

- ``sca`` (QP-SNN baseline, Eq 7): mean over samples and time steps of the L1 norm of the
  channel's membrane-potential map.
- ``svs`` (Eqs 11-13): per sample, the channel's spike map averaged over time (``H x W``);
  its numerical rank (singular values above 1e-6), averaged over samples. On a dense layer
  the map is ``1 x 1`` and its rank is 1 iff the neuron spiked: SVS becomes the fraction of
  samples in which the neuron fires. Ties, frequent there, go to the higher firing rate.
- ``l1``: L1 norm of the channel's (quantized) weights, the classic weight criterion.
- ``random``: seeded random scores, the control.

Masks are part of the weight hook (:class:`~lava_qpsnn.quantize.WeightQuantizer` ``keep``,
or :class:`MaskedWeights` around slayer's default hook), so they compose with quantization
and with slayer's export: a masked channel has all-zero weights, never spikes, and feeds
nothing, which is why the compact network's spikes equal the masked network's.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data import Dataset, Encoding, rate_encode
from .errors import ConfigError
from .models import ModelConfig, SpikingNet, build_model
from .quantize import WeightQuantizer, _set_hook, _synapse_blocks
from .train import TrainConfig, accuracy, train

__all__ = [
    "CRITERIA",
    "PruneConfig",
    "MaskedWeights",
    "prunable_blocks",
    "channel_scores",
    "select_channels",
    "apply_masks",
    "kept_channels",
    "compact",
    "score_stability",
    "svs_scores",
    "sca_scores",
]

CRITERIA = ("sca", "svs", "l1", "random")
SVS_EPS = 1e-6  # QP-SNN's threshold on singular values


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
            raise ConfigError(f"--prune ratios must be in [0, 1), got {list(self.ratios)}: e.g. --prune 0.5")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"unknown criterion {self.criterion!r}: choose one of {', '.join(CRITERIA)}")
        if self.finetune_epochs < 0 or self.steps < 1 or self.calibration_samples < 1 or self.finetune_lr <= 0:
            raise ConfigError(
                "need --finetune-epochs >= 0, --prune-steps >= 1, --calibration-samples >= 1 and a positive lr; "
                f"got {self.finetune_epochs}, {self.steps}, {self.calibration_samples}, {self.finetune_lr}"
            )

    def layer_ratios(self, count: int) -> tuple[float, ...]:
        """The ratio of each of ``count`` prunable layers."""
        if len(self.ratios) == 1:
            return self.ratios * count
        if len(self.ratios) != count:
            raise ConfigError(
                f"--prune got {len(self.ratios)} ratios but the model has {count} prunable layers "
                "(every synapse layer but the last): give one ratio or one per layer"
            )
        return self.ratios

    def to_dict(self) -> dict:
        return {**vars(self), "ratios": list(self.ratios)}


class MaskedWeights(torch.nn.Module):
    """``pre_hook_fx`` that masks what another (element-wise) hook returns, e.g. slayer's ``quantize_8bit``."""

    def __init__(self, inner: Callable | None, keep: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("keep", keep)

    def forward(self, weight: torch.Tensor, descale: bool = False) -> torch.Tensor:
        weight = weight * self.keep
        return weight if self.inner is None else self.inner(weight, descale=descale)


def prunable_blocks(net: SpikingNet) -> list[torch.nn.Module]:
    """Synapse blocks whose output channels may be pruned: all but the last (the classes)."""
    return _synapse_blocks(net)[:-1]


def _effective_weight(block: torch.nn.Module) -> torch.Tensor:
    hook = block.synapse.pre_hook_fx
    weight = block.synapse.weight
    return weight if hook is None else hook(weight)


def sca_scores(voltage: torch.Tensor) -> torch.Tensor:
    """Eq 7 per sample: L1 norm of each channel's membrane-potential map, averaged over time.

    ``voltage`` is ``N x C x ... x T``; returns ``N x C``.
    """
    return voltage.abs().flatten(2, -2).sum(2).mean(-1) if voltage.dim() > 3 else voltage.abs().mean(-1)


def svs_scores(spikes: torch.Tensor) -> torch.Tensor:
    """Eqs 11-13 per sample: numerical rank of each channel's time-averaged spike map.

    ``spikes`` is ``N x C x H x W x T`` (rank of the ``H x W`` map) or ``N x C x T`` (a
    ``1 x 1`` map: 1 if the neuron spiked); returns ``N x C``.
    """
    maps = spikes.float().mean(-1)
    if maps.dim() == 2:
        return (maps.abs() > SVS_EPS).float()
    return (torch.linalg.svdvals(maps) > SVS_EPS).sum(-1).float()


class _ActivityRecorder:
    """Forward hooks on the neurons of prunable blocks, summing per-channel activity scores."""

    def __init__(self, blocks: Sequence[torch.nn.Module], criterion: str) -> None:
        self.criterion = criterion
        self.totals: list[torch.Tensor | float] = [0.0] * len(blocks)
        self.rates: list[torch.Tensor | float] = [0.0] * len(blocks)
        self.handles = [b.neuron.register_forward_hook(self._hook(i)) for i, b in enumerate(blocks)]

    def _hook(self, index: int) -> Callable:
        def record(neuron: torch.nn.Module, inputs: tuple, spikes: torch.Tensor) -> None:
            if self.criterion == "sca":
                _, voltage = neuron.dynamics(inputs[0])  # stateless: recomputing changes nothing
                score = sca_scores(voltage)
            else:
                score = svs_scores(spikes)
            self.totals[index] = self.totals[index] + score.sum(0)
            self.rates[index] = self.rates[index] + spikes.flatten(2).mean(-1).sum(0)

        return record

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@dataclass(frozen=True)
class LayerScores:
    """Scores of one prunable layer's output channels, and their firing rates (tie-break)."""

    score: np.ndarray
    rate: np.ndarray

    def ranking(self) -> np.ndarray:
        """Channel indices, most important first: by score, ties by rate, then by index."""
        return np.lexsort((np.arange(len(self.score)), -self.rate, -self.score))


@torch.no_grad()
def channel_scores(
    net: SpikingNet, spikes: np.ndarray | torch.Tensor, criterion: str, *, seed: int = 0, batch_size: int = 128
) -> list[LayerScores]:
    """Score every output channel of every prunable layer of ``net`` (higher = keep).

    ``spikes`` is a calibration batch in the network's input layout (``NCHWT``); the
    activity criteria (``sca``, ``svs``) run it through ``net`` with forward hooks on the
    blocks' neurons, ``l1`` and ``random`` do not need it.
    """
    blocks = prunable_blocks(net)
    if criterion not in CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r}: choose one of {', '.join(CRITERIA)}")
    if criterion in ("l1", "random"):
        rng = np.random.default_rng(seed)
        scores = [
            _effective_weight(b).abs().flatten(1).sum(1).numpy()
            if criterion == "l1"
            else rng.random(b.synapse.weight.shape[0])
            for b in blocks
        ]
        return [LayerScores(s, np.zeros_like(s)) for s in scores]
    recorder = _ActivityRecorder(blocks, criterion)
    net.eval()
    spikes = torch.as_tensor(spikes)
    try:
        for start in range(0, len(spikes), batch_size):
            net(spikes[start : start + batch_size])
    finally:
        recorder.remove()
    return [
        LayerScores(np.asarray(total / len(spikes)), np.asarray(rate / len(spikes)))
        for total, rate in zip(recorder.totals, recorder.rates, strict=True)
    ]


def select_channels(scores: LayerScores, ratio: float, keep: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Boolean keep-mask removing ``ratio * C`` channels rounded half up, and whether it was capped.

    Channels already pruned (``keep`` False) stay pruned and count toward the ratio. At least
    one channel is always kept; the flag says when the ratio asked for none.
    """
    count = len(scores.score)
    keep = np.ones(count, bool) if keep is None else np.asarray(keep, bool)
    target = count - math.floor(ratio * count + 0.5)  # half up: 0.5 of 5 and of 7 both round up
    capped = target < 1
    ranking = [c for c in scores.ranking() if keep[c]]
    new = np.zeros(count, bool)
    new[ranking[: max(target, 1)]] = True
    return new, capped


def kept_channels(net: SpikingNet) -> list[np.ndarray]:
    """Keep-mask of each prunable layer's output channels (all True when unmasked)."""
    out = []
    for block in prunable_blocks(net):
        keep = getattr(block.synapse.pre_hook_fx, "keep", None)
        channels = block.synapse.weight.shape[0]
        out.append(np.ones(channels, bool) if keep is None else keep.flatten(1).any(1).numpy())
    return out


def _input_keep(block: torch.nn.Module, previous: np.ndarray | None) -> np.ndarray | None:
    """Keep-mask over ``block``'s input features, given the previous layer's channel mask.

    Across a flatten each channel owns ``in_features / channels`` consecutive features.
    """
    if previous is None:
        return None
    repeat = block.synapse.weight.shape[1] // len(previous)
    return np.repeat(previous, repeat)


def _weight_masks(net: SpikingNet, channel_keeps: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Weight-shaped masks of every synapse layer for the given output-channel masks."""
    masks, previous = [], None
    blocks = _synapse_blocks(net)
    for block, out_keep in itertools.zip_longest(blocks, channel_keeps):
        shape = block.synapse.weight.shape
        rows = torch.ones(shape[0], dtype=torch.bool) if out_keep is None else torch.from_numpy(out_keep)
        in_keep = _input_keep(block, previous)
        cols = torch.ones(shape[1], dtype=torch.bool) if in_keep is None else torch.from_numpy(in_keep)
        mask = (rows[:, None] & cols[None, :]).reshape(shape[0], shape[1], *[1] * (len(shape) - 2))
        masks.append(mask.expand(shape).clone())
        previous = out_keep
    return masks


def apply_masks(net: SpikingNet, channel_keeps: Sequence[np.ndarray]) -> SpikingNet:
    """Mask ``net`` in place: one keep-mask per prunable layer (see :func:`kept_channels`)."""
    blocks = prunable_blocks(net)
    if len(channel_keeps) != len(blocks):
        raise ConfigError(f"got {len(channel_keeps)} channel masks for {len(blocks)} prunable layers")
    for block, mask in zip(_synapse_blocks(net), _weight_masks(net, channel_keeps), strict=True):
        hook = block.synapse.pre_hook_fx
        if isinstance(hook, MaskedWeights):
            hook = hook.inner
        if isinstance(hook, WeightQuantizer):
            hook.keep = mask
        else:
            _set_hook(block.synapse, MaskedWeights(hook, mask))
    return net


def _unmasked(hook: Callable | None) -> Callable | None:
    """A copy of ``hook`` without its pruning mask."""
    if isinstance(hook, MaskedWeights):
        return hook.inner
    if isinstance(hook, WeightQuantizer):
        hook = copy.deepcopy(hook)
        hook.keep = None
    return hook


@torch.no_grad()
def compact(net: SpikingNet) -> SpikingNet:
    """The smaller network with masked channels physically removed (a new network).

    Kept output channels of each prunable layer, and the matching input channels of the
    next layer (every spatial position of a channel across a flatten), are copied into a
    network built with the reduced widths; hooks are rebuilt without masks. Its output
    spikes equal the masked network's.
    """
    channel_keeps = kept_channels(net)
    hidden = tuple(int(k.sum()) for k in channel_keeps)
    small = build_model(ModelConfig(**{**vars(net.config), "hidden": hidden}))
    previous = None
    for old, new, out_keep in itertools.zip_longest(_synapse_blocks(net), _synapse_blocks(small), channel_keeps):
        weight = old.synapse.weight
        if out_keep is not None:
            weight = weight[torch.from_numpy(out_keep)]
        in_keep = _input_keep(old, previous)
        if in_keep is not None:
            weight = weight[:, torch.from_numpy(in_keep)]
        new.synapse.weight.copy_(weight)
        hook = _unmasked(old.synapse.pre_hook_fx)
        if isinstance(hook, torch.nn.Module):  # our hooks; slayer's default is already in place
            _set_hook(new.synapse, hook)
        new.neuron._threshold = old.neuron._threshold
        previous = out_keep
    return small.train(net.training)


def score_stability(net: SpikingNet, batches: Sequence[np.ndarray], criterion: str) -> float:
    """QP-SNN's score stability (Eq 15): mean cosine similarity of the per-layer score
    vectors computed on different calibration batches (over all batch pairs and layers).
    1.0 means the criterion ranks channels the same whatever the batch."""
    per_batch = [channel_scores(net, batch, criterion) for batch in batches]
    similarities = []
    for a, b in itertools.combinations(per_batch, 2):
        for x, y in zip(a, b, strict=True):
            norm = np.linalg.norm(x.score) * np.linalg.norm(y.score)
            similarities.append(float(x.score @ y.score / norm) if norm > 0 else 1.0)
    return float(np.mean(similarities))


def calibration_batch(train_set: Dataset, encoding: Encoding, samples: int, seed: int) -> np.ndarray:
    """``samples`` training images (a seeded random subset), rate-encoded as in training."""
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(train_set))[:samples]
    return rate_encode(train_set.images[index], encoding.time_steps, rng)


def prune_and_finetune(
    net: SpikingNet,
    config: PruneConfig,
    train_set: Dataset,
    test_set: Dataset,
    encoding: Encoding,
    train_config: TrainConfig,
    *,
    progress: bool = True,
) -> tuple[SpikingNet, dict, dict[str, float]]:
    """Prune a trained ``net`` (in place, with masks), fine-tune it, and return its compaction.

    Returns ``(compact_net, record, metrics)``: ``record`` describes the pruning for the
    checkpoint (criterion, per-layer ratios, widths before and after, kept channel indices,
    layers whose ratio was capped to keep one channel); ``metrics`` holds the test accuracy
    right after masking, before fine-tuning, the final test accuracy, and the last
    fine-tuning's train accuracy (absent without fine-tuning).
    """
    ratios = config.layer_ratios(len(prunable_blocks(net)))
    calibration = calibration_batch(train_set, encoding, config.calibration_samples, train_config.seed + 2)
    keeps = kept_channels(net)
    capped: set[int] = set()
    # equal shares, the remainder to the last steps: the final increment is always fine-tuned if any is
    epochs = [
        config.finetune_epochs // config.steps + (i >= config.steps - config.finetune_epochs % config.steps)
        for i in range(config.steps)
    ]
    metrics: dict[str, float] = {}
    for step, step_epochs in enumerate(epochs, start=1):
        scores = channel_scores(net, calibration, config.criterion, seed=train_config.seed + step)
        selected = [
            select_channels(s, r * step / config.steps, k) for s, r, k in zip(scores, ratios, keeps, strict=True)
        ]
        keeps = [k for k, _ in selected]
        capped |= {i for i, (_, c) in enumerate(selected) if c}
        apply_masks(net, keeps)
        if step == 1:
            metrics["pruned_test_accuracy_before_finetune"] = accuracy(net, test_set, encoding)
        finetune = TrainConfig(
            **{
                **vars(train_config),
                "epochs": step_epochs,
                "lr": config.finetune_lr,
                "seed": train_config.seed + 100 * step,
            }
        )
        if step_epochs:
            metrics.update(train(net, train_set, test_set, encoding, finetune, progress=progress))
    metrics["test_accuracy"] = accuracy(net, test_set, encoding)
    record = {
        **config.to_dict(),
        "layer_ratios": list(ratios),
        "hidden_before": list(net.config.hidden),
        "kept_channels": [np.flatnonzero(k).tolist() for k in keeps],
        "capped_layers": sorted(capped),
    }
    return compact(net), record, metrics
