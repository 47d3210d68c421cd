"""Training-step time per network: slayer's CPU neuron, the fused one, the synapses alone, snnTorch.

For each network, in one run and on the same batches, steps of every variant are
interleaved (so that the load of a shared machine falls on all alike) and the median is kept:

- ``slayer``: the network with slayer's own CPU neuron dynamics (``use_fused_dynamics(net, False)``);
- ``fused``: the same network as lava-qpsnn builds it (the fused CPU dynamics of
  :mod:`lava_qpsnn.training.dynamics`);
- ``synapses``: the limit: the same synapses (convolutions, dense layers, with their
  quantization hooks) forward and backward, with no neuron and no delay in between;
- ``snnTorch``: snnTorch ``Leaky`` neurons (beta 0.5, threshold 1, reset to zero) on Brevitas
  ``QuantConv2d`` / ``QuantLinear`` layers of the same shapes and bits, stepped through time
  as snnTorch is used; only where the ``peer`` extra is installed (``pip install -e '.[peer]'``).

A step is forward, loss (cross-entropy of the output spike counts), backward and an AdamW
step, on rate-coded data (digits for the 8 x 8 presets, MNIST for the MNIST network), with
4-bit weights (first and last layer 8-bit, the library's default), in a process that keeps freed
memory for reuse as training does (:mod:`lava_qpsnn.memory`; ``--fresh-memory``: not, to see what
that saves). Results go to
``benchmarks/results/train_speed.md`` with the command.

``--epoch`` instead times one epoch of the shipped MNIST model's training recipe
(``benchmarks/shipped_models.py``: ``32c3s2-64c3s2-10``, 4-bit, T = 8, batch 32, the library's
training loop with its per-epoch validation pass) with each dynamics, and writes
``benchmarks/results/train_speed_epoch.md``.

    .venv/bin/python benchmarks/train_speed.py [--threads 1] [--steps 40]
    .venv/bin/python benchmarks/train_speed.py --smoke    # seconds: 2 steps, digits networks (checks that it runs)
    .venv/bin/python benchmarks/train_speed.py --epoch --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smoke
import torch

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Dataset, Encoding, load_dataset, rate_encode
from lava_qpsnn.memory import keep_freed_memory
from lava_qpsnn.table import format_markdown
from lava_qpsnn.training.dynamics import use_fused_dynamics
from lava_qpsnn.training.loop import TrainConfig, train
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import Conv, Dense, Flatten, ModelConfig

BITS, FIRST_LAST_BITS = 4, 8


@dataclass(frozen=True)
class Network:
    arch: str
    dataset: str
    time_steps: int
    batch: int


NETWORKS = {
    "mlp preset": Network("mlp", "digits", 16, 32),
    "conv preset": Network("conv", "digits", 16, 32),
    "MNIST (32c3s2-64c3s2-10)": Network("32c3s2-64c3s2-10", "mnist", 8, 32),
    "MNIST, batch 128, T = 4": Network("32c3s2-64c3s2-10", "mnist", 4, 128),
}


class SynapsesOnly(torch.nn.Module):
    """The synapses of a slayer network in sequence: no neuron, no delay (the limit of a training step)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        x = spikes.reshape(spikes.shape[0], *self.net.config.input_shape, spikes.shape[-1])
        for block in self.net.blocks:
            x = block.synapse(x) if getattr(block, "synapse", None) is not None else block(x)
        return x


