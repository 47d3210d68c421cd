"""BatchNorm for spiking layers that Loihi 2 can run: folded into the weights and a bias.

Lava's LIF has integer weights, one threshold per layer and a per-neuron bias. A full
per-channel BatchNorm ``gamma (W x - mu) / sigma + beta`` therefore deploys as weights
``W * s`` (``s = gamma / sigma``, per output channel) and a bias ``beta - s * mu``, and the
fold must happen *before* quantization, or the deployed weights would leave the trained grid.

Training follows PyTorch's quantization-aware conv-BN (``torch.ao`` ``ConvBn2d``): the
synapse quantizes the folded weight ``W * s_running``
(:class:`~lava_qpsnn.training.hooks.FoldedWeights`), and
:class:`BatchNorm` divides the current by ``s_running`` again to normalise it with the
batch statistics, updating the running ones. In evaluation the current is already
``Q(W * s) x`` and only the bias is added, which is exactly the integer network.

The bias acts from the step a layer's first input can arrive (its ``latency``: one step
per layer before it, slayer's ``delay_shift``), because Lava resets each layer when the
sample reaches it; a bias from step 0 would let the trained network integrate steps that
the chip never does.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .distributed import batch_moments
from .hooks import FoldedWeights

__all__ = ["BatchNorm", "Bias", "IntegerBias", "time_mask", "folded_norm"]

MIN_SCALE = 1e-6  # |gamma / sigma| below this is taken as this when un-folding the current in training


def time_mask(current: torch.Tensor, latency: int) -> torch.Tensor:
    """1 from step ``latency`` on, 0 before: broadcastable to ``current`` (``N x C x ... x T``)."""
    steps = torch.arange(current.shape[-1], device=current.device)
    return (steps >= latency).to(current.dtype)


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(1, -1, *[1] * (like.dim() - 2))


class BatchNorm(torch.nn.Module):
    """A slayer neuron ``norm``: per-channel BatchNorm of the synaptic current, deployable on Loihi.

    Use it as slayer's ``neuron_params["norm"]`` (e.g. ``functools.partial(BatchNorm, 16)``);
    :func:`lava_qpsnn.training.models.prepare_model` then pairs it with its synapse. ``keep`` (a
    channel mask set by pruning) silences pruned channels, bias included.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.momentum, self.eps = int(num_features), momentum, eps
        self.weight = torch.nn.Parameter(torch.ones(self.num_features))
        self.shift = torch.nn.Parameter(torch.zeros(self.num_features))
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))
        self.register_buffer("keep", None)
        self.latency = 0

    def extra_repr(self) -> str:
        return f"{self.num_features}, latency={self.latency}"

    def scale(self) -> torch.Tensor:
        """``s = gamma / sigma_running`` per channel: what the synapse folds into its weights."""
        return self.weight / torch.sqrt(self.running_var + self.eps)

    def bias(self) -> torch.Tensor:
        """``beta - s * mu_running`` per channel (zero where pruned): the deployed bias, in current units."""
        bias = self.shift - self.scale() * self.running_mean
        return bias if self.keep is None else bias * self.keep

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        mask = time_mask(current, self.latency)
        if not self.training:
            return current + _per_channel(self.bias(), current) * mask
        scale = self.scale()  # may be negative (gamma < 0 flips a channel); only its size is bounded
        safe = torch.where(scale.abs() < MIN_SCALE, torch.where(scale < 0, -MIN_SCALE, MIN_SCALE), scale)
        # Normalise W x = current / s with its batch moments, taken from the current's own (mean / s,
        # var / s^2): no tensor of W x is made.
        mean, var, count = batch_moments(current[..., self.latency :])  # over all ranks' samples under torchrun
        mean, var = mean / safe, var / (safe * safe)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / max(count - 1, 1), self.momentum)
        gain = self.weight / torch.sqrt(var + self.eps)
        out = _per_channel(gain / safe, current) * current + _per_channel(self.shift - gain * mean, current) * mask
        return out if self.keep is None else out * _per_channel(self.keep.to(out.dtype), out)


class Bias(BatchNorm):
    """A learnable per-channel bias, as a conv or dense layer of other frameworks has one (a NIR graph's ``Affine``).

    A :class:`BatchNorm` whose statistics stay fixed (mean 0, scale exactly 1): training adapts the bias and
    never renormalises the current, so a network brought with its biases trains on from the function it
    computes. It folds, exports and prunes as a BatchNorm does.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, momentum=0.0, eps=0.0)
        self.weight.requires_grad_(False)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return current + _per_channel(self.bias(), current) * time_mask(current, self.latency)


def folded_norm(index: int, block: torch.nn.Module) -> BatchNorm | None:
    """The BatchNorm folded into ``block``'s synapse (None without one); one-line error if it is not folded."""
    hook = block.synapse.pre_hook_fx
    if isinstance(hook, FoldedWeights):
        return hook.norm
    if isinstance(getattr(block.neuron, "norm", None), BatchNorm):
        raise ConfigError(f"weight layer {index} has a BatchNorm not folded into its synapse: call prepare_model(net)")
    return None


class IntegerBias(torch.nn.Module):
    """The fixed-point network's ``norm``: adds an integer bias (in weight units) from the layer's latency on.

    slayer's exporter writes ``bias`` as the NetX per-channel bias; Lava adds it as ``bias_mant << 6``.
    """

    def __init__(self, bias: torch.Tensor, w_scale: int, latency: int) -> None:
        super().__init__()
        self.register_buffer("integers", bias.detach().clone())
        self.w_scale, self.latency = w_scale, latency

    @property
    def bias(self) -> torch.Tensor:
        """What slayer's ``export_hdf5`` writes."""
        return self.integers

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        return current + _per_channel(self.integers / self.w_scale, current) * time_mask(current, self.latency)
