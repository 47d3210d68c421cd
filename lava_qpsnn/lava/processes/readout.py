"""Readout: output spikes -> one predicted class per sample window."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_qpsnn.errors import ConfigError

__all__ = ["Readout", "PyReadoutModel", "NO_LABEL"]

NO_LABEL = -1  # what label_out carries on steps that end no window, and predictions before a decision


class Readout(AbstractProcess):
    """Counts each class's output spikes over a sample window and emits the most active class.

    Dynamics at Lava step ``s`` (1-based), ``t = (s - 1) % T``, sample ``n = (s - 1) // T``::

        spikes = a_in                      (the output layer's spikes at step s)
        t >= latency:  counts += spikes    (steps t < latency still carry the previous
                                            sample: a spike needs one step per layer)
        t == T - 1:    label = argmax(counts), the first class on ties (as lava_qpsnn.training.loop.classify)
                       predictions[n mod N] = label;  counts = 0;  label_out = label
        otherwise:     label_out = NO_LABEL (-1)

    Parameters
    ----------
    num_classes : size of the output layer
    time_steps : the window ``T`` of one sample
    latency : steps before a sample's input reaches the output: the number of spiking
        (dense/conv) layers of a netx network. ``T`` must exceed it.
    num_samples : length ``N`` of the ``predictions`` buffer
    """

    def __init__(
        self, *, num_classes: int, time_steps: int, latency: int, num_samples: int, name: str | None = None
    ) -> None:
        super().__init__(time_steps=time_steps, latency=latency, name=name)  # first: see Classifier
        check_window(time_steps, latency)
        if num_samples < 1 or num_classes < 1:
            raise ConfigError(f"a readout needs >= 1 class and sample, got {num_classes} and {num_samples}")
        self.a_in = InPort(shape=(num_classes,))
        self.label_out = OutPort(shape=(1,))
        self.counts = Var(shape=(num_classes,), init=0)
        self.predictions = Var(shape=(num_samples,), init=NO_LABEL)


def check_window(time_steps: int, latency: int) -> None:
    """A window must outlast the network's depth, or no output step of a sample is ever seen."""
    if time_steps <= latency:
        raise ConfigError(
            f"a window of {time_steps} time steps is not longer than the network's depth ({latency} spiking layers, "
            f"one step each): no output spike of a sample would arrive in its window; use more than {latency} steps"
        )


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")  # counting spikes is exact in both
class PyReadoutModel(PyLoihiProcessModel):
    """Host (CPU) model of :class:`Readout`."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=1)
    label_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=32)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    predictions: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._steps = proc_params["time_steps"]
        self._latency = proc_params["latency"]

    def run_spk(self) -> None:
        spikes = self.a_in.recv()
        step = (self.time_step - 1) % self._steps
        if step >= self._latency:
            self.counts += spikes.astype(np.int32)
        label = NO_LABEL
        if step == self._steps - 1:
            label = int(np.argmax(self.counts))
            self.predictions[(self.time_step - 1) // self._steps % len(self.predictions)] = label
            self.counts[:] = 0
        self.label_out.send(np.array([label], dtype=np.int32))
