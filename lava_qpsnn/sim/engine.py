"""Running a :class:`~lava_qpsnn.netx.NetxNetwork`: layer by layer, whole spike trains at once.

Each layer first computes its synaptic input for every sample and step with one float
matmul / conv2d (exact: see :func:`_synapse`), then runs Lava's LIF recurrence in float64
(exact: see :func:`_lif`), elementwise over the batch, looping only over time. Tensors are
``T x N x shape`` inside (one contiguous slice per step), ``N x shape x T`` outside.
Layers are treated as immutable: their torch weights are prepared once and cached.

Samples are independent, so many samples run in batches (:func:`default_batch_size`) and the
results are the same whatever the batch size: the float tensors of one batch bound the
memory, only the int8 results grow with the number of samples.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import ConfigError, DataError, NetxFileError
from ..loihi import DECAY_UNITY, STATE_LIMIT, STATE_SHIFT
from ..memory import keep_freed_memory
from ..netx import ConvLayer, DenseLayer, FlattenLayer, InputLayer, NetxNetwork, Neuron, read_netx

__all__ = ["LayerTrace", "simulate", "trace", "default_batch_size", "check_input", "BATCH_BYTES"]

FLOAT32_EXACT = 1 << 24  # integers up to 2^24 are exact in float32, so are all partial sums below it
INT32_LIMIT = 1 << 31
BATCH_BYTES = 256 << 20  # what one batch's tensors may take
BYTES_PER_NEURON_STEP = 24  # a layer's float32 input and output spikes, its drive and a temporary (float64 at worst)


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """One neuron layer over time, ``N x shape x T``: spikes (int8); ``u``, ``v`` (int32) if recorded."""

    spikes: np.ndarray
    current: np.ndarray | None
    voltage: np.ndarray | None


def simulate(
    net: str | os.PathLike | NetxNetwork,
    spikes: np.ndarray | torch.Tensor,
    *,
    layers: bool = False,
    continuous: bool = False,
    batch_size: int | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Run a batch of spike trains through a ``.net`` exactly as Lava's fixed-point CPU models would.

    Parameters
    ----------
    net : a ``.net`` path or a network from :func:`~lava_qpsnn.sim.read_netx`
    spikes : ``N x shape x T`` input spikes (``NFT`` or ``NCHWT``; any shape with the input
        layer's number of elements; any non-zero value is a spike, as in Lava); the integer
        payloads ``0 .. 2^bits - 1`` of a direct-encoded network (``net.input_bits``); integer
        ``a_in`` values if the input layer has a neuron
    layers : return every neuron layer's spikes (the processes of ``netx.hdf5.Network.layers``)
    continuous : each sample is one stream from zero state (a Lava run without reset);
        default: each layer starts from zero state when the sample reaches it (see :mod:`lava_qpsnn.sim`)
    batch_size : samples run together (default: :func:`default_batch_size`); results do not depend on it

    Returns
    -------
    int8 ``N x out_shape x T`` output spikes (``out_shape`` C-order), or a list of them per layer.
    """
    traces = _batched(net, spikes, continuous=continuous, record_state=False, batch_size=batch_size)
    return [t.spikes for t in traces] if layers else traces[-1].spikes


def trace(
    net: str | os.PathLike | NetxNetwork,
    spikes: np.ndarray | torch.Tensor,
    *,
    continuous: bool = False,
    batch_size: int | None = None,
    limits: bool = True,
) -> list[LayerTrace]:
    """Like :func:`simulate` with ``layers=True``, recording each layer's ``u`` and ``v`` after every step too.

    ``limits=False`` leaves out Lava's 24-bit wrap of ``u`` and clip of ``v`` (and its 24- and
    32-bit sum overflows): exact integer states, as slayer's model computes them, to measure
    how close a network comes to Lava's limits (``u`` and ``v`` are then int64).
    """
    return _batched(net, spikes, continuous=continuous, record_state=True, batch_size=batch_size, limits=limits)


