"""Choosing the training defaults on a validation split (the test split is never read).

Each setting trains the MLP 64-128-10 on 80% of the digits training split and reports the
accuracy of its exported fixed-point network on the other 20% (``TrainConfig(validation=0.2)`` of
:func:`~lava_qpsnn.pipeline.train_checkpoint`): T = 16 and 20 epochs (by default), batch 32, every
synapse layer quantized (``first_last_bits=None``). A setting overrides the library's
defaults (``TrainConfig``, ``NeuronConfig``, ``QuantConfig``) by name. One JSON file per
setting and seed is kept under ``benchmarks/results/recipe/`` and reused, so an
interrupted run resumes; the table goes to ``benchmarks/results/recipe.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py [--seeds 2] [--only NAME ...]
    .venv/bin/python benchmarks/recipe.py --smoke    # seconds: one seed, one epoch, T = 4 (checks that it runs)
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

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.loop import TrainConfig
from lava_qpsnn.training.quantize import QuantConfig
from lava_qpsnn.training.specs import NeuronConfig

OLD = {"loss": "spike-rate", "schedule": "constant"}  # the recipe before these options existed
NEW = {"loss": "ce-count", "schedule": "cosine"}
TAU = {"tau_grad": 0.003}
SLAYER_TAU = {"tau_grad": 1.0}  # slayer's default, and lava-qpsnn's before these options

# name -> (TrainConfig, NeuronConfig and QuantConfig overrides; None: float weights).
# slayer's surrogate gradient is scale_grad * 0.05 / rho * exp(-|v - threshold| / rho) with
# rho = 100 * tau_grad * threshold: tau_grad = 1 makes it nearly flat over the voltages seen.
SETTINGS: dict[str, tuple[dict, dict, dict | None]] = {
    "old recipe, float": (OLD, SLAYER_TAU, None),
    "ce-count, float": (NEW, SLAYER_TAU, None),
    "ce-rate, float": ({**NEW, "loss": "ce-rate"}, SLAYER_TAU, None),
    "spike-rate + cosine, float": ({**NEW, "loss": "spike-rate"}, SLAYER_TAU, None),
    "ce-count constant lr, float": ({**NEW, "schedule": "constant"}, SLAYER_TAU, None),
    "ce-count tau 0.03, float": (NEW, {"tau_grad": 0.03}, None),
    "ce-count tau 0.01, float": (NEW, {"tau_grad": 0.01}, None),
    "ce-count tau 0.003, float": (NEW, {"tau_grad": 0.003}, None),
    "ce-count tau 0.001, float": (NEW, {"tau_grad": 0.001}, None),
    "ce-count init 1, float": ({**NEW, "init_gain": 1.0}, SLAYER_TAU, None),
    "ce-count init 2, float": ({**NEW, "init_gain": 2.0}, SLAYER_TAU, None),
    "tau 0.003, 1-bit rescaw": (NEW, TAU, {"bits": 1, "gamma": "mean"}),
    "tau 0.003, 2-bit rescaw symmetric": (NEW, TAU, {"bits": 2, "grid": "symmetric", "gamma": "mean"}),
    "tau 0.003, 2-bit rescaw zero-free": (NEW, TAU, {"bits": 2, "grid": "zero-free", "gamma": "mean"}),
    "tau 0.003, 2-bit rescaw max symmetric": (NEW, TAU, {"bits": 2, "grid": "symmetric", "gamma": "max"}),
    "tau 0.003, 3-bit rescaw symmetric": (NEW, TAU, {"bits": 3, "grid": "symmetric", "gamma": "mean"}),
    "tau 0.003, 3-bit rescaw max symmetric": (NEW, TAU, {"bits": 3, "grid": "symmetric", "gamma": "max"}),
    "tau 0.003, 4-bit rescaw symmetric": (NEW, TAU, {"bits": 4, "grid": "symmetric", "gamma": "mean"}),
    "tau 0.003, 4-bit rescaw zero-free": (NEW, TAU, {"bits": 4, "grid": "zero-free", "gamma": "mean"}),
    "tau 0.003, 4-bit rescaw max symmetric": (NEW, TAU, {"bits": 4, "grid": "symmetric", "gamma": "max"}),
    "tau 0.003, 4-bit rescaw max zero-free": (NEW, TAU, {"bits": 4, "grid": "zero-free", "gamma": "max"}),
    "tau 0.003, 4-bit baseline symmetric": (NEW, TAU, {"bits": 4, "grid": "symmetric", "quantizer": "baseline"}),
    "tau 0.003, 8-bit rescaw": (NEW, TAU, {"bits": 8, "gamma": "mean"}),
    "tau 0.003, 8-bit rescaw max": (NEW, TAU, {"bits": 8, "gamma": "max"}),
    "tau 0.003, 8-bit baseline": (NEW, TAU, {"bits": 8, "quantizer": "baseline"}),
    "tau 0.003 init 1, float": ({**NEW, "init_gain": 1.0}, TAU, None),
    "tau 0.003 scale 3, float": (NEW, {**TAU, "scale_grad": 3.0}, None),
    "tau 0.003 ce-rate, float": ({**NEW, "loss": "ce-rate"}, TAU, None),
    "tau 0.003 lr 1e-2, float": ({**NEW, "lr": 1e-2}, TAU, None),
    "tau 0.003 wd 0.1, float": ({**NEW, "weight_decay": 0.1}, TAU, None),
}


def run(name: str, seed: int, epochs: int, time_steps: int) -> dict:
    train, neuron, quant = SETTINGS[name]
    start = time.perf_counter()
    checkpoint = train_checkpoint(
        encoding=Encoding(time_steps=time_steps, seed=seed),
        config=TrainConfig(**{"seed": seed, "validation": 0.2, "epochs": epochs, **train}),
        neuron=NeuronConfig(**neuron),
        quant=None if quant is None else QuantConfig(**{"first_last_bits": None, **quant}),
        progress=False,
    )
    return {**checkpoint.metrics, "seconds": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--only", nargs="*", help="setting names to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recipe.md"))
    args = smoke.parse_args(parser, seeds=1, epochs=1, time_steps=4)
    torch.set_num_threads(1)
    cache = args.out.with_suffix("")
    unknown = set(args.only or ()) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}")
    budget = tag("e", args.epochs, 20) + tag("T", args.time_steps, 16)
    rows = []
    for name in SETTINGS:
        if args.only and name not in args.only:
            continue
        results = [
            cached_run(cache, f"{name} seed{seed}{budget}", run, name, seed, args.epochs, args.time_steps)
            for seed in range(args.seeds)
        ]
        accs = [100 * r["fixed_point_validation_accuracy"] for r in results]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        rows.append([name, f"{statistics.mean(accs):.2f} ± {std:.2f}", " ".join(f"{a:.1f}" for a in accs)])
        print(format_table(["setting", "val acc %", "seeds"], rows[-1:]), flush=True)
    headers = ["setting", "validation acc % (fixed point, mean ± std)", "per seed"]
    text = (
        "# Choosing the training defaults on a validation split\n\n"
        f"Made by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py --seeds {args.seeds} --epochs {args.epochs} "
        f"--time-steps {args.time_steps}`. MLP 64-128-10 on digits, T = {args.time_steps}, {args.epochs} epochs, "
        "trained on 80% of the training split, accuracy of the exported fixed-point "
        "network on the other 20% (288 images; the test split is not read). 'old recipe': slayer's SpikeRate loss "
        "at a constant learning rate with slayer's tau_grad 1 (lava-qpsnn before these options); 'ce-count': "
        "cross-entropy of the output spike counts with a cosine learning rate; 'tau': the surrogate's tau_grad "
        "(1 where not named); 'init g': weights re-drawn with std g * threshold / sqrt(fan_in); quantized "
        "settings are ReScaW with gamma = mean |W| unless 'max' is named. Not named: Adam(W) at 3e-3, no weight "
        "decay, slayer's initial weights, scale_grad 1. The settings are in `benchmarks/recipe.py`.\n\n"
        "What the library's defaults took from this: the ce-count loss with the cosine schedule, tau_grad 0.003 "
        "(0.001 collapsed on one seed), slayer's initial weights, no weight decay (the learning rate is the "
        "task's 3e-3); ReScaW's gamma = mean |W| up to 2 bits and max |W| from 3 bits on; the symmetric grid "
        "from 2 bits on (within noise of the zero-free grid at 2 bits and ahead at 4, with one Loihi bit "
        "less).\n\n" + format_markdown(headers, rows) + "\n"
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
