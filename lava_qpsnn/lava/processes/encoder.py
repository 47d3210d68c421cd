"""Encoder: images -> input spikes or graded payloads, exactly the encoding the model was trained and tested with."""

from __future__ import annotations

import math

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_qpsnn.data import direct_encode, rate_encode
from lava_qpsnn.data.encoding import MAX_PAYLOAD_BITS
from lava_qpsnn.errors import ConfigError
from lava_qpsnn.lava.run import to_lava_layout

__all__ = ["Encoder", "PyEncoderModel"]


class Encoder(AbstractProcess):
    """Encodes a buffer of images, one sample window of ``time_steps`` steps after another.

    Dynamics at Lava step ``s`` (1-based), with ``t = (s - 1) % T`` and sample
    ``n = (s - 1) // T mod N``::

        t == 0:  rate:   window = rng.random((*image_shape, T), float32) < images[n][..., None]
                         (rng = numpy.random.default_rng(seed), restarted whenever n == 0)
                 direct: window = round(images[n] * (2^bits - 1)) on every step (graded payloads)
        send window[..., t], reshaped to the network's input ``shape`` in Lava's (W, H, C) order

    For samples ``0..N-1`` this is exactly :func:`lava_qpsnn.data.encode_test_split` of the
    same images with ``Encoding(time_steps, seed)`` (or ``Encoding(time_steps, kind="direct",
    bits=bits)``): the input the PyTorch model and the simulator see. After ``N`` samples the
    buffer repeats, like Lava's ``RingBuffer``.

    Parameters
    ----------
    images : ``N x image_shape`` in [0, 1], e.g. ``N x C x H x W``
    time_steps : the window ``T`` of one sample
    seed : the encoding seed the network was trained/tested with (rate coding)
    shape : one step of network input in C order, ``(C, H, W)`` or ``(F,)``; its size must
        equal the image size
    bits : payload bits of direct encoding; 0 (default): rate coding
    """

    def __init__(
        self,
        *,
        images: np.ndarray,
        time_steps: int,
        seed: int,
        shape: tuple[int, ...],
        bits: int = 0,
        name: str | None = None,
    ) -> None:
        # first: see Classifier
        super().__init__(time_steps=time_steps, seed=seed, shape=tuple(shape), bits=bits, name=name)
        images = checked_images(images, shape)
        if time_steps < 1:
            raise ConfigError(f"time steps must be >= 1, got {time_steps}")
        self.images = Var(shape=images.shape, init=images)
        self.s_out = OutPort(shape=tuple(shape)[::-1])


def checked_images(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``images`` as float32, if there is at least one, each has the size of one input step, and
    every value is in [0, 1] (a spike probability, or a fraction of the largest payload)."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim < 2 or len(images) == 0 or math.prod(images.shape[1:]) != math.prod(shape):
        raise ConfigError(f"images of shape {images.shape} do not fit the input {tuple(shape)}: give N x {shape}")
    if not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise ConfigError(
            f"image values must be in [0, 1], found {images.min()}..{images.max()}: "
            "scale them as in training (e.g. images / 255)"
        )
    return images


@implements(proc=Encoder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")  # spikes and payloads are integers: the same model serves both
class PyEncoderModel(PyLoihiProcessModel):
    """Host (CPU) model: encodes one sample window at a time and sends one step of it per step."""

    images: np.ndarray = LavaPyType(np.ndarray, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=MAX_PAYLOAD_BITS)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._steps = proc_params["time_steps"]
        self._seed = proc_params["seed"]
        self._shape = proc_params["shape"]
        self._bits = proc_params["bits"]
        self._rng = np.random.default_rng(self._seed)
        self._window = np.zeros((*self._shape[::-1], self._steps), dtype=np.int32)

    def run_spk(self) -> None:
        step, sample = (self.time_step - 1) % self._steps, (self.time_step - 1) // self._steps % len(self.images)
        if step == 0:
            image = self.images[sample : sample + 1].astype(np.float32)
            if self._bits:
                spikes = direct_encode(image, self._steps, self._bits)
            else:
                if sample == 0:
                    self._rng = np.random.default_rng(self._seed)
                spikes = rate_encode(image, self._steps, self._rng)
            self._window = to_lava_layout(spikes.reshape(1, *self._shape, self._steps)).astype(np.int32)
        self.s_out.send(self._window[..., step])
