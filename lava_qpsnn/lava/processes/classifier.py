"""Classifier: one hierarchical Lava process per trained network, encoder -> netx network -> readout."""

from __future__ import annotations

import os

import numpy as np
from lava.magma.core.decorator import implements
from lava.magma.core.model.sub.model import AbstractSubProcessModel
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_qpsnn.data import load_dataset
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.lava.processes.encoder import Encoder, checked_images
from lava_qpsnn.lava.processes.readout import NO_LABEL, Readout
from lava_qpsnn.lava.run import build_network
from lava_qpsnn.lava.targets import check_target
from lava_qpsnn.netx.metadata import read_net_info

__all__ = ["Classifier", "ClassifierModel"]


class Classifier(AbstractProcess):
    """A trained ``.net`` as one Lava process: images in, one predicted class per sample out.

    Usage (Lava's fixed-point CPU models; ``Loihi2HwCfg`` and ``target="loihi2"`` for the chip)::

        clf = Classifier("model.net")   # the file's data set's test split, its encoding and T
        clf.run(condition=RunSteps(num_steps=clf.num_steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        predictions = clf.predictions.get().astype(int); clf.stop()

    Inside, per sample window of ``T`` steps: :class:`Encoder` (the file's encoding: rate
    coding with its seed, or direct encoding's graded payloads) -> the netx network, every
    neuron reset at the start of each window -> :class:`Readout` (spike counts, argmax).
    What runs where: the encoder and readout are Python models on the host CPU; the netx
    network runs on Lava's fixed-point CPU models (``cpu``) or on Loihi 2 neuro cores
    (``loihi2``, with Lava's embedded-IO spike adapters between host and chip).

    Parameters
    ----------
    net : a ``.net`` exported by ``netx_export`` (its metadata gives data set, encoding, T)
    images : ``N x image_shape`` in [0, 1]; default: the test split of the file's data set
    samples : use only the first ``samples`` images
    target : ``cpu`` or ``loihi2`` (checked now: a missing Loihi runtime fails here)

    Attributes ``num_samples``, ``time_steps`` (T) and ``num_steps`` (their product) size
    a run. Ports and variables: ``label_out`` sends each sample's class at its window's last
    step and ``NO_LABEL`` (-1) otherwise; ``predictions`` holds the class of every sample
    run so far (``NO_LABEL`` before).
    """

    def __init__(
        self,
        net: str | os.PathLike,
        images: np.ndarray | None = None,
        *,
        samples: int | None = None,
        target: str = "cpu",
        name: str | None = None,
    ) -> None:
        # Lava's __del__ stops the process: it must be initialised before a check below can fail.
        super().__init__(target=target, name=name)
        check_target(target)
        info = read_net_info(net)  # refuses a window no input can cross
        if images is None:
            images = load_dataset(info.dataset)[1].images
        if samples is not None and samples < 1:
            raise ConfigError(f"samples must be >= 1, got {samples}")
        self.proc_params["images"] = checked_images(np.asarray(images)[:samples], info.input_shape)
        self.info = info
        self.num_samples = len(self.proc_params["images"])
        self.time_steps = info.encoding.time_steps
        self.num_steps = self.num_samples * self.time_steps  # one window per sample
        self.label_out = OutPort(shape=(1,))
        self.predictions = Var(shape=(self.num_samples,), init=NO_LABEL)


@implements(proc=Classifier, protocol=LoihiProtocol)
class ClassifierModel(AbstractSubProcessModel):
    """Builds and wires the three parts (see :class:`Classifier`)."""

    def __init__(self, proc: Classifier) -> None:
        info, images = proc.info, proc.proc_params["images"]
        steps = info.encoding.time_steps
        encoding = info.encoding
        bits = encoding.input_message_bits
        self.encoder = Encoder(images=images, time_steps=steps, seed=encoding.seed, shape=info.input_shape, bits=bits)
        self.network = build_network(info)
        _expose_netx_processes(self, self.network)
        self.readout = Readout(
            num_classes=info.num_classes, time_steps=steps, latency=info.num_spiking_layers, num_samples=len(images)
        )
        if proc.proc_params["target"] == "loihi2":  # the network on the chip, encoder and readout on the host
            self.to_chip, self.from_chip = _chip_adapters(self.network, bits)  # attributes: Lava finds sub-processes so
            self.encoder.s_out.connect(self.to_chip.inp)
            self.to_chip.out.connect(self.network.inp)
            self.network.out.connect(self.from_chip.inp)
            self.from_chip.out.connect(self.readout.a_in)
        else:
            self.encoder.s_out.connect(self.network.inp)
            self.network.out.connect(self.readout.a_in)
        self.readout.label_out.connect(proc.out_ports.label_out)
        proc.vars.predictions.alias(self.readout.predictions)


def _chip_adapters(network: AbstractProcess, input_bits: int) -> tuple[AbstractProcess, AbstractProcess]:
    """lava-loihi's spike adapters host -> chip and chip -> host, as lava-dl's Loihi tests use them:
    ``PyToN3ConvAdapter`` into a conv (3-d) input, ``PyToNxAdapter`` into a dense one (``input_bits``
    message bits: graded payloads of direct encoding, 0 for spikes), and ``NxToPyAdapter`` with
    binary (0 message bits) spikes out. Not run here: no Loihi."""
    from lava.proc import embedded_io as eio

    into = eio.spike.PyToN3ConvAdapter if len(network.inp.shape) == 3 else eio.spike.PyToNxAdapter
    return (
        into(shape=network.inp.shape, num_message_bits=input_bits),
        eio.spike.NxToPyAdapter(shape=network.out.shape, num_message_bits=0),
    )


def _expose_netx_processes(model: AbstractSubProcessModel, network: AbstractProcess) -> None:
    """Workaround (lava-dl 0.6.0): make a netx network's processes sub-processes of ``model``.

    netx's Network and block models declare no sub-processes (layers sit in a list, a
    block's synapse and neuron in plain attributes): a top-level Network runs only because
    Lava's compiler also walks port connections from the process it compiles. Nested in a
    hierarchical process, the compiler sees nothing of it unless each synapse and neuron
    process is an attribute of the enclosing model, which is what Lava searches.
    """
    for i, block in enumerate(network.layers):
        for name, part in vars(block).items():
            if isinstance(part, AbstractProcess) and part is not block:
                setattr(model, f"layer{i}_{name}", part)
