"""A fast, bit-exact batched simulator of NetX HDF5 networks (Lava's fixed-point CPU models).

:func:`lava_qpsnn.netx.read_netx` turns a ``.net`` into the integers Lava computes with (netx's
weight transformations included); :func:`simulate` runs spike trains through it, in batches of
bounded memory (:func:`default_batch_size`).

Arithmetic (``lava/proc/{dense,conv,lif}/models.py``, per step, ``M = 2^23``)::

    a = (sum of W[:, spiking inputs]) >> -weight_exp           dense (a conv sums raw weights,
                                                                 wrapped to 24 bits, no exponent)
    d = rtz(u * (4096 - (du + 1)), 12) + (a << 6)
    u = d - 2^24 if d > M else d + 2^24 if d <= -M else d      one correction, not a modulo
    v = clip(rtz(v * (4096 - dv), 12) + u + (bias << 6), -M + 1, M - 1)
    spike = v > (vth << 6);  v = 0 where spiked

``rtz(x, 12)`` shifts right rounding toward zero. The sums of binary spikes times integer
weights are computed in float32, exact while ``64 * sum |w|`` over a neuron's inputs stays
below 2^24 (checked per layer; float64 otherwise, always exact); the recurrence runs in
float64, exact for integers below 2^53. States stay in 24 bits unless a neuron's input
``a`` reaches 2^18 (raw conv weights can); then ``u`` can leave 24 bits and Lava's int32
additions overflow, which is reproduced (two's-complement wrap) for such layers. Lava's
conv sums in float32 itself: conv layers whose sums exceed 2^24 are exact here and may
not be in Lava.

Time alignment. A synapse emits at step ``t`` what it received at ``t - 1 - delay``, so
neuron layer ``l`` (1-based, counting dense and conv layers; an input-layer neuron has
latency 0) first sees a sample's input ``l`` steps after the sample starts, plus the axonal
delays on the way.

- default (``continuous=False``): layer ``l`` starts from zero state at step ``l`` of each
  sample (its bias acts from then on) and its spikes at steps ``< l`` are 0. A delayed spike
  due at or past the window's end is lost: nothing of one sample reaches the next. This is
  Lava with ``netx.hdf5.Network(reset_interval=T, reset_offset=latency of the first layer)``
  and its delay buffers emptied once per window, i.e. :func:`lava_qpsnn.lava.run.run_lava`
  (``reset_offset=1``, :func:`~lava_qpsnn.lava.run.clear_delay_buffers`): output step ``t``
  of a sample is Lava's step ``t`` of its window, which is slayer's step ``t``. Lava's layer
  ``l`` spends its window's first ``l`` steps on the previous sample's tail (zeroed by
  ``run_lava``); the simulator starts every sample clean. A file's window must be longer
  than the input's latency (:attr:`lava_qpsnn.netx.NetxNetwork.input_latency`), or no
  input reaches the output: :func:`lava_qpsnn.netx.read_net_info` refuses it.
- ``continuous=True``: every layer starts from zero state at step 0 (biases act from the
  first step): one Lava run without reset per sample.
"""

from .engine import LayerTrace, check_input, default_batch_size, simulate, trace

__all__ = ["LayerTrace", "check_input", "default_batch_size", "simulate", "trace"]
