"""Side by side: snnTorch + Brevitas vs lava-qpsnn on the same task, in the same run.

The task of ``benchmarks/quantization.py``: digits (the same 80/20 split), T = 16 rate
coding (the same encoder: fresh spikes every epoch, the fixed test encoding for
accuracy), an MLP 64-128-10 without bias, 20 epochs, batch 32, Adam at 3e-3, the class
with most output spikes, every layer quantized, 3 seeds.

- peer: snnTorch ``Leaky`` (beta 0.5, reset to zero, threshold 1, its default surrogate)
  and ``ce_rate_loss``; weights by Brevitas ``QuantLinear`` at its defaults
  (``Int8WeightPerTensorFloat``, with ``weight_bit_width`` 8 or 4), ternary
  ``SignedTernaryWeightPerTensorConst`` at 2 bits and ``SignedBinaryWeightPerTensorConst``
  (constant +-0.1) at 1 bit, ``torch.nn.Linear`` for float. Accuracy of the trained PyTorch
  model (it has no integer export).
- ours: :func:`~lava_qpsnn.pipeline.train_checkpoint` at the library's defaults (training
  recipe, quantizer, grid), every layer at the given bits; accuracy of the exported
  fixed-point network, the one that runs in Lava bit for bit. Loihi has no float weights:
  the "float" row is lava-dl's own default 8-bit hook (``quant=None``).

Also measured: training seconds per epoch of both (one thread, the mean over the run's
seeds, test evaluation excluded), and of lava-qpsnn's previous recipe (slayer's
``SpikeRate`` at a constant learning rate, zero-free grid) as the reference for speed.

The peer's packages are an optional dependency group, not part of the main install;
their requirements accept the pinned torch and numpy, so these stay as they are::

    .venv/bin/python -m pip install -e '.[peer]'      # adds snntorch 1.0.0, brevitas 0.13.4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peer_snntorch.py [--seeds 3] [--epochs 20]
    .venv/bin/python benchmarks/peer_snntorch.py --smoke    # seconds: one seed, one epoch (checks that it runs)

One JSON file per (framework, bits, seed) is kept under ``benchmarks/results/peer_snntorch/``
and reused, so an interrupted run resumes; the table goes to
``benchmarks/results/peer_snntorch.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import smoke
import torch
from runcache import cached_run

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding, encode_test_split, load_dataset, rate_encode
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.loop import TrainConfig, classify
from lava_qpsnn.training.quantize import QuantConfig
from lava_qpsnn.training.specs import NeuronConfig

WIDTHS = (None, 8, 4, 2, 1)  # None: float weights
TIME_STEPS, BATCH, LR = 16, 32, 3e-3


def peer_layer(n_in: int, n_out: int, bits: int | None) -> torch.nn.Module:
    """A bias-free dense layer with the peer's weight quantizer for ``bits``."""
    if bits is None:
        return torch.nn.Linear(n_in, n_out, bias=False)
    from brevitas.nn import QuantLinear
    from brevitas.quant import SignedBinaryWeightPerTensorConst, SignedTernaryWeightPerTensorConst

    if bits == 2:
        return QuantLinear(n_in, n_out, bias=False, weight_quant=SignedTernaryWeightPerTensorConst)
    if bits == 1:
        return QuantLinear(n_in, n_out, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
    return QuantLinear(n_in, n_out, bias=False, weight_bit_width=bits)


class PeerNet(torch.nn.Module):
    """snnTorch MLP: dense -> Leaky per layer; input ``N x 64 x T``, output spikes ``T x N x classes``."""

    def __init__(self, widths: list[int], bits: int | None) -> None:
        import snntorch

        super().__init__()
        self.layers = torch.nn.ModuleList(peer_layer(a, b, bits) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.neurons = torch.nn.ModuleList(
            snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero") for _ in self.layers
        )

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        states = [neuron.init_leaky() for neuron in self.neurons]
        out = []
        for t in range(spikes.shape[-1]):
            x = spikes[..., t]
            for i, (layer, neuron) in enumerate(zip(self.layers, self.neurons, strict=True)):
                x, states[i] = neuron(layer(x), states[i])
            out.append(x)
        return torch.stack(out)


def train_peer(bits: int | None, seed: int, epochs: int) -> dict:
    """Train the peer on digits; return its test accuracy and seconds per epoch."""
    from snntorch import functional

    train_set, test_set = load_dataset("digits")
    flat = train_set.images.reshape(len(train_set), -1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    net = PeerNet([flat.shape[1], 128, train_set.num_classes], bits)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = functional.ce_rate_loss()
    labels = torch.from_numpy(train_set.labels)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(len(train_set)))
        for first in range(0, len(train_set), BATCH):
            index = order[first : first + BATCH]
            loss = loss_fn(net(torch.from_numpy(rate_encode(flat[index], TIME_STEPS, rng))), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = (time.perf_counter() - start) / max(1, epochs)
    test_spikes = encode_test_split(test_set, Encoding(time_steps=TIME_STEPS, seed=seed))
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(test_spikes.reshape(len(test_set), -1, TIME_STEPS)).float())
    predictions = classify(out.permute(1, 2, 0).numpy())
    return {"test_accuracy": float((predictions == test_set.labels).mean()), "seconds_per_epoch": seconds}


def train_ours(bits: int | None, seed: int, epochs: int, previous: bool = False) -> dict:
    """Train lava-qpsnn's MLP; accuracy of its exported fixed-point network.

    ``previous``: the settings before the training options existed (slayer's SpikeRate
    loss, constant learning rate, tau_grad 1, ReScaW with gamma = mean |W| on the zero-free grid).
    """
    recipe = {"loss": "spike-rate", "schedule": "constant"} if previous else {}
    quant = {"quantizer": "rescaw", "gamma": "mean", "grid": "zero-free"} if previous else {}
    start = time.perf_counter()
    checkpoint = train_checkpoint(
        encoding=Encoding(time_steps=TIME_STEPS, seed=seed),
        config=TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, seed=seed, **recipe),
        neuron=NeuronConfig(tau_grad=1.0) if previous else None,
        quant=None if bits is None else QuantConfig(bits, first_last_bits=None, **quant),
        progress=False,
    )
    return {
        "test_accuracy": checkpoint.metrics["fixed_point_test_accuracy"],
        "seconds_per_epoch": (time.perf_counter() - start) / max(1, epochs),  # includes building and 1 evaluation
    }


RUNNERS = {
    "peer": train_peer,
    "ours": train_ours,
    "ours, previous recipe": lambda bits, seed, epochs: train_ours(bits, seed, epochs, previous=True),
}


def cached(cache: Path, name: str, bits: int | None, seed: int, epochs: int) -> dict:
    key = f"{name} {bits or 'float'}bit seed{seed} {epochs}ep"
    return cached_run(cache, key, RUNNERS[name], bits, seed, epochs)


def mean_std(values: list[float]) -> str:
    if not values:  # --speed-seeds 0
        return "-"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--speed-seeds", type=int, default=1, help="seeds of the previous recipe (timing reference)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/peer_snntorch.md"))
    parser.add_argument(
        "--peer-only", action="store_true", help="only train (and cache) the peer, which no lava-qpsnn setting affects"
    )
    args = smoke.parse_args(parser, seeds=1, epochs=1)
    try:
        import brevitas  # noqa: F401
        import snntorch  # noqa: F401
    except ImportError:
        parser.exit(2, "the peer packages are missing: .venv/bin/python -m pip install -e '.[peer]'\n")
    torch.set_num_threads(1)
    cache = args.out.with_suffix("")
    cache.mkdir(parents=True, exist_ok=True)
    results = {  # the peer first: it does not depend on lava-qpsnn's defaults
        (name, bits): [
            cached(cache, name, bits, seed, args.epochs)
            for seed in range(args.speed_seeds if name == "ours, previous recipe" else args.seeds)
        ]
        for name in (["peer"] if args.peer_only else RUNNERS)
        for bits in WIDTHS
    }
    if args.peer_only:
        return 0
    rows = []
    for bits in WIDTHS:
        accs = {name: [100 * r["test_accuracy"] for r in results[name, bits]] for name in RUNNERS}
        rows.append(
            [
                "float (ours: lava-dl's 8-bit hook)" if bits is None else f"{bits}-bit",
                mean_std(accs["peer"]),
                mean_std(accs["ours"]),
                f"{statistics.mean(accs['ours']) - statistics.mean(accs['peer']):+.1f}",
                mean_std(accs["ours, previous recipe"]),
            ]
        )
    print(format_table(HEADERS, rows))
    seconds = {name: [r["seconds_per_epoch"] for bits in WIDTHS for r in results[name, bits]] for name in RUNNERS}
    speed = [[name, f"{statistics.mean(s):.2f}", len(s)] for name, s in seconds.items() if s]
    print(format_table(["framework", "s / epoch", "runs"], speed))
    text = (
        "# lava-qpsnn vs snnTorch + Brevitas on digits\n\n"
        f"Made by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peer_snntorch.py --seeds {args.seeds} "
        f"--epochs {args.epochs} --speed-seeds {args.speed_seeds}` (one thread). MLP 64-128-10 without bias, "
        f"T = {TIME_STEPS} rate coding, {args.epochs} epochs, batch {BATCH}, Adam at {LR}, every layer quantized, "
        "test accuracy % (all 360 test images) as mean ± std over seeds. 'ours' is the exported fixed-point "
        "network at the library's defaults (its 'float' row: lava-dl's default 8-bit hook, as Loihi has no float "
        "weights); the peer is its trained PyTorch model. Grids: peer 8/4-bit "
        "Brevitas' per-tensor float scale, 2-bit ternary with the constant scale 0.1, 1-bit +-0.1; ours see "
        "`benchmarks/results/quantization.md`. 'previous recipe' is lava-qpsnn before the training options "
        "(SpikeRate loss, constant learning rate, tau_grad 1, ReScaW with gamma = mean |W| on the zero-free "
        f"grid; {args.speed_seeds} seed(s)).\n\n"
        + format_markdown(HEADERS, rows)
        + "\n\nTraining time per epoch (one thread; ours includes building the network and one final "
        "evaluation, divided by the epochs):\n\n" + format_markdown(["framework", "s / epoch", "runs"], speed) + "\n"
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


HEADERS = ["weights", "snnTorch + Brevitas", "lava-qpsnn (fixed point)", "difference", "lava-qpsnn, previous recipe"]

if __name__ == "__main__":
    sys.exit(main())
