"""snnTorch and NIR: a network's graph where snnTorch's exporter fails, and a graph as snnTorch runs Loihi's neuron.

snnTorch 1.0's ``export_to_nir`` fails on conv networks with nirtorch 2.6: NIR's shape inference reads
the batch dimension of the sample it is given as a spatial one (``IndexError`` in
``calculate_conv_output``), and an unbatched sample breaks ``torch.nn.Flatten``. :func:`snntorch_graph`
chains snnTorch's own per-module converter instead and fills in the shapes that NIR's type inference
would have: the same nodes, the same parameters. The other way, :func:`snntorch_module` is snnTorch's
``import_from_nir`` (its ``Leaky`` neurons reset to zero, Loihi's neuron), quiet, with a one-line error for
a graph it cannot build and, for comparison, another reset.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError, NirFileError

__all__ = ["snntorch_graph", "snntorch_module", "snntorch_spikes"]


def snntorch_graph(net: torch.nn.Sequential, input_shape: Sequence[int]) -> object:
    """The ``nir.NIRGraph`` snnTorch's exporter writes for ``net``, a ``torch.nn.Sequential`` of snnTorch layers.

    ``input_shape`` is one sample's, without batch or time (``(C, H, W)`` or ``(F,)``). Every layer goes
    through ``snntorch.export_nir._extract_snntorch_module``; one it cannot convert is refused in one
    line naming it. Conv nodes get their input's height and width, flatten nodes their input type.
    """
    import nir
    from snntorch.export_nir import _extract_snntorch_module

    nodes = [nir.Input(np.array(input_shape))]
    x = torch.zeros(1, *input_shape)
    for i, module in enumerate(net):
        node = _extract_snntorch_module(module)
        if node is None or isinstance(node, nir.NIRGraph):
            raise ConfigError(
                f"layer {i} ({type(module).__name__}) has no NIR node in snnTorch's exporter, or a recurrent one: "
                "use Conv2d, AvgPool2d, Flatten, Linear, Leaky and Synaptic layers"
            )
        if isinstance(node, nir.Conv2d):
            node.input_shape = tuple(x.shape[-2:])
        elif isinstance(node, nir.Flatten):
            node.input_type = {"input": np.array(x.shape[1:])}
        if isinstance(module, torch.nn.Conv2d | torch.nn.AvgPool2d | torch.nn.Flatten | torch.nn.Linear):
            x = module(x)  # neurons keep the shape
        nodes.append(node)
    nodes.append(nir.Output(np.array(x.shape[1:])))
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def snntorch_module(path: str | os.PathLike, reset: str | None = None) -> torch.nn.Module:
    """The NIR graph at ``path`` as snnTorch's ``import_from_nir`` builds it; ``reset`` (``"zero"`` or
    ``"subtract"``) sets its ``Leaky`` neurons' reset instead of the one snnTorch gives them (zero, as Loihi's).

    The module takes one sample and one step at a time, ``out, state = module(x, state)`` (its flatten has
    NIR's batch-free ``start_dim``); its neurons keep their state in themselves: clear it with
    ``snntorch.utils.reset(module)`` before each sample. A graph snnTorch cannot build (e.g. ``IF`` neurons,
    which it takes only with ``r = 1``) is refused in one line.
    """
    import nir
    import snntorch
    from snntorch.import_nir import import_from_nir

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # it prints as it converts
            warnings.simplefilter("ignore")
            module = import_from_nir(nir.read(path))
    except (AssertionError, NotImplementedError, ValueError) as exc:
        raise NirFileError(f"snnTorch's import_from_nir cannot build {path}: {exc}") from None
    for neuron in module.modules():
        if reset is not None and isinstance(neuron, snntorch.Leaky):
            neuron.reset_mechanism = reset  # the buffer; the state function is chosen when it is built
            neuron.state_function = {"zero": neuron._base_zero, "subtract": neuron._base_sub}[reset]
    return module


@torch.no_grad()
def snntorch_spikes(module: torch.nn.Module, spikes: torch.Tensor) -> np.ndarray:
    """Output spikes ``N x classes x T`` of a :func:`snntorch_module` run on ``spikes`` (``N x shape x T``): one
    sample at a time, one step at a time, its neurons cleared before each sample."""
    from snntorch.utils import reset

    runs = []
    for sample in spikes:
        reset(module)
        state, steps = None, []
        for t in range(spikes.shape[-1]):
            out, state = module(sample[..., t], state)
            steps.append(out)
        runs.append(torch.stack(steps, dim=-1))
    return torch.stack(runs).cpu().numpy()