def default_batch_size(net: NetxNetwork, time_steps: int) -> int:
    """Samples per batch whose largest layer takes about :data:`BATCH_BYTES` (at least 1).

    A layer's float tensors (:data:`BYTES_PER_NEURON_STEP` per neuron and step) are what a batch
    costs; a small network gets large batches (few Python steps), a large one small batches.
    """
    largest = max(math.prod(layer.shape) for layer in net.layers)
    return max(1, BATCH_BYTES // (BYTES_PER_NEURON_STEP * largest * max(time_steps, 1)))


def _batched(
    net: str | os.PathLike | NetxNetwork,
    spikes: np.ndarray | torch.Tensor,
    *,
    continuous: bool,
    record_state: bool,
    batch_size: int | None,
    limits: bool = True,
) -> list[LayerTrace]:
    """:func:`_run` on consecutive batches of samples, each layer's results concatenated."""
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    keep_freed_memory()  # every batch allocates the same large arrays: reuse them (see lava_qpsnn.memory)
    network = net if isinstance(net, NetxNetwork) else read_netx(net)
    spikes = spikes if isinstance(spikes, torch.Tensor) else np.asarray(spikes)
    if spikes.ndim < 3:  # not spikes: _run says what it expected
        return _run(network, spikes, continuous=continuous, record_state=record_state, limits=limits)
    size = batch_size or default_batch_size(network, spikes.shape[-1])
    if len(spikes) <= size:
        return _run(network, spikes, continuous=continuous, record_state=record_state, limits=limits)
    parts = [
        _run(network, spikes[i : i + size], continuous=continuous, record_state=record_state, limits=limits)
        for i in range(0, len(spikes), size)
    ]
    return [_concatenated(batches) for batches in zip(*parts, strict=True)]


def _concatenated(batches: tuple[LayerTrace, ...]) -> LayerTrace:
    """One layer's traces of consecutive batches as one."""

    def join(name: str) -> np.ndarray | None:
        parts = [getattr(b, name) for b in batches]
        return None if parts[0] is None else np.concatenate(parts)

    return LayerTrace(join("spikes"), join("current"), join("voltage"))


def _run(
    network: NetxNetwork,
    spikes: np.ndarray | torch.Tensor,
    *,
    continuous: bool,
    record_state: bool,
    limits: bool = True,
) -> list[LayerTrace]:
    if not network.neuron_layers:
        raise NetxFileError(f"{network.name} has no layer with neurons: there is nothing to simulate")
    x = _input(network, spikes)
    traces = []
    s, latencies = x, iter(network.latencies)
    input_max = (1 << network.input_bits) - 1 if network.input_bits else 1  # graded payloads reach the first synapse
    with torch.no_grad():
        for layer in network.layers:
            if isinstance(layer, FlattenLayer):
                s = s.flatten(2)
                continue
            if isinstance(layer, InputLayer):
                if layer.neuron is None:
                    continue
                drive = x * 2.0**STATE_SHIFT  # the input neuron's a_in, no synapse, no delay
            else:
                drive = _synaptic_input(layer, s, limits, input_max)
                input_max = 1  # every later synapse reads spikes
            latency = next(latencies)
            start = 0 if continuous else latency
            s, u, v = _lif(layer.neuron, drive, start=start, record_state=record_state, limits=limits)
            dtype = np.int32 if limits else np.int64
            states = (None, None) if u is None else (_outside(u, dtype), _outside(v, dtype))
            traces.append(LayerTrace(_outside(s, np.int8), *states))
    return traces


def _input(net: NetxNetwork, spikes: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(spikes) if not isinstance(spikes, torch.Tensor) else spikes)
    if x.ndim < 3 or x.shape[-1] < 1 or math.prod(x.shape[1:-1]) != math.prod(net.input_shape):
        raise DataError(
            f"input spikes of shape {tuple(x.shape)} do not fit {net.name}: expected N x {net.input_shape} x T"
        )
    x = x.reshape(x.shape[0], *net.input_shape, x.shape[-1]).movedim(-1, 0)
    if net.layers[0].neuron is not None:
        if x.is_floating_point() and not torch.equal(x, x.round()):
            raise DataError(f"input of {net.name} drives its input neuron's a_in: give integers, found fractions")
        return x.to(torch.float64).contiguous()
    if net.input_bits:
        return _payloads(net, x)
    spikes = torch.empty(x.shape, dtype=torch.float32)
    return spikes.copy_(x != 0)  # Lava's synapses read any non-zero input as a spike; one transposing pass


def _payloads(net: NetxNetwork, x: torch.Tensor) -> torch.Tensor:
    """Graded input as float32 (exact: payloads are below 2^17)."""
    check_input(net, x)
    return x.to(torch.float32).contiguous()


def check_input(net: NetxNetwork, x: np.ndarray | torch.Tensor) -> None:
    """Refuse input that is not what ``net`` was trained on: whole payloads ``0 .. 2^bits - 1`` (not bool spikes)
    for a direct-encoded network, spikes (0 or 1) for a rate-coded one.

    The simulator itself, like Lava, reads any non-zero input of a binary network as a spike; the
    commands that run a lava-qpsnn file check its input with this first.
    """
    x = torch.as_tensor(x)
    if net.input_bits and x.dtype == torch.bool:
        raise DataError(
            f"{net.name} is direct-encoded: give it graded payloads (lava_qpsnn.data.direct_encode), not spikes"
        )
    largest = (1 << net.input_bits) - 1 if net.input_bits else 1
    x = x if x.dtype == torch.float64 else x.to(torch.float32)
    low, high = torch.aminmax(x) if x.numel() else (torch.zeros(()), torch.zeros(()))
    if torch.isfinite(x).all() and torch.equal(x, x.round()) and 0 <= float(low) and float(high) <= largest:
        return
    if net.input_bits:
        raise DataError(
            f"{net.name} is direct-encoded: its input must be whole payloads 0..{largest} ({net.input_bits} bits), "
            f"found {float(low):g}..{float(high):g}; encode images with lava_qpsnn.data.direct_encode"
        )
    raise DataError(
        f"{net.name} is rate-coded: its input must be spikes (0 or 1), found {float(low):g}..{float(high):g} "
        "(graded payloads?); encode images with lava_qpsnn.data.rate_encode"
    )


def _outside(a: torch.Tensor, dtype: type) -> np.ndarray:
    """``T x N x shape`` -> numpy ``N x shape x T``."""
    return a.movedim(0, -1).cpu().numpy().astype(dtype)


@dataclass(frozen=True)
class _Synapse:
    """A layer's weights ready for torch: one ``(delay, weight)`` pair per distinct delay."""

    dtype: torch.dtype
    folded: bool  # weights pre-multiplied by 2^(weight_exp + 6): no floor, no wrap, no scaling
    exp: int
    wraps: bool  # a conv whose 24-bit output can wrap
    groups: tuple[tuple[int, torch.Tensor], ...]


_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _synapse(layer: DenseLayer | ConvLayer, input_max: int = 1) -> _Synapse:
    """Fast path when the exponent divides every weight and the scaled sums stay below 2^24 (exact in float32);
    otherwise float64 sums, then Lava's shift (rounding down) and 24-bit conv wrap. ``input_max``: the
    largest input value (1 for spikes, the largest payload for graded input)."""
    cached = _prepared.setdefault(layer, {})
    if input_max in cached:
        return cached[input_max]
    conv = isinstance(layer, ConvLayer)
    weight = layer.weight
    exp = 0 if conv else layer.weight_exp  # Lava's fixed-point conv has no exponent
    rows = float(np.abs(weight).reshape(weight.shape[0], -1).sum(1).max())
    largest = rows * input_max * 2.0**exp  # max |a| of one step
    folded = not np.any(weight % 2 ** max(-exp, 0)) and largest * 2**STATE_SHIFT < FLOAT32_EXACT
    dtype = torch.float32 if folded else torch.float64
    scale = 2.0 ** (exp + STATE_SHIFT) if folded else 1.0
    delays = [0] if conv or layer.delay is None else np.unique(layer.delay).tolist()
    groups = tuple(
        (d, torch.from_numpy(weight if len(delays) == 1 else np.where(layer.delay == d, weight, 0)).to(dtype) * scale)
        for d in delays
    )
    synapse = _Synapse(dtype, folded, exp, conv and largest >= STATE_LIMIT, groups)
    cached[input_max] = synapse
    return synapse


def _synaptic_input(
    layer: DenseLayer | ConvLayer, s: torch.Tensor, limits: bool = True, input_max: int = 1
) -> torch.Tensor:
    """``a << 6`` per step, where ``a[t]`` is what Lava's synapse emits at ``t``: its sum of ``s[t - 1 - delay]``
    (spikes, or graded payloads up to ``input_max``)."""
    synapse = _synapse(layer, input_max)
    steps = s.shape[0]
    drive = torch.zeros((steps, s.shape[1], *layer.shape), dtype=synapse.dtype)
    for d, w in synapse.groups:
        if steps - 1 - d <= 0:
            continue
        past = s[: steps - 1 - d].to(synapse.dtype)
        if isinstance(layer, ConvLayer):
            a = F.conv2d(
                past.flatten(0, 1),
                w,
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=layer.groups,
            ).reshape(steps - 1 - d, *drive.shape[1:])
        elif len(synapse.groups) == 1 and synapse.folded:
            torch.matmul(past, w.T, out=drive[1 + d :])  # the common case: no extra pass
            continue
        else:
            a = torch.matmul(past, w.T)
        if not synapse.folded:
            a = torch.floor(a * 2.0**synapse.exp)  # Lava shifts each delay's sum, rounding down
            if synapse.wraps and limits:
                a = torch.remainder(a + STATE_LIMIT, 2 * STATE_LIMIT) - STATE_LIMIT
            a = a * 2**STATE_SHIFT
        drive[1 + d :] += a
    return drive


def _lif(
    neuron: Neuron, drive: torch.Tensor, *, start: int, record_state: bool, limits: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Lava's bit-accurate LIF from zero state at step ``start``: spikes (float32), and ``u``, ``v`` (int32) if asked.

    Runs in float64, which holds every value exactly (products < 2^43); ``x * (k / 4096)``
    is the exact ``x * k / 4096``, and ``trunc`` is Lava's rounding toward zero. The 24-bit
    wrap of ``u`` and clip of ``v`` are skipped when bounds from the actual input prove
    they cannot trigger, and always with ``limits=False``.
    """
    steps, shape = drive.shape[0], drive.shape[1:]
    keep_u, keep_v = DECAY_UNITY - (neuron.du + 1), DECAY_UNITY - neuron.dv
    bias = torch.from_numpy(neuron.bias.astype(np.float64) * 2**STATE_SHIFT).expand(shape[1:])
    vth = float(neuron.vth << STATE_SHIFT)
    low, high = torch.aminmax(drive) if drive.numel() else (torch.zeros(()), torch.zeros(()))
    drive_max = max(-float(low), float(high))
    if limits and drive_max >= INT32_LIMIT:  # Lava's a_in << 6 is int32
        drive = _wrap32(drive)
    # inputs >= 2^24 can push u past 24 bits (one correction is not a modulo), and Lava's int32 sums then overflow
    int32 = limits and drive_max >= 2 * STATE_LIMIT
    u_max = _geometric_bound(drive_max, keep_u)
    wrap = limits and u_max >= STATE_LIMIT
    has_bias = bool(neuron.bias.any())
    clip = limits and (wrap or _geometric_bound(u_max + float(bias.abs().max()), keep_v) >= STATE_LIMIT - 1)
    u = torch.zeros(shape, dtype=torch.float64)
    v = torch.zeros(shape, dtype=torch.float64)
    spikes = torch.zeros(drive.shape, dtype=torch.float32)
    dtype = torch.int32 if limits else torch.int64
    record = [torch.zeros(drive.shape, dtype=dtype) for _ in "uv"] if record_state else [None, None]
    for t in range(start, steps):  # every u and v below is a fresh tensor, so in-place updates are safe
        if keep_u == 0:
            u = drive[t]  # a view: u is never updated in place
        else:
            u = torch.trunc(u * (keep_u / DECAY_UNITY)).add_(drive[t])
            u = _wrap32(u) if int32 else u
        if wrap:  # Lava's "wrap" is ONE correction by 2^24, decided on the unwrapped value
            wrapped = torch.where(u <= -STATE_LIMIT, u + 2 * STATE_LIMIT, u)
            u = torch.where(u > STATE_LIMIT, u - 2 * STATE_LIMIT, wrapped)
        v = u.to(torch.float64, copy=True) if keep_v == 0 else torch.trunc(v * (keep_v / DECAY_UNITY)).add_(u)
        if has_bias:
            v.add_(bias)
        if int32:
            v = _wrap32(v)
        if clip:
            v.clamp_(-STATE_LIMIT + 1, STATE_LIMIT - 1)
        quiet = v <= vth
        v.mul_(quiet)  # reset to 0 where spiked (faster than masked_fill_; -0.0 behaves as 0)
        spikes[t] = ~quiet
        if record_state:
            record[0][t], record[1][t] = u, v
    return spikes, *record


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement int32 wraparound of integer-valued floats (Lava's int32 additions)."""
    return torch.remainder(x + INT32_LIMIT, 2.0 * INT32_LIMIT) - INT32_LIMIT


def _geometric_bound(step_max: float, keep: int) -> float:
    """Largest ``|x|`` reachable by ``x = trunc(x * keep / 4096) + y`` with ``|y| <= step_max``, from 0."""
    if keep == 0 or step_max == 0:
        return step_max
    return math.inf if keep == DECAY_UNITY else step_max * DECAY_UNITY / (DECAY_UNITY - keep)
