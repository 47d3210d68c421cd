"""slayer's CUBA neuron on the CPU in compiled loops over time: slayer's numbers, faster.

slayer's CPU neuron (``slayer.neuron.cuba.Neuron``) steps through time in Python, with a
dozen tensor operations and temporaries per step for the current, the voltage and the reset,
and as many again in the backward pass: on a CPU it costs several times the convolutions
around it. Here compiled loops (numba) take blocks of :data:`CHUNK` neurons from slayer's
``N x ... x T`` layout, turn each block time-major in the cache (so that one step of many
neurons vectorizes) and run all ``T`` steps on it, blocks in parallel on torch's number of
threads (they are independent, so the result does not depend on it): the forward integrates the current and
the voltage, resets and spikes in one pass (the current alone where a BatchNorm sits
between them), the backward runs the surrogate gradient and both leaky-integrator
recursions in one pass.

The arithmetic is slayer's, operation for operation, so results are bit-identical: the state
is an integer at scale ``s_scale`` decayed as ``x * (4096 - decay) >> 12`` rounded towards
zero, the input is truncated to that scale, the reset compares the state as float32 with
``(threshold + threshold_eps) * s_scale``, spikes compare the float32 voltage with
``threshold + threshold_eps``, and gradients use float32 multiplies and adds in slayer's
order. The surrogate's exponential is ``torch.exp`` itself, as in slayer.

:func:`use_fused_dynamics` switches a network's neurons over (and back); it changes their
class to :class:`FusedNeuron`, a subclass that keeps every parameter, buffer and export of
slayer's. The fused path runs on CPU float32 tensors for neurons with shared, fixed decays
(slayer's default), no persistent state, binary spikes and no debug mode; anything else
(CUDA and learnable decays included) runs slayer's own code.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from lava.lib.dl import slayer
from lava.lib.dl.slayer.neuron.cuba import SCALE_RHO_MULT, TAU_RHO_MULT

__all__ = ["FusedNeuron", "use_fused_dynamics", "integrate", "integrate_and_fire"]

DECAY_BITS = 12  # slayer's decays are integers out of 1 << 12
CHUNK = 512  # neurons per block: their T steps, time-major, stay in the L1/L2 cache


@numba.njit(cache=True, nogil=True)
def _shift_to_zero(x):
    """``x >> 12`` rounded towards zero (slayer's ``right_shift_to_zero``), without a branch."""
    sign = x >> 63
    return ((((x ^ sign) - sign) >> DECAY_BITS) ^ sign) - sign


@numba.njit(cache=True, nogil=True)
def _to_time_major(rows, first, count, steps, block):
    """``block[t, i] = rows[first + i, t]`` (flat arrays; ``len(steps)`` = T, known when compiled)."""
    T = len(steps)
    for i in range(count):
        for t in range(T):
            block[t * CHUNK + i] = rows[(first + i) * T + t]


@numba.njit(cache=True, nogil=True)
def _from_time_major(block, first, count, steps, rows):
    T = len(steps)
    for i in range(count):
        for t in range(T):
            rows[(first + i) * T + t] = block[t * CHUNK + i]


@numba.njit(cache=True, nogil=True)
def _leak(state, keep, scale, x):
    """slayer's step ``state * keep >> 12`` (to zero) ``+ trunc(scale * x)``."""
    return _shift_to_zero(state * keep) + np.int64(scale * x)


@numba.njit(cache=True, nogil=True, parallel=True)
def _integrate(x, steps, keep, scale, current):
    """The current ``N... x T`` of inputs ``x`` (flat rows of T steps)."""
    T, M = len(steps), x.size // len(steps)
    for chunk in numba.prange((M + CHUNK - 1) // CHUNK):
        first = chunk * CHUNK
        n = min(CHUNK, M - first)
        block = np.empty(T * CHUNK, np.float32)
        _to_time_major(x, first, n, steps, block)
        u = np.zeros(CHUNK, np.int64)
        for t in range(T):
            for i in range(n):
                u[i] = _leak(u[i], keep, scale, block[t * CHUNK + i])
                block[t * CHUNK + i] = np.float32(u[i]) / scale
        _from_time_major(block, first, n, steps, current)


@numba.njit(cache=True, nogil=True, parallel=True)
def _integrate_and_fire(x, steps, keep_current, keep, scale, threshold, level, voltage, spikes):
    """Spikes (flat rows) and voltages (time-major ``T x M``) of inputs ``x``.

    ``keep_current`` >= 0: ``x`` is the synaptic input and is integrated into the current
    first (the whole CUBA neuron); < 0: ``x`` is the current.
    """
    T, M = len(steps), x.size // len(steps)
    for chunk in numba.prange((M + CHUNK - 1) // CHUNK):
        first = chunk * CHUNK
        n = min(CHUNK, M - first)
        block = np.empty(T * CHUNK, np.float32)
        _to_time_major(x, first, n, steps, block)
        u = np.zeros(CHUNK, np.int64)
        v = np.zeros(CHUNK, np.int64)
        for t in range(T):
            if keep_current >= 0:
                for i in range(n):
                    u[i] = _leak(u[i], keep_current, scale, block[t * CHUNK + i])
                    block[t * CHUNK + i] = np.float32(u[i]) / scale
            for i in range(n):
                state = _leak(v[i], keep, scale, block[t * CHUNK + i])
                value = np.float32(state) / scale
                voltage[t * M + first + i] = value
                block[t * CHUNK + i] = np.float32(value >= threshold)
                v[i] = state * np.int64(np.float32(state) < level)
        _from_time_major(block, first, n, steps, spikes)


@numba.njit(cache=True, nogil=True, parallel=True)
def _leak_backward(grad, steps, decay, grad_x):
    """slayer's ``grad_x[t] = decay * grad_x[t + 1] + grad[t]``, from the last step back (flat rows)."""
    T, M = len(steps), grad.size // len(steps)
    for chunk in numba.prange((M + CHUNK - 1) // CHUNK):
        first = chunk * CHUNK
        n = min(CHUNK, M - first)
        block = np.empty(T * CHUNK, np.float32)
        _to_time_major(grad, first, n, steps, block)
        for t in range(T - 2, -1, -1):
            for i in range(n):
                block[t * CHUNK + i] = decay * block[(t + 1) * CHUNK + i] + block[t * CHUNK + i]
        _from_time_major(block, first, n, steps, grad_x)


@numba.njit(cache=True, nogil=True, parallel=True)
def _surrogate_argument(voltage, threshold, tau, out):
    """``-|v - threshold| / tau``, slayer's surrogate before its exponential (any layout)."""
    for k in numba.prange(voltage.size):
        out[k] = -abs(voltage[k] - threshold) / tau


@numba.njit(cache=True, nogil=True, parallel=True)
def _fire_backward(exp, grad_spikes, steps, peak, decay, decay_current, grad_x):
    """The surrogate gradient ``peak * exp * grad`` back through the voltage recursion
    (and the current's when ``decay_current`` >= 0); ``exp`` time-major, the rest flat rows."""
    T, M = len(steps), grad_spikes.size // len(steps)
    for chunk in numba.prange((M + CHUNK - 1) // CHUNK):
        first = chunk * CHUNK
        n = min(CHUNK, M - first)
        block = np.empty(T * CHUNK, np.float32)
        _to_time_major(grad_spikes, first, n, steps, block)
        for t in range(T):
            for i in range(n):
                block[t * CHUNK + i] = peak * exp[t * M + first + i] * block[t * CHUNK + i]
        for t in range(T - 2, -1, -1):
            for i in range(n):
                block[t * CHUNK + i] = decay * block[(t + 1) * CHUNK + i] + block[t * CHUNK + i]
        if decay_current >= 0:
            for t in range(T - 2, -1, -1):
                for i in range(n):
                    block[t * CHUNK + i] = decay_current * block[(t + 1) * CHUNK + i] + block[t * CHUNK + i]
        _from_time_major(block, first, n, steps, grad_x)


def _flat(x: torch.Tensor) -> np.ndarray:
    """``x`` as a flat contiguous float32 array (a view where it can be one)."""
    return x.detach().contiguous().view(-1).cpu().numpy()  # a CPU tensor: .cpu() returns it


def _steps(x: torch.Tensor) -> tuple[int, ...]:
    """The number of time steps as a tuple's length, so that numba compiles the loops for it."""
    return (0,) * x.shape[-1]


def _threads() -> None:
    """Run the loops on as many threads as torch's operators use (``torch.set_num_threads``, ``--threads``)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _keep(decay: torch.Tensor) -> int:
    """slayer's integer decay multiplier ``4096 - decay``."""
    return (1 << DECAY_BITS) - int(decay.detach().to(torch.int64))


def _backward_decay(decay: torch.Tensor) -> np.float32:
    """slayer's float32 backward decay ``1 - decay / 4096``."""
    return np.float32((1 - decay.detach() / (1 << DECAY_BITS)).item())


class _Integrate(torch.autograd.Function):
    """slayer's leaky integrator without threshold (the CUBA current)."""

    @staticmethod
    def forward(ctx, x, decay, scale):
        current = torch.empty_like(x)
        _threads()
        _integrate(_flat(x), _steps(x), _keep(decay), np.float32(scale), _flat(current))
        ctx.decay = _backward_decay(decay)
        return current

    @staticmethod
    def backward(ctx, grad):
        grad_x = torch.empty_like(grad)
        _threads()
        _leak_backward(_flat(grad), _steps(grad), ctx.decay, _flat(grad_x))
        return grad_x, None, None


class _IntegrateAndFire(torch.autograd.Function):
    """slayer's leaky integrator with reset (the CUBA voltage) and its ``Spike`` with the surrogate gradient;
    given a current decay, the current's leaky integrator before them."""

    @staticmethod
    def forward(ctx, x, current_decay, decay, scale, threshold, tau, peak):
        spikes = torch.empty_like(x)
        voltage = torch.empty(x.shape[-1], *x.shape[:-1])  # time-major: read by the backward pass only
        keep_current = -1 if current_decay is None else _keep(current_decay)
        level = np.float32(threshold * scale)  # slayer compares the integer state with this, in float32
        _threads()
        _integrate_and_fire(
            _flat(x), _steps(x), keep_current, _keep(decay), np.float32(scale), np.float32(threshold), level,
            _flat(voltage), _flat(spikes),
        )  # fmt: skip
        ctx.save_for_backward(voltage)
        ctx.mark_non_differentiable(voltage)  # returned for inspection; gradients flow through the spikes
        ctx.set_materialize_grads(False)  # no zero tensor of the voltage's size for its unused gradient
        ctx.constants = (
            np.float32(threshold),
            np.float32(tau),
            peak,
            _backward_decay(decay),
            np.float32(-1) if current_decay is None else _backward_decay(current_decay),
        )
        return spikes, voltage

    @staticmethod
    def backward(ctx, grad_spikes, _grad_voltage):
        (voltage,) = ctx.saved_tensors
        threshold, tau, peak, decay, decay_current = ctx.constants
        exp = torch.empty_like(voltage)
        _threads()
        _surrogate_argument(_flat(voltage), threshold, tau, _flat(exp))
        exp.exp_()
        grad_x = torch.empty_like(grad_spikes, memory_format=torch.contiguous_format)
        _fire_backward(_flat(exp), _flat(grad_spikes), _steps(grad_x), peak, decay, decay_current, _flat(grad_x))
        return grad_x, None, None, None, None, None, None


def integrate(x: torch.Tensor, decay: torch.Tensor, scale: int) -> torch.Tensor:
    """slayer's ``leaky_integrator.dynamics(x, decay, 0, scale)`` on the CPU: the current ``N x ... x T``.

    ``decay`` is slayer's quantized decay (an integer out of 4096, a one-element tensor).
    """
    return _Integrate.apply(x, decay, scale)


def integrate_and_fire(
    x: torch.Tensor,
    decay: torch.Tensor,
    scale: int,
    threshold: float,
    tau: float,
    scale_grad: float,
    current_decay: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """slayer's voltage ``leaky_integrator.dynamics(x, decay, 0, scale, threshold)`` and its ``Spike``.

    Returns spikes ``N x ... x T`` and voltages ``T x N x ...`` (time first); spikes carry
    slayer's surrogate gradient ``scale_grad / 2 / tau * exp(-|v - threshold| / tau)``
    (float32, as slayer computes it). With ``current_decay``, ``x`` is the synaptic input
    and passes through :func:`integrate` first, in the same loop.
    """
    peak = torch.tensor(scale_grad, dtype=torch.float32) / 2 / torch.tensor(tau, dtype=torch.float32)
    return _IntegrateAndFire.apply(x, current_decay, decay, scale, threshold, tau, np.float32(peak.item()))


class FusedNeuron(slayer.neuron.cuba.Neuron):
    """slayer's CUBA neuron whose CPU forward and backward run :func:`integrate` and :func:`integrate_and_fire`."""

    def fuses(self, x: torch.Tensor) -> bool:
        """Whether ``x`` takes the fused path (else slayer's own code runs)."""
        return (
            x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.shared_param
            and not (self.requires_grad or self.persistent_state or self.graded_spike or self.debug)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fuses(x):
            return super().forward(x)
        if self.shape is None:
            self.shape = x.shape[1:-1]
            self.num_neurons = int(np.prod(self.shape))
        elif x.shape[1:-1] != self.shape:
            raise AssertionError(f"Input tensor shape ({x.shape}) does not match with Neuron shape ({self.shape}).")
        current_decay = slayer.utils.quantize(self.current_decay)
        if self.norm is not None:
            x, current_decay = self.norm(integrate(x, current_decay, self.s_scale)), None
        spikes, _ = integrate_and_fire(
            x,
            slayer.utils.quantize(self.voltage_decay),
            self.s_scale,
            self.threshold + self.threshold_eps,
            self.tau_rho * TAU_RHO_MULT,
            self.scale_rho * SCALE_RHO_MULT,
            current_decay,
        )
        return spikes if self.drop is None else self.drop(spikes)


def use_fused_dynamics(net: torch.nn.Module, enabled: bool = True) -> torch.nn.Module:
    """Give every slayer CUBA neuron in ``net`` the fused CPU dynamics (``enabled=False``: slayer's again).

    In place; returns ``net``. Only the neurons' class changes: parameters, buffers,
    ``state_dict`` and export stay slayer's, and the spikes and gradients are bit-identical.
    Subclasses of slayer's neuron (other than :class:`FusedNeuron`) are left as they are.
    """
    old, new = (slayer.neuron.cuba.Neuron, FusedNeuron) if enabled else (FusedNeuron, slayer.neuron.cuba.Neuron)
    for module in net.modules():
        if type(module) is old:
            module.__class__ = new
    return net
