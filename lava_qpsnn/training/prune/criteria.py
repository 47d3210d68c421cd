"""Pruning criteria: scoring each prunable layer's output channels (higher = keep), and choosing the kept ones.

Criteria are :class:`Criterion` objects in a registry (:func:`register_criterion`): a scorer of
recorded activity (per sample) or of the weights. The built-ins, computed on a calibration batch
(:func:`channel_scores`):

- ``sca`` (QP-SNN baseline, Eq 7): mean over samples and time steps of the L1 norm of the
  channel's membrane-potential map.
- ``svs`` (Eqs 11-13): per sample, the channel's spike map averaged over time (``H x W``);
  its numerical rank (singular values above 1e-6), averaged over samples. On a dense layer
  the map is ``1 x 1`` and its rank is 1 iff the neuron spiked: SVS becomes the fraction of
  samples in which the neuron fires. Ties, frequent there, go to the higher firing rate.
- ``l1``: L1 norm of the channel's (quantized) weights, the classic weight criterion.
- ``random``: seeded random scores, the control.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...data import InputStream, spike_batches
from ...errors import ConfigError
from ..device import model_device
from ..distributed import my_batches, sum_over_ranks
from .plan import channel_parts, channels_left, prunable_blocks

__all__ = [
    "CRITERIA",
    "Criterion",
    "LayerActivity",
    "LayerScores",
    "Stability",
    "register_criterion",
    "criterion_named",
    "record_activity",
    "channel_scores",
    "select_channels",
    "score_stability",
    "svs_scores",
    "sca_scores",
]

SVS_EPS = 1e-6  # QP-SNN's threshold on singular values


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
    spikes: np.ndarray | torch.Tensor | InputStream,
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


def select_channels(
    scores: LayerScores, ratio: float, keep: np.ndarray | None = None, parts: int = 1
) -> tuple[np.ndarray, bool]:
    """Boolean keep-mask removing ``ratio * C`` channels rounded half up, and whether it was capped.

    Channels already pruned (``keep`` False) stay pruned and count toward the ratio. At least
    one channel is always kept; the flag says when the ratio asked for none. With ``parts`` (a
    grouped layer's, see :func:`~lava_qpsnn.training.prune.channel_parts`), each of that many
    equal, consecutive slices of the channels loses its own lowest-scored ``ratio`` of them.
    """
    count = len(scores.score)
    keep = np.ones(count, bool) if keep is None else np.asarray(keep, bool)
    target = channels_left(count // parts, ratio)
    part = np.arange(count) // (count // parts)
    new = np.zeros(count, bool)
    for p in range(parts):
        ranking = [c for c in scores.ranking() if keep[c] and part[c] == p]
        new[ranking[: max(target, 1)]] = True
    return new, target < 1


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
    parts = channel_parts(net)
    cosine, tau, overlap = [], [], []
    for a, b in itertools.combinations(per_batch, 2):
        for x, y, p in zip(a, b, parts, strict=True):
            norm = np.linalg.norm(x.score) * np.linalg.norm(y.score)
            cosine.append(float(x.score @ y.score / norm) if norm > 0 else 1.0)
            same = np.array_equal(x.score, y.score)
            tau.append(1.0 if same else float(np.nan_to_num(kendalltau(x.score, y.score).statistic, nan=0.0)))
            px, py = (~select_channels(s, ratio, parts=p)[0] for s in (x, y))
            union = (px | py).sum()
            overlap.append(float((px & py).sum() / union) if union else 1.0)
    return Stability(float(np.mean(cosine)), float(np.mean(tau)), float(np.mean(overlap)))
