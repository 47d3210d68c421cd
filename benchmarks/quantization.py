"""Accuracy and size of QP-SNN quantization on digits: bits x quantizer x seeds.

Trains the MLP (64-128-10) and the conv net (conv 8, conv 16 stride 2, dense) with every
synapse layer at b bits (``first_last_bits=None``, so the quantizer is measured on every
layer, the first and last included), b in {8, 4, 2, 1}, for the QP-SNN baseline quantizer
and ReScaW, 3 seeds each, plus lava-dl's own default 8-bit hook as a reference. Accuracy
is that of the exported fixed-point network (what runs in Lava), on all 360 test images.

    .venv/bin/python benchmarks/quantization.py [--epochs 20] [--seeds 3] [--out benchmarks/results/quantization.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.experiment import train_checkpoint
from lava_qpsnn.quantize import QuantConfig, grid_max
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.train import TrainConfig


def weight_bytes(checkpoint, bits: int | None) -> tuple[float, float]:
    """(packed bytes at the layer's bits, float32 bytes) of all synapse weights."""
    net = checkpoint.build()
    params = sum(b.synapse.weight.numel() for b in net.blocks if getattr(b, "synapse", None) is not None)
    return params * (bits or 8) / 8, params * 4.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quantization.md"))
    args = parser.parse_args()

    settings = [(None, "lava-dl default hook")] + [
        (QuantConfig(bits, quantizer, first_last_bits=None), quantizer)
        for bits in (8, 4, 2, 1)
        for quantizer in ("baseline", "rescaw")
    ]
    jobs = [(arch, quant, name) for arch in ("mlp", "conv") for quant, name in settings]
    rows, start = [], time.time()
    for arch, quant, name in tqdm(jobs, desc="settings"):
        accs, qat_accs = [], []
        for seed in range(args.seeds):
            checkpoint = train_checkpoint(
                arch=arch,
                encoding=Encoding(time_steps=16, seed=seed),
                config=TrainConfig(epochs=args.epochs, seed=seed),
                quant=quant,
                progress=False,
            )
            accs.append(100 * checkpoint.metrics["fixed_point_test_accuracy"])
            qat_accs.append(100 * checkpoint.metrics["test_accuracy"])
        bits = None if quant is None else quant.bits
        packed, dense = weight_bytes(checkpoint, bits)
        loihi_bits = "8 (even ints)" if quant is None else (bits if bits == 8 else bits + 1)
        levels = "256" if quant is None else (2 * grid_max(bits) + 1 if bits == 8 else grid_max(bits) + 1)
        rows.append(
            [
                arch,
                name,
                bits or 8,
                levels,
                loihi_bits,
                f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs) if len(accs) > 1 else 0:.2f}",
                f"{statistics.mean(qat_accs):.2f}",
                f"{packed / 1024:.2f}",
                f"{dense / packed:.1f}x",
            ]
        )
    headers = [
        "model",
        "quantizer",
        "bits",
        "levels",
        "Loihi bits",
        "test acc % (fixed point, mean ± std)",
        "QAT model acc %",
        "weights KB",
        "vs float32",
    ]
    print(format_table(headers, rows))
    text = (
        "# QP-SNN quantization on digits\n\n"
        f"Made by `.venv/bin/python benchmarks/quantization.py --epochs {args.epochs} --seeds {args.seeds}` "
        f"({time.time() - start:.0f} s on 2 cores). {args.seeds} seeds, {args.epochs} epochs, T = 16, rate coding; "
        "every synapse layer at the given bits (first and last included); accuracy of the exported "
        "fixed-point network on all 360 test images (the 'QAT model' column is the float training model).\n"
        "Weights KB counts `bits` per weight (the trained grid); 'Loihi bits' are the signed bits the "
        "integers take on the chip (the paper's zero-free grid needs b + 1).\n\n"
        + format_markdown(headers, rows)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
