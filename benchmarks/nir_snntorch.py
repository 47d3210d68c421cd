"""From snnTorch to Loihi 2 through NIR, and back: a conv network trained in snnTorch, measured at every step.

1. A conv network in snnTorch (``Conv2d``, ``AvgPool2d``, ``Leaky`` with reset to zero, ``Linear``), trained
   briefly on rate-coded digits with snnTorch's own rate loss, as its tutorials do.
2. Its NIR graph (``snntorch_graph``: what snnTorch's exporter writes), imported by ``import_nir``: before any
   fine-tuning, the imported float network against snnTorch's own run of the same graph on every test image
   (output spikes, spike counts, predictions, the accuracy of each).
3. Compressed by the library: ``train --init`` with 4-bit ReScaW weights, 50% SVS channel pruning and
   fine-tuning; exported; evaluated in the simulator on every test image and in Lava fixed_pt, with
   PyTorch's fixed-point spikes to compare.
4. The exported network as NIR, read by snnTorch's own importer (``import_from_nir``): its output spikes and
   predictions against the exported network's in the simulator (shifted by its latency, one step per layer),
   as snnTorch builds it (its ``Leaky`` neurons reset to zero, as Loihi's) and, to show what the reset
   decides (NIR records none), with them set to subtract, snnTorch's own default for ``Leaky``.

    .venv/bin/python benchmarks/nir_snntorch.py [--epochs 20] [--lava-samples 100]
    .venv/bin/python benchmarks/nir_snntorch.py --smoke    # seconds: one epoch of each, a few samples

The table goes to ``benchmarks/results/nir_snntorch.md``, the files to ``benchmarks/results/nir_snntorch/``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import nir
import numpy as np
import smoke
import snntorch as snn
import torch
from snntorch import functional as snn_functional
from snntorch import utils as snn_utils

from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.evaluation import evaluate
from lava_qpsnn.interchange import export_nir, import_nir, snntorch_graph, snntorch_module, snntorch_spikes
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.sim import simulate
from lava_qpsnn.table import format_markdown
from lava_qpsnn.training.checkpoint import save_checkpoint
from lava_qpsnn.training.loop import TrainConfig, classify
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx

T = 16
ENCODING = Encoding(time_steps=T, seed=0)


def snntorch_net() -> torch.nn.Sequential:
    """Two conv layers with average pooling and one dense layer, as snnTorch's tutorials build them."""
    leaky = dict(init_hidden=True, reset_mechanism="zero")  # Loihi's reset: NIR records none
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.AvgPool2d(2),
        snn.Leaky(beta=0.5, **leaky),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.AvgPool2d(2),
        snn.Leaky(beta=0.5, **leaky),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 2 * 2, 10),
        snn.Leaky(beta=0.75, output=True, **leaky),
    )


