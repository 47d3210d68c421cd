"""Structured pruning of slayer networks: channel scores, masks as weight hooks, compaction.

A *prunable layer* is every conv and dense layer but the last (its outputs are the classes):
the output channels of conv layers (kernels) and the output neurons of dense layers. Pooling
layers pass channel masks through; a flatten repeats each channel's mask per position. All of
it works on any module whose ``blocks`` are slayer blocks, not only on :class:`SpikingNet`. Pruning
follows QP-SNN's schedule: the network is (quantized and) trained, each prunable layer's
channels are scored once on a calibration batch of training data, the lowest-scoring
``ratio`` of them are masked at once, and the masked network is fine-tuned
(:func:`prune_and_finetune`; ``steps > 1`` prunes in equal increments with fine-tuning in
between instead). :func:`compact` then builds the smaller network with the pruned channels,
and the matching inputs of the next layer, physically removed.

Criteria (higher score = keep) are :class:`Criterion` objects in a registry
(:func:`register_criterion`): a scorer of recorded activity (per sample) or of the weights.
The built-ins, computed on a calibration batch (:func:`channel_scores`):

- ``sca`` (QP-SNN baseline, Eq 7): mean over samples and time steps of the L1 norm of the
  channel's membrane-potential map.
- ``svs`` (Eqs 11-13): per sample, the channel's spike map averaged over time (``H x W``);
  its numerical rank (singular values above 1e-6), averaged over samples. On a dense layer
  the map is ``1 x 1`` and its rank is 1 iff the neuron spiked: SVS becomes the fraction of
  samples in which the neuron fires. Ties, frequent there, go to the higher firing rate.
- ``l1``: L1 norm of the channel's (quantized) weights, the classic weight criterion.
- ``random``: seeded random scores, the control.

Masks are part of the weight hook (:class:`~lava_qpsnn.training.hooks.WeightQuantizer` ``keep``,
or :class:`~lava_qpsnn.training.hooks.MaskedWeights` around slayer's default hook) and of the
BatchNorm (its bias), so they compose with quantization and with slayer's export: a masked
channel has all-zero weights and bias, never spikes, and feeds nothing, which is why the
compact network's spikes equal the masked network's.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data import Dataset, Encoding, SpikeStream, spike_batches
from ..errors import ConfigError
from .device import model_device, resolve_device
from .distributed import my_batches, sum_over_ranks
from .hooks import FoldedWeights, MaskedWeights, WeightQuantizer, core_hook, set_core_hook
from .loop import TrainConfig, accuracy, train
from .models import SpikingNet, weight_blocks
from .resume import RunState

__all__ = [
    "CRITERIA",
    "Criterion",
    "LayerActivity",
    "Stability",
    "register_criterion",
    "record_activity",
    "PruneConfig",
    "prunable_blocks",
    "channel_scores",
    "channels_left",
    "select_channels",
    "apply_masks",
    "kept_channels",
    "compact",
    "score_stability",
    "calibration_stream",
    "svs_scores",
    "sca_scores",
]

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
                "(every conv/dense layer but the last): give one ratio or one per layer",
                settings=("prune",),
            )
        return self.ratios

    def to_dict(self) -> dict:
        return {**vars(self), "ratios": list(self.ratios)}


def prunable_blocks(net: torch.nn.Module) -> list[torch.nn.Module]:
    """Conv and dense blocks whose output channels may be pruned: all but the last (the classes)."""
    blocks = weight_blocks(net)
    grouped = [i for i, b in enumerate(blocks) if getattr(b.synapse, "groups", 1) > 1]
    if grouped:
        raise ConfigError(f"weight layers {grouped} are grouped convolutions, which channel pruning does not support")
    return blocks[:-1]


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


class LayerActivity:
    """One prunable layer's response to a calibration batch: what an activity criterion scores.

    ``spikes`` is ``N x C x ... x T``; :meth:`voltage` recomputes the membrane potential
    (only criteria that ask for it pay for it).
    """

    def __init__(self, neuron: torch.nn.Module, current: torch.Tensor, spikes: torch.Tensor) -> None:
        self.neuron, self.current, self.spikes = neuron, current, spikes

    def voltage(self) -> torch.Tensor:
        """``N x C x ... x T`` membrane potential (slayer's neuron dynamics are stateless per call)."""
        return self.neuron.dynamics(self.current)[1]


@dataclass(frozen=True)
class Criterion:
    """A channel scorer (higher = keep). Give exactly one of:

    ``activity(LayerActivity) -> N x C`` per-sample scores (averaged over the calibration
    samples), or ``weights(effective_weight, rng) -> C`` scores of the layer's weights.
    """

    activity: Callable[[LayerActivity], torch.Tensor] | None = None
    weights: Callable[[torch.Tensor, np.random.Generator], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if (self.activity is None) == (self.weights is None):
            raise ConfigError("a pruning criterion scores either activity or weights: give exactly one")


_CRITERIA: dict[str, Criterion] = {
    "sca": Criterion(activity=lambda layer: sca_scores(layer.voltage())),
    "svs": Criterion(activity=lambda layer: svs_scores(layer.spikes)),
    "l1": Criterion(weights=lambda weight, rng: weight.detach().abs().flatten(1).sum(1).cpu().numpy()),
    "random": Criterion(weights=lambda weight, rng: rng.random(weight.shape[0])),
}
CRITERIA = ("sca", "svs", "l1", "random")  # the built-ins, in the order tables show them


def register_criterion(name: str, criterion: Criterion) -> None:
    """Make ``criterion`` available by ``name`` (``PruneConfig(criterion=name)``, ``--criterion`` in scripts)."""
    if not isinstance(criterion, Criterion):
        raise ConfigError(f"register a lava_qpsnn.training.prune.Criterion, got {type(criterion).__name__}")
    _CRITERIA[name] = criterion


def criterion_named(name: str) -> Criterion:
    """The registered criterion ``name``; one-line error listing the registered ones otherwise."""
    if name not in _CRITERIA:
        raise ConfigError(f"unknown criterion {name!r}: choose one of {', '.join(_CRITERIA)}")
    return _CRITERIA[name]


@contextlib.contextmanager
def record_activity(blocks: Sequence[torch.nn.Module], criterion: Criterion) -> Iterator[list[list]]:
    """While open, forward hooks on ``blocks``' neurons sum each layer's per-channel scores and spike counts.

    Yields ``[[score_sum, spike_count, samples], ...]`` per block (spike counts per channel in
    float64: exact, whatever the order of the batches or the ranks that ran them); the hooks
    are removed on exit.
    Run the network in eval mode inside it (as :func:`channel_scores` does): a criterion that
    asks for the voltage reruns the neuron, whose BatchNorm would otherwise update twice.
    """
    totals: list[list] = [[0.0, 0.0, 0] for _ in blocks]

    def hook(index: int) -> Callable:
        def record(neuron: torch.nn.Module, inputs: tuple, spikes: torch.Tensor) -> None:
            score = criterion.activity(LayerActivity(neuron, inputs[0], spikes))
            entry = totals[index]
            entry[0] = entry[0] + score.sum(0)
            entry[1] = entry[1] + spikes.flatten(2).sum((0, 2), dtype=torch.float64)
            entry[2] += spikes.shape[0]

        return record

    handles = [b.neuron.register_forward_hook(hook(i)) for i, b in enumerate(blocks)]
    try:
        yield totals
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class LayerScores:
    """Scores of one prunable layer's output channels, and their mean spike count per sample (tie-break)."""

    score: np.ndarray
    rate: np.ndarray

    def ranking(self) -> np.ndarray:
        """Channel indices, most important first: by score, ties by rate, then by index."""
        return np.lexsort((np.arange(len(self.score)), -self.rate, -self.score))


@torch.no_grad()
def channel_scores(
    net: torch.nn.Module,
    spikes: np.ndarray | torch.Tensor | SpikeStream,
    criterion: str | Criterion,
    *,
    seed: int = 0,
    batch_size: int = 128,
) -> list[LayerScores]:
    """Score every output channel of every prunable layer of ``net`` (higher = keep).

    ``criterion`` is a registered name or a :class:`Criterion`. ``spikes`` is a calibration
    batch in the network's input layout (``NCHWT``, any dtype), or a stream that encodes it
    batch by batch; activity criteria run it through ``net`` in batches of ``batch_size``
    (scores are averages over samples, so batching does not change them, and memory is one
    batch's), weight criteria do not need it.
    """
    blocks = prunable_blocks(net)
    scorer = criterion_named(criterion) if isinstance(criterion, str) else criterion
    if scorer.weights is not None:
        rng = np.random.default_rng(seed)
        scores = [np.asarray(scorer.weights(_effective_weight(b), rng), dtype=np.float64) for b in blocks]
        return [LayerScores(s, np.zeros_like(s)) for s in scores]
    was_training = net.training
    net.eval()
    where = model_device(net)
    with record_activity(blocks, scorer) as totals:
        for batch in my_batches(spike_batches(spikes, batch_size)):  # all of them in a single process
            net(torch.as_tensor(batch).to(where, torch.float32))
    net.train(was_training)
    scores = []
    for block, (score, count, n) in zip(blocks, totals, strict=True):
        zeros = torch.zeros(block.synapse.weight.shape[0], device=where)  # a rank that ran no batch adds nothing
        score, count, n = sum_over_ranks(zeros + score), sum_over_ranks(zeros.double() + count), sum_over_ranks(n)
        scores.append(LayerScores(_numpy(score / n), _numpy(count / n)))
    return scores


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def channels_left(count: int, ratio: float) -> int:
    """Channels of ``count`` left after removing ``ratio * count`` rounded half up (0.5 of 5 and of 7 both round up)."""
    return count - math.floor(ratio * count + 0.5)


def select_channels(scores: LayerScores, ratio: float, keep: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Boolean keep-mask removing ``ratio * C`` channels rounded half up, and whether it was capped.

    Channels already pruned (``keep`` False) stay pruned and count toward the ratio. At least
    one channel is always kept; the flag says when the ratio asked for none.
    """
    count = len(scores.score)
    keep = np.ones(count, bool) if keep is None else np.asarray(keep, bool)
    target = channels_left(count, ratio)
    capped = target < 1
    ranking = [c for c in scores.ranking() if keep[c]]
    new = np.zeros(count, bool)
    new[ranking[: max(target, 1)]] = True
    return new, capped


def kept_channels(net: torch.nn.Module) -> list[np.ndarray]:
    """Keep-mask of each prunable layer's output channels (all True when unmasked)."""
    out = []
    for block in prunable_blocks(net):
        keep = getattr(core_hook(block.synapse), "keep", None)
        channels = block.synapse.weight.shape[0]
        out.append(np.ones(channels, bool) if keep is None else keep.flatten(1).any(1).cpu().numpy())
    return out


def _input_keep(block: torch.nn.Module, previous: np.ndarray | None) -> np.ndarray | None:
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
        in_keep = _input_keep(block, previous)
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


def _unmasked(hook: Callable | None) -> Callable | None:
    """A copy of ``hook`` without its pruning mask."""
    if isinstance(hook, MaskedWeights):
        return hook.inner
    if isinstance(hook, WeightQuantizer):
        hook = copy.deepcopy(hook)
        hook.keep = None
    return hook


def _slice_block(block: torch.nn.Module, out_keep: np.ndarray | None, in_keep: np.ndarray | None) -> None:
    """Remove pruned output channels and inputs from a conv/dense block (in place), masks dropped."""
    synapse = block.synapse
    weight = synapse.weight
    if out_keep is not None:
        weight = weight[torch.from_numpy(out_keep).to(weight.device)]
    if in_keep is not None:
        weight = weight[:, torch.from_numpy(in_keep).to(weight.device)]
    synapse.weight = torch.nn.Parameter(weight.clone(), requires_grad=synapse.weight.requires_grad)
    synapse.out_channels, synapse.in_channels = weight.shape[:2]
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
    keeps channels) are kept; hooks lose their masks. Its output spikes equal the masked network's.
    """
    channel_keeps = iter(kept_channels(net))
    small = copy.deepcopy(net)
    weighted = {id(b) for b in weight_blocks(small)}
    previous: np.ndarray | None = None
    shape = None
    for block in small.blocks:
        if id(block) in weighted:
            out_keep = next(channel_keeps, None)
            _slice_block(block, out_keep, _input_keep(block, previous))
            if out_keep is not None:
                _reshape_neuron(block.neuron, int(out_keep.sum()))
            previous = out_keep
        elif getattr(block, "neuron", None) is not None and previous is not None:  # pooling keeps channels
            _reshape_neuron(block.neuron, int(previous.sum()))
        elif getattr(block, "neuron", None) is None:  # flatten
            block.shape = [math.prod(shape), 1, 1]
        shape = getattr(block, "neuron", block).shape
    if isinstance(small, SpikingNet):
        small.config = net.config.with_widths([b.synapse.weight.shape[0] for b in weight_blocks(small)])
    return small.train(net.training)


@dataclass(frozen=True)
class Stability:
    """How much a criterion's channel choice depends on the calibration batch (1 = not at all).

    ``cosine``: QP-SNN's Eq 15, the mean cosine similarity of score vectors (near 1 for any
    non-negative scores, so it hardly separates criteria); ``kendall_tau``: mean rank
    correlation of the scores; ``pruned_overlap``: mean Jaccard overlap of the channel sets
    pruned at ``ratio``. Means over batch pairs and prunable layers.
    """

    cosine: float
    kendall_tau: float
    pruned_overlap: float


def score_stability(
    net: torch.nn.Module, batches: Sequence[np.ndarray], criterion: str | Criterion, *, ratio: float = 0.5
) -> Stability:
    """How stable ``criterion``'s scores are across calibration ``batches`` (see :class:`Stability`)."""
    from scipy.stats import kendalltau

    per_batch = [channel_scores(net, batch, criterion) for batch in batches]
    cosine, tau, overlap = [], [], []
    for a, b in itertools.combinations(per_batch, 2):
        for x, y in zip(a, b, strict=True):
            norm = np.linalg.norm(x.score) * np.linalg.norm(y.score)
            cosine.append(float(x.score @ y.score / norm) if norm > 0 else 1.0)
            same = np.array_equal(x.score, y.score)
            tau.append(1.0 if same else float(np.nan_to_num(kendalltau(x.score, y.score).statistic, nan=0.0)))
            px, py = (~select_channels(s, ratio)[0] for s in (x, y))
            union = (px | py).sum()
            overlap.append(float((px & py).sum() / union) if union else 1.0)
    return Stability(float(np.mean(cosine)), float(np.mean(tau)), float(np.mean(overlap)))


def calibration_stream(train_set: Dataset, encoding: Encoding, samples: int, seed: int) -> SpikeStream:
    """``samples`` training images (a seeded random subset), rate-encoded as in training, batch by batch on demand."""
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(train_set))[:samples]
    return SpikeStream(train_set.images[index], encoding.time_steps, rng.bit_generator.state)


def calibration_batch(train_set: Dataset, encoding: Encoding, samples: int, seed: int) -> np.ndarray:
    """The whole :func:`calibration_stream` at once, as float32 spikes (``N x ... x T``)."""
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
    selected = [select_channels(s, r, k) for s, r, k in zip(scores, ratios, keeps, strict=True)]
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
    channel indices, layers whose ratio was capped to keep one channel); ``metrics`` holds the
    test accuracy before pruning, right after masking (before fine-tuning), the final test
    accuracy, and the last fine-tuning's train accuracy (absent without fine-tuning).
    ``device`` moves ``net`` there first; ``run`` makes it resumable (stages ``prune-1``,
    ``finetune-1``, ...; see :mod:`~lava_qpsnn.training.resume`).
    """
    if device is not None:
        net.to(resolve_device(device))
    run = run or RunState()
    ratios = config.layer_ratios(len(prunable_blocks(net)))
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
        "kept_channels": [np.flatnonzero(k).tolist() for k in keeps],
        "capped_layers": sorted(capped),
    }
    return compact(net), record, metrics
