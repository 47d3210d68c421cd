"""Running an exported ``.net`` as Lava processes (CPU, bit-accurate fixed point).

All samples go through ONE Lava run: the netx network is built with
``reset_interval=T`` so every neuron is reset at the start of each sample window, and
the samples' spike trains are concatenated in a source ``RingBuffer``.

Timing, measured against slayer (see tests): Lava's dense/conv processes add one step
of latency per layer, exactly like slayer's ``delay_shift``, so output step ``t`` of a
sample in Lava is output step ``t`` in slayer. netx resets layer ``i`` at step
``reset_offset + 1 + i`` of each window; the first layer first integrates a sample's
input one step into its window, hence ``reset_offset=1``. The first ``L`` output steps
of a window (``L`` spiking layers) still carry the previous sample's tail; slayer's
output there is zero by construction (one step of delay per layer, and a layer's bias acts
only from its latency on), so they are set to zero. With these two rules Lava's output equals slayer's spike for spike.

Axonal delays. netx's reset zeroes a layer's ``u`` and ``v`` only; a delayed synapse
(Lava's ``DelayDense``) keeps up to 62 steps of input in its buffer ``a_buff``, which would
carry spikes of one sample (or of the layer before's tail, before its own reset) into the
next sample. :func:`clear_delay_buffers` empties each such buffer once per window with
Lava's own ``lava.proc.io.reset.Reset`` process, in the same run (no pause).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataError, LavaRuntimeError, NetxFileError
from ..netx import netx_arguments
from ..netx.metadata import NetInfo, read_net_info
from ..sim import check_input
from .supervise import one_line, run_supervised, stop_supervised
from .targets import run_config

if TYPE_CHECKING:
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.run_configs import RunConfig

__all__ = ["run_lava", "run_windows", "build_network", "clear_delay_buffers", "to_lava_layout"]


def to_lava_layout(spikes: np.ndarray) -> np.ndarray:
    """slayer ``N x (C, H, W | F) x T`` -> Lava ``(W, H, C | F) x (N*T)``, samples in order."""
    n, t = spikes.shape[0], spikes.shape[-1]
    spatial = list(range(1, spikes.ndim - 1))
    per_sample = spikes.transpose(0, *reversed(spatial), spikes.ndim - 1)  # N, W, H, C, T
    stacked = np.moveaxis(per_sample, 0, -2)  # W, H, C, N, T
    return stacked.reshape(*stacked.shape[:-2], n * t)


def build_network(info: NetInfo) -> Network:
    """netx network of the file, reset at the start of every sample window (see module docstring)."""
    from lava.lib.dl import netx

    try:
        net = netx.hdf5.Network(net_config=str(info.path), **netx_arguments(info.encoding))
    except NotImplementedError as exc:
        raise NetxFileError(f"{info.path}: netx cannot build this network ({exc})") from None
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
        raise NetxFileError(f"{info.path}: netx failed to read the network ({type(exc).__name__}: {exc})") from None
    clear_delay_buffers(net)
    return net


def clear_delay_buffers(net: Network) -> None:
    """Give every delayed synapse of ``net`` (built with ``reset_interval``) a Lava ``Reset`` of its delay buffer.

    Why this is exact. netx resets consecutive layers on consecutive steps of each window:
    if the layer before a delayed synapse is zeroed at window step ``r`` (its first step from
    the sample alone), the layer after it at ``r + 1``. The ``Reset`` (attribute
    ``delay_reset`` of the block) empties the buffer after step ``r - 1``, in the
    management phase between two steps. From step ``r`` on, the buffer therefore holds
    exactly the spikes the layer before sent from ``r`` on, each delivered at its step
    ``+ 1 + delay``: the simulator's drive (:mod:`lava_qpsnn.sim`), in which that layer is
    silent before ``r`` and nothing crosses a window's end. The layer after reads the buffer
    from ``r + 1`` on; what it got earlier is wiped by its own reset. Spikes due past the
    window's end are erased before they could be delivered after a reset. The input layer
    has no tail (``r = 0``: the buffer is emptied after the previous window's last step).
    Undelayed synapses hold one step, which the resets already cover.
    """
    from lava.proc.dense.process import DelayDense
    from lava.proc.io.reset import Reset

    for block in net.layers:
        if isinstance(getattr(block, "synapse", None), DelayDense):
            params = block.neuron.proc_params
            offset = params["reset_offset"] - 3  # window steps: netx resets this layer at +2, the one before at +1
            block.delay_reset = Reset(interval=params["reset_interval"], offset=offset)
            block.delay_reset.connect_var(block.synapse.a_buff)


def run_windows(
    process: AbstractProcess,
    count: int,
    steps: int,
    run_cfg: RunConfig,
    *,
    read: Callable[[], np.ndarray],
    name: str,
    desc: str = "lava",
    samples_per_run: int = 50,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Run ``count`` sample windows of ``steps`` through ``process``'s graph as ONE Lava run, then stop it.

    The run pauses after every ``samples_per_run`` windows (the progress bar's step) and resumes
    with its state; ``on_chunk(windows done)`` is called at each pause (to time the run, see
    :func:`lava_qpsnn.lava.sizing.measure_rate`). Returns ``read()``, taken before the run stops; any
    failure of Lava's is one :class:`LavaRuntimeError` naming ``name``, raised once Lava's processes
    have ended (see :mod:`lava_qpsnn.lava.supervise`).
    """
    from lava.magma.core.run_conditions import RunSteps

    try:
        with tqdm(total=count, desc=desc, unit="sample", disable=not progress) as bar:
            for start in range(0, count, samples_per_run):
                chunk = min(samples_per_run, count - start)
                run_supervised(process, RunSteps(num_steps=chunk * steps), run_cfg, name=name)
                bar.update(chunk)
                if on_chunk is not None:
                    on_chunk(start + chunk)
        return read()
    except LavaRuntimeError:
        raise
    except Exception as exc:
        raise LavaRuntimeError(f"Lava run of {name} failed ({one_line(exc)})") from exc
    finally:
        with contextlib.suppress(Exception):  # stopping a run that never started raises too
            stop_supervised(process, name=name)


def run_lava(
    net_path: str | os.PathLike,
    spikes: np.ndarray,
    *,
    samples_per_run: int = 50,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
    layers: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Run input ``spikes`` through the ``.net`` in Lava's fixed-point CPU models.

    Parameters
    ----------
    net_path : a ``.net`` written by ``netx_export``
    spikes : input spikes (or a direct-encoded file's payloads), ``N x shape x T`` with ``shape``
        the image ``(C, H, W)`` or the network's input shape, and ``T`` the file's time steps
    samples_per_run : samples per ``run()`` call (the progress bar's step; state carries
        over between calls, so this does not change results)
    on_chunk : called with the samples done after each ``run()`` call (see :func:`run_windows`)
    layers : return the spikes of every netx layer (``netx.hdf5.Network.layers``), each
        ``N x shape x T`` in slayer's layout (``C, H, W`` or ``F``), as
        :func:`~lava_qpsnn.sim.simulate` returns them

    Returns
    -------
    int8 array ``N x classes x T``: the output layer's spikes per sample window (or a list
    of every layer's). A layer's first steps of a window, before the sample reaches it, still
    carry the previous sample's tail in Lava; they are set to zero, as in slayer.
    """
    info = read_net_info(net_path)
    steps = info.encoding.time_steps
    spikes = np.asarray(spikes)
    if spikes.ndim < 3 or spikes.shape[-1] != steps or math.prod(spikes.shape[1:-1]) != math.prod(info.input_shape):
        raise DataError(
            f"input spikes of shape {spikes.shape} do not fit {info.path.name}: "
            f"expected N x {info.input_shape} x {steps}"
        )
    check_input(info.network, spikes)
    count = spikes.shape[0]
    data = to_lava_layout(spikes.reshape(count, *info.input_shape, steps).astype(np.float32))
    try:
        from lava.proc import io
    except ImportError as exc:
        raise LavaRuntimeError(f"Lava is not importable ({exc}): run 'make install'") from None

    net = build_network(info)
    source = io.source.RingBuffer(data=data)
    ports = [layer.out for layer in net.layers] if layers else [net.out]
    sinks = [io.sink.RingBuffer(shape=port.shape, buffer=count * steps) for port in ports]
    source.s_out.connect(net.inp)
    for port, sink in zip(ports, sinks, strict=True):
        port.connect(sink.a_in)
    run_cfg = run_config("cpu")
    out = run_windows(
        net,
        count,
        steps,
        run_cfg,
        read=lambda: [sink.data.get() for sink in sinks],
        name=info.path.name,
        samples_per_run=samples_per_run,
        progress=progress,
        on_chunk=on_chunk,
    )
    latencies = info.network.latencies if layers else (info.num_spiking_layers,)
    windows = [_from_lava_layout(o, count, steps, latency) for o, latency in zip(out, latencies, strict=True)]
    return windows if layers else windows[0]


def _from_lava_layout(data: np.ndarray, count: int, steps: int, latency: int) -> np.ndarray:
    """Lava ``(W, H, C | F) x (N*T)`` -> slayer ``N x (C, H, W | F) x T``, steps before ``latency`` zeroed."""
    spatial = data.shape[:-1]
    per_sample = data.reshape(*spatial, count, steps)
    per_sample = np.moveaxis(per_sample, -2, 0)  # N, W, H, C, T
    order = (0, *range(len(spatial), 0, -1), len(spatial) + 1)
    windows = per_sample.transpose(order).astype(np.int8)
    windows[..., :latency] = 0
    return windows