def run_snntorch(net: torch.nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """Output spikes ``N x classes x T`` of an snnTorch network stepped over ``spikes`` (``N C H W T``)."""
    snn_utils.reset(net)
    return torch.stack([net(spikes[..., t])[0] for t in range(spikes.shape[-1])], dim=-1)


def train_snntorch(net: torch.nn.Module, epochs: int, seed: int = 0) -> float:
    """Brief training in snnTorch: Adam, its rate-coded cross-entropy, fresh Bernoulli spikes each batch."""
    train_set, _ = load_dataset("digits")
    images, labels = torch.tensor(train_set.images), torch.tensor(train_set.labels).long()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    loss_fn = snn_functional.ce_rate_loss()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(64):
            x = (torch.rand(*images[batch].shape, T, generator=generator) < images[batch][..., None]).float()
            out = run_snntorch(net, x)
            loss = loss_fn(out.permute(2, 0, 1), labels[batch])  # snnTorch's layout: T x N x classes
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def agreement(theirs: np.ndarray, ours: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Output spikes ``N x classes x T`` of two runs of one network: what agrees, and each one's accuracy."""
    return {
        "spikes": 100 * float((theirs == ours).mean()),
        "counts": 100 * float((theirs.sum(-1) == ours.sum(-1)).all(1).mean()),
        "predictions": 100 * float((classify(theirs) == classify(ours)).mean()),
        "accuracy_theirs": 100 * float((classify(theirs) == labels).mean()),
        "accuracy_ours": 100 * float((classify(ours) == labels).mean()),
    }


def delayed(net: torch.nn.Module, spikes: torch.Tensor, latency: int) -> np.ndarray:
    """A lava-qpsnn network's output aligned with snnTorch's: each of its ``latency`` layers adds one step."""
    padded = torch.cat([spikes, torch.zeros(*spikes.shape[:-1], latency)], dim=-1)
    with torch.no_grad():
        return net(padded)[..., latency:].numpy()


RESETS = (None, "subtract")  # as snnTorch's importer builds the neurons (reset to zero), and subtracting


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="snnTorch training epochs")
    parser.add_argument("--qp-epochs", type=int, default=5, help="quantization-aware epochs before pruning")
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--lava-samples", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/nir_snntorch.md"))
    args = smoke.parse_args(parser, epochs=1, qp_epochs=1, finetune_epochs=1, lava_samples=4)
    folder = args.out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    _, test_set = load_dataset("digits")
    spikes = torch.tensor(encode_test_split(test_set, ENCODING), dtype=torch.float32)
    labels = test_set.labels

    net = snntorch_net()
    seconds = train_snntorch(net, args.epochs)
    with torch.no_grad():
        theirs = run_snntorch(net, spikes).numpy()
    graph_path = folder / "snntorch.nir"
    nir.write(graph_path, snntorch_graph(net, (1, 8, 8)), compression=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = import_nir(graph_path, dataset="digits", time_steps=T)
    notes = [str(w.message) for w in caught]
    save_checkpoint(imported, folder / "imported.pt", force=True)
    before = agreement(theirs, delayed(imported.build(), spikes, 3), labels)

    compressed = train_checkpoint(
        init=imported,
        dataset="digits",
        encoding=ENCODING,
        config=TrainConfig(epochs=args.qp_epochs),
        quant=QuantConfig(4, "rescaw"),
        prune=PruneConfig((0.5,), "svs", finetune_epochs=args.finetune_epochs),
        progress=False,
    )
    save_checkpoint(compressed, folder / "qpsnn.pt", force=True)
    net_path = folder / "qpsnn.net"
    layers = export_netx(compressed, net_path, force=True)
    sim = evaluate(net_path, checkpoint=compressed, progress=False)
    lava = evaluate(net_path, backend="lava", samples=args.lava_samples, checkpoint=compressed, progress=False)
    ours_nir = folder / "qpsnn.nir"
    export_nir(compressed, net_path, ours_nir, force=True)

    latency = len(compressed.model.widths)  # the exported network's output lags snnTorch's by one step per layer
    exported = simulate(net_path, spikes.numpy().astype(np.int8))[..., latency:]
    back = {
        reset: agreement(
            snntorch_spikes(snntorch_module(ours_nir, reset), spikes)[..., : T - latency], exported, labels
        )
        for reset in RESETS
    }

    kept = "-".join(str(w) for w in compressed.model.widths)
    rows = [
        ["snnTorch, trained", f"{args.epochs} epochs, {seconds:.0f} s", "-", f"{before['accuracy_theirs']:.2f}"],
        [
            "imported, float, before fine-tuning",
            f"{before['spikes']:.2f}% of output spikes, all counts of {before['counts']:.1f}% of samples, "
            f"predictions of {before['predictions']:.1f}%",
            "the snnTorch run",
            f"{before['accuracy_ours']:.2f}",
        ],
        [
            f"QP-SNN: 4-bit ReScaW, 50% SVS (widths {kept}), simulator",
            f"output spikes identical to PyTorch's fixed point on {100 * sim.spike_agreement:.2f}% of samples",
            f"all {sim.samples} test images",
            f"{100 * sim.accuracy:.2f}",
        ],
        [
            "the same in Lava fixed_pt",
            f"output spikes identical on {100 * lava.spike_agreement:.2f}% of samples",
            f"first {lava.samples}",
            f"{100 * lava.accuracy:.2f}",
        ],
    ]
    for reset, figures in back.items():
        how = "as it builds it (reset to zero)" if reset is None else "its neurons set to subtract"
        rows.append(
            [
                f"exported NIR read by snnTorch's import_from_nir, {how}",
                f"predictions of {figures['predictions']:.1f}% equal the exported network's "
                f"({figures['spikes']:.2f}% of output spikes)",
                "every test image",
                f"{figures['accuracy_theirs']:.2f}",
            ]
        )
    headers = ["network", "agreement", "compared with / on", "test accuracy %"]
    packed = sum(layer.packed_bytes for layer in layers)
    text = (
        "# From snnTorch to Loihi 2 through NIR, and back\n\n"
        f"Made by `.venv/bin/python benchmarks/nir_snntorch.py {' '.join(sys.argv[1:])}`.\n\n"
        f"digits (8x8), rate-coded, T = {T}. snnTorch network: Conv2d(1, 16) - AvgPool2d(2) - Leaky - Conv2d(16, 32) - "
        "AvgPool2d(2) - Leaky - Linear(128, 10) - Leaky, reset to zero, trained in snnTorch (Adam 5e-3, "
        f"`ce_rate_loss`). Imported with `import_nir`; compressed with {args.qp_epochs} quantization-aware "
        f"epochs, one-shot SVS pruning and {args.finetune_epochs} fine-tuning epochs; packed weights "
        f"{packed / 1024:.2f} KB. The imported network lags snnTorch's by one step per layer (as in Lava); "
        "its output is compared shifted by 3 steps.\n\n"
        + format_markdown(headers, rows)
        + "\n\nWhat the import said: "
        + ("; ".join(notes) if notes else "nothing")
        + "\n"
    )
    args.out.write_text(text)
    print(text)
    assert sim.spike_agreement == 1.0 and lava.spike_agreement == 1.0, "Lava or the simulator differ from PyTorch"
    return 0


if __name__ == "__main__":
    sys.exit(main())
