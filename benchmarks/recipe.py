"""Choosing the training defaults on a validation split (the test split is never read).

Each setting trains the MLP 64-128-10 on 80% of the digits training split and reports the
accuracy of its exported fixed-point network on the other 20% (``validation=0.2`` of
:func:`~lava_qpsnn.experiment.train_checkpoint`): T = 16, 20 epochs, batch 32, every
synapse layer quantized (``first_last_bits=None``). A setting overrides the library's
defaults (``TrainConfig``, ``NeuronConfig``, ``QuantConfig``) by name. One JSON file per
setting and seed is kept under ``benchmarks/results/recipe/`` and reused, so an
interrupted run resumes; the table goes to ``benchmarks/results/recipe.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py [--seeds 2] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.experiment import train_checkpoint
from lava_qpsnn.models import NeuronConfig
from lava_qpsnn.quantize import QuantConfig
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.train import TrainConfig

OLD = {"loss": "spike-rate", "schedule": "constant"}  # the recipe before these options existed
NEW = {"loss": "ce-count", "schedule": "cosine"}

# name -> (TrainConfig overrides, NeuronConfig overrides, bits or None, grid or None).
# slayer's surrogate gradient is scale_grad * 0.05 / rho * exp(-|v - threshold| / rho) with
# rho = 100 * tau_grad * threshold: tau_grad = 1 makes it nearly flat over the voltages seen.
SETTINGS: dict[str, tuple[dict, dict, int | None, str | None]] = {
    "old recipe, float": (OLD, {}, None, None),
    "ce-count, float": (NEW, {}, None, None),
    "ce-rate, float": ({**NEW, "loss": "ce-rate"}, {}, None, None),
    "spike-rate + cosine, float": ({**NEW, "loss": "spike-rate"}, {}, None, None),
    "ce-count constant lr, float": ({**NEW, "schedule": "constant"}, {}, None, None),
    "ce-count tau 0.03, float": (NEW, {"tau_grad": 0.03}, None, None),
    "ce-count tau 0.01, float": (NEW, {"tau_grad": 0.01}, None, None),
    "ce-count tau 0.003, float": (NEW, {"tau_grad": 0.003}, None, None),
    "ce-count init 1, float": ({**NEW, "init_gain": 1.0}, {}, None, None),
    "ce-count init 2, float": ({**NEW, "init_gain": 2.0}, {}, None, None),
    "ce-count lr 1e-2, float": ({**NEW, "lr": 1e-2}, {}, None, None),
    "ce-count wd 1e-2, float": ({**NEW, "weight_decay": 1e-2}, {}, None, None),
}


def run(name: str, seed: int, cache: Path) -> dict:
    path = cache / f"{name.replace(' ', '_').replace(',', '')}_seed{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    train, neuron, bits, grid = SETTINGS[name]
    quant = None if bits is None else QuantConfig(bits, first_last_bits=None, grid=grid)
    start = time.perf_counter()
    checkpoint = train_checkpoint(
        encoding=Encoding(time_steps=16, seed=seed),
        config=TrainConfig(**{"seed": seed, **train}),
        neuron=NeuronConfig(**neuron),
        quant=quant,
        validation=0.2,
        progress=False,
    )
    result = {**checkpoint.metrics, "seconds": time.perf_counter() - start}
    path.write_text(json.dumps(result))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="setting names to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recipe.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = args.out.with_suffix("")
    cache.mkdir(parents=True, exist_ok=True)
    unknown = set(args.only or ()) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}")
    rows = []
    for name in SETTINGS:
        if args.only and name not in args.only:
            continue
        results = [run(name, seed, cache) for seed in range(args.seeds)]
        accs = [100 * r["fixed_point_validation_accuracy"] for r in results]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        rows.append([name, f"{statistics.mean(accs):.2f} ± {std:.2f}", " ".join(f"{a:.1f}" for a in accs)])
        print(format_table(["setting", "val acc %", "seeds"], rows[-1:]), flush=True)
    headers = ["setting", "validation acc % (fixed point, mean ± std)", "per seed"]
    text = (
        "# Choosing the training defaults on a validation split\n\n"
        f"Made by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recipe.py --seeds {args.seeds}`. "
        "MLP 64-128-10 on digits, trained on 80% of the training split, accuracy of the exported fixed-point "
        "network on the other 20% (288 images; the test split is not read). Unnamed options are the library "
        "defaults at the time of the run; 'old recipe' is slayer's SpikeRate loss at a constant learning rate.\n\n"
        + format_markdown(headers, rows)
        + "\n"
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
