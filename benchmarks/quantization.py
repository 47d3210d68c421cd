"""Accuracy and size of QP-SNN quantization on digits: bits x quantizer x grid x seeds.

Trains the MLP (64-128-10) and the conv net (conv 8, conv 16 stride 2, dense) at the
library's default training recipe with every synapse layer at b bits
(``first_last_bits=None``, so the quantizer is measured on every layer, the first and last
included), b in {8, 4, 2, 1}, for the QP-SNN baseline quantizer and ReScaW on each grid the
bit width has (symmetric with zero, zero-free; at 8 bits they are the same grid, at 1 bit
only zero-free exists), 3 seeds each, plus lava-dl's own default 8-bit hook as a
reference. Accuracy is that of the exported fixed-point network (what runs in Lava), on
all 360 test images. One JSON file per run is kept under ``benchmarks/results/quantization/``
and reused, so an interrupted run resumes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quantization.py [--epochs 20] [--seeds 3] [--models mlp conv]
    .venv/bin/python benchmarks/quantization.py --smoke    # seconds: one seed, one epoch (checks that it runs)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import smoke
import torch
from runcache import cached_run, tag
from tqdm import tqdm

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.hooks import grid_max
from lava_qpsnn.training.loop import TrainConfig
from lava_qpsnn.training.quantize import GRIDS, QuantConfig


def weight_bytes(checkpoint, bits: int | None) -> tuple[float, float]:
    """(packed bytes at the layer's bits, float32 bytes) of all synapse weights."""
    net = checkpoint.build()
    params = sum(b.synapse.weight.numel() for b in net.blocks if getattr(b, "synapse", None) is not None)
    return params * (bits or 8) / 8, params * 4.0


def run(arch: str, quant: QuantConfig | None, seed: int, epochs: int, time_steps: int) -> dict:
    start = time.perf_counter()
    checkpoint = train_checkpoint(
        arch=arch,
        encoding=Encoding(time_steps=time_steps, seed=seed),
        config=TrainConfig(epochs=epochs, seed=seed),
        quant=quant,
        progress=False,
    )
    packed, dense = weight_bytes(checkpoint, None if quant is None else quant.bits)
    return {
        **checkpoint.metrics,
        "packed_bytes": packed,
        "float32_bytes": dense,
        "seconds": time.perf_counter() - start,
    }


def grids(bits: int) -> tuple[str, ...]:
    """The distinct grids of a bit width (8-bit zero-free is the symmetric grid; 1 bit has only zero-free)."""
    return {8: ("symmetric",), 1: ("zero-free",)}.get(bits, GRIDS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--models", nargs="+", choices=("mlp", "conv"), default=["mlp", "conv"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quantization.md"))
    args = smoke.parse_args(parser, epochs=1, seeds=1, time_steps=4)

    torch.set_num_threads(1)
    settings = [(None, "lava-dl default hook")] + [
        (QuantConfig(bits, quantizer, first_last_bits=None, grid=grid), quantizer)
        for bits in (8, 4, 2, 1)
        for quantizer in ("rescaw", "baseline")
        for grid in grids(bits)
    ]
    jobs = [(arch, quant, name) for arch in args.models for quant, name in settings]
    cache = args.out.with_suffix("")
    steps, budget = tag("T", args.time_steps, 16), (args.epochs, args.time_steps)
    rows, seconds = [], 0.0
    for arch, quant, name in tqdm(jobs, desc="settings"):
        which = "slayer" if quant is None else f"{quant.quantizer} {quant.bits}bit {quant.grid} {quant.gamma}"
        results = [
            cached_run(cache, f"{arch} {which} seed{seed} {args.epochs}ep{steps}", run, arch, quant, seed, *budget)
            for seed in range(args.seeds)
        ]
        accs = [100 * r["fixed_point_test_accuracy"] for r in results]
        seconds += sum(r["seconds"] for r in results)
        bits = None if quant is None else quant.bits
        scale = None if quant is None else grid_max(bits, quant.grid)
        zero_free = quant is not None and quant.grid == "zero-free"
        rows.append(
            [
                arch,
                name,
                "-" if quant is None else quant.grid,
                bits or 8,
                "256" if quant is None else (scale + 1 if zero_free else 2 * scale + 1),
                "8 (even ints)" if quant is None else scale.bit_length() + 1,
                f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs) if len(accs) > 1 else 0:.2f}",
                f"{statistics.mean(100 * r['test_accuracy'] for r in results):.2f}",
                f"{results[0]['packed_bytes'] / 1024:.2f}",
                f"{results[0]['float32_bytes'] / results[0]['packed_bytes']:.1f}x",
            ]
        )
    headers = [
        "model",
        "quantizer",
        "grid",
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
        f"Made by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/quantization.py --epochs {args.epochs} "
        f"--seeds {args.seeds} --time-steps {args.time_steps} --models {' '.join(args.models)}` ({seconds:.0f} s "
        f"of training runs on one thread). {args.seeds} seeds, {args.epochs} epochs, T = {args.time_steps}, rate "
        "coding, the library's default training recipe (cross-entropy of "
        "the output spike counts, cosine learning rate, tau_grad 0.003; see docs/training.md); every synapse layer at "
        "the given bits (first and last included); accuracy of the exported fixed-point network on all 360 "
        "test images (the 'QAT model' column is the float training model).\n"
        "Weights KB counts `bits` per weight (the trained grid); 'Loihi bits' are the signed bits the "
        "integers take on the chip (the zero-free grid needs b + 1, the symmetric grid b).\n\n"
        + format_markdown(headers, rows)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