class PeerNet(torch.nn.Module):
    """snnTorch + Brevitas on the same layers; input ``N x C x H x W x T``, output ``N x classes x T``."""

    def __init__(self, config: ModelConfig) -> None:
        import snntorch
        from brevitas.nn import QuantConv2d, QuantLinear

        super().__init__()
        layers, channels = [], config.image_shape[0]
        if isinstance(config.layers[0], Dense):
            channels = int(np.prod(config.image_shape))
        weighted = [layer for layer in config.layers if isinstance(layer, Conv | Dense)]
        for layer in config.layers:
            if isinstance(layer, Flatten):
                layers.append(torch.nn.Flatten())
                channels = None
                continue
            bits = FIRST_LAST_BITS if layer in (weighted[0], weighted[-1]) else BITS
            if isinstance(layer, Conv):
                layers.append(
                    QuantConv2d(
                        channels, layer.channels, layer.kernel, layer.stride, layer.padding, bias=False,
                        weight_bit_width=bits,
                    )
                )  # fmt: skip
                channels = layer.channels
            else:
                layers.append(QuantLinear(channels or _flat_size(config, layer), layer.features, bias=False,
                                          weight_bit_width=bits))  # fmt: skip
                channels = layer.features
            layers.append(snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", init_hidden=True))
        self.layers = torch.nn.Sequential(*layers)
        self.flat_input = isinstance(config.layers[0], Dense)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        from snntorch import utils

        utils.reset(self.layers)
        out = []
        for t in range(spikes.shape[-1]):
            x = spikes[..., t]
            out.append(self.layers(x.flatten(1) if self.flat_input else x))
        return torch.stack(out, dim=-1)


def _flat_size(config: ModelConfig, dense: Dense) -> int:
    index = config.layers.index(dense)
    return int(np.prod(config.shapes[index - 1]))


def variants(network: Network, image_shape: tuple[int, ...], classes: int) -> dict[str, torch.nn.Module]:
    """The variants of ``network``, all from the same initial weights."""
    config = ModelConfig.from_arch(network.arch, image_shape, classes)
    quant = QuantConfig(BITS, first_last_bits=FIRST_LAST_BITS)

    def built() -> torch.nn.Module:
        torch.manual_seed(0)
        return quantize_model(build_model(config), quant)

    nets = {
        "slayer": use_fused_dynamics(built(), enabled=False),
        "fused": built(),
        "synapses": SynapsesOnly(built()),
    }
    if importlib.util.find_spec("snntorch") and importlib.util.find_spec("brevitas"):
        torch.manual_seed(0)
        nets["snnTorch"] = PeerNet(config)
    return nets


def step_time(net: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(x).sum(-1), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def measure(network: Network, steps: int, warmup: int) -> dict[str, float]:
    """Median step seconds of every variant of ``network``, steps interleaved."""
    train_set, _ = load_dataset(network.dataset)
    nets = variants(network, train_set.images.shape[1:], train_set.num_classes)
    optimizers = {name: torch.optim.AdamW(net.parameters(), lr=1e-3) for name, net in nets.items()}
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in nets}
    for i in range(warmup + steps):
        index = rng.choice(len(train_set), network.batch, replace=False)
        x = torch.from_numpy(rate_encode(train_set.images[index], network.time_steps, rng))
        y = torch.from_numpy(train_set.labels[index]).long()
        for name, net in nets.items():
            elapsed = step_time(net, optimizers[name], x, y)
            if i >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def epoch_seconds(fused: bool) -> float:
    """Wall time of one epoch of the shipped MNIST model's recipe (its test-set evaluation left out)."""
    train_set, test_set = load_dataset("mnist")
    network = NETWORKS["MNIST (32c3s2-64c3s2-10)"]
    config = ModelConfig.from_arch(network.arch, train_set.images.shape[1:], train_set.num_classes)
    torch.manual_seed(0)
    net = use_fused_dynamics(quantize_model(build_model(config), QuantConfig(BITS)), enabled=fused)
    one_sample = Dataset(test_set.images[:1], test_set.labels[:1], test_set.num_classes)
    start = time.perf_counter()
    train(net, train_set, one_sample, Encoding(time_steps=network.time_steps), TrainConfig(epochs=1), progress=False)
    return time.perf_counter() - start


def write_epoch_times(threads: int, out: Path) -> None:
    seconds = {name: epoch_seconds(fused) for name, fused in (("slayer", False), ("fused", True))}
    rows = [[name, f"{value:.0f}", f"{value / 60:.1f}"] for name, value in seconds.items()]
    text = "\n".join(
        [
            "# One epoch of the shipped MNIST model's training recipe, per neuron dynamics",
            "",
            f"Made by `python benchmarks/train_speed.py --epoch --threads {threads}` on {threads} CPU thread(s): "
            "`32c3s2-64c3s2-10`, 4-bit weights (first and last layer 8-bit), T = 8, batch 32, the 60,000 MNIST "
            "training images, the library's training loop (`train`, one epoch, with its validation pass on 256 "
            "training samples; the test-set evaluation left out).",
            "",
            format_markdown(["dynamics", "epoch (s)", "epoch (min)"], rows),
            "",
            f"Speed-up: {seconds['slayer'] / seconds['fused']:.2f}x.",
            "",
        ]
    )
    out.write_text(text)
    print(text)


def table(results: dict[str, dict[str, float]]) -> str:
    rows = []
    for name, seconds in results.items():
        limit = seconds["synapses"]
        peer = seconds.get("snnTorch")
        rows.append(
            [
                name,
                f"{1e3 * seconds['slayer']:.1f}",
                f"{1e3 * seconds['fused']:.1f}",
                f"{1e3 * limit:.1f}",
                "-" if peer is None else f"{1e3 * peer:.1f}",
                f"{seconds['slayer'] / limit:.2f}x",
                f"{seconds['fused'] / limit:.2f}x",
                f"{seconds['slayer'] / seconds['fused']:.2f}x",
                "-" if peer is None else f"{peer / seconds['fused']:.2f}x",
            ]
        )
    header = [
        "network",
        "slayer (ms)",
        "fused (ms)",
        "synapses only (ms)",
        "snnTorch (ms)",
        "slayer / synapses",
        "fused / synapses",
        "speed-up",
        "snnTorch / fused",
    ]
    return format_markdown(header, rows)


def main(argv: list[str] | None = None, run: Callable[[Network, int, int], dict[str, float]] = measure) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed, for comparable runs)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--epoch", action="store_true", help="time one epoch of the MNIST model's recipe instead")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/train_speed[_epoch].md")
    parser.add_argument(
        "--fresh-memory", action="store_true", help="leave glibc's malloc as it is (what keeping freed memory saves)"
    )
    args = smoke.parse_args(parser, argv, steps=2)
    torch.set_num_threads(args.threads)
    if args.epoch and args.fresh_memory:
        parser.error("--fresh-memory times steps only: the training loop of --epoch keeps freed memory itself")
    if not args.fresh_memory:
        keep_freed_memory()  # as training does, for every variant alike
    if args.epoch:
        write_epoch_times(args.threads, args.out or Path("benchmarks/results/train_speed_epoch.md"))
        return 0
    args.out = args.out or Path("benchmarks/results/train_speed.md")
    steps, warmup = args.steps, 1 if args.smoke else 5
    networks = {name: n for name, n in NETWORKS.items() if n.dataset == "digits" or not args.smoke}
    results = {}
    for name, network in networks.items():
        results[name] = run(network, steps, warmup)
        print(f"{name}: " + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in results[name].items()), flush=True)
    command = " ".join(["python benchmarks/train_speed.py", *(argv if argv is not None else sys.argv[1:])])
    settings = ", ".join(
        f"{name}: `{n.arch}` on {n.dataset}, T = {n.time_steps}, batch {n.batch}" for name, n in networks.items()
    )
    memory = (
        "glibc's malloc as it comes (`--fresh-memory`): large tensors get fresh pages from the kernel every step."
        if args.fresh_memory
        else "The process keeps freed memory for reuse, as training does (`lava_qpsnn.memory`), for every variant."
    )
    text = "\n".join(
        [
            "# Training-step time: slayer's neuron, the fused one, the synapses alone, snnTorch",
            "",
            f"Made by `{command}` on {args.threads} CPU thread(s): median of {steps} interleaved steps "
            f"per variant after {warmup} warm-up steps (forward, loss, backward, AdamW). Weights {BITS}-bit "
            f"(first and last layer {FIRST_LAST_BITS}-bit). {settings}. {memory}",
            "",
            "'synapses only' runs the same convolutions and dense layers forward and backward with no "
            "neuron in between: the limit of a step. 'snnTorch' is snnTorch `Leaky` on Brevitas layers of the "
            "same shapes and bits ('-' where the peer extra is not installed).",
            "",
            table(results),
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
