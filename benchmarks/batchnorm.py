"""Does BatchNorm change the ranking of the QP-SNN quantizers? Baseline vs ReScaW at 8, 4, 2 bits,
without and with BatchNorm (folded into the weights and a bias), on digits.

Models: the MLP 64-128-10 (20 epochs) and a conv net with pooling (8c3-p2-16c3-10, 10 epochs:
it costs ten times more per epoch on the CPU); every conv and dense
layer at b bits (first and last included, as in ``benchmarks/quantization.py``); T = 16 (``--time-steps``), rate
coding. Accuracy is the exported fixed-point network's (what runs in Lava) on all 360 test
images. Resumable: one JSON file per (model, norm, quantizer, bits, seed) in the folder beside
the table (``benchmarks/results/batchnorm/``); finished ones are skipped, so an interrupted run continues.

    .venv/bin/python benchmarks/batchnorm.py [--epochs 20] [--conv-epochs 10] [--seeds 3] [--models mlp]
    .venv/bin/python benchmarks/batchnorm.py --report-only    # the table from what has run so far
    .venv/bin/python benchmarks/batchnorm.py --smoke          # seconds: one epoch at T = 4 (checks that it runs)
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import smoke
from runcache import tag
from tqdm import tqdm

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.loop import TrainConfig
from lava_qpsnn.training.quantize import QuantConfig

MODELS = {"mlp": "128-10", "conv+pool": "8c3-p2-16c3-10"}
NORMS = ("none", "bn")
QUANTIZERS = ("baseline", "rescaw")
BITS = (8, 4, 2)


def run_one(
    path: Path, arch: str, norm: str, quantizer: str, bits: int, seed: int, epochs: int, time_steps: int
) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    start = time.time()
    checkpoint = train_checkpoint(
        arch=arch,
        norm=norm,
        encoding=Encoding(time_steps=time_steps, seed=seed),
        config=TrainConfig(epochs=epochs, seed=seed),
        quant=QuantConfig(bits, quantizer, first_last_bits=None),
        progress=False,
    )
    result = {
        "fixed_point": 100 * checkpoint.metrics["fixed_point_test_accuracy"],
        "trained": 100 * checkpoint.metrics["test_accuracy"],
        "seconds": time.time() - start,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0:.1f}"


def table(results: dict, seeds: int) -> tuple[list[str], list[list]]:
    """One row per (model, bits): mean ± std per (norm, quantizer), and the better quantizer per norm.

    Configurations not run yet (a long run continues later) show as 'pending'.
    """
    headers = ["model", "bits", *(f"{q}, norm {n}" for n in NORMS for q in QUANTIZERS), "better: none / bn"]
    rows = []
    for model, bits in itertools.product(MODELS, BITS):
        cells, winners = [], []
        for norm in NORMS:
            means = {}
            for quantizer in QUANTIZERS:
                accs = [
                    results[key]["fixed_point"]
                    for s in range(seeds)
                    if (key := (model, norm, quantizer, bits, s)) in results
                ]
                cells.append(
                    mean_std(accs) + ("" if len(accs) == seeds else f" ({len(accs)} of {seeds} seeds)")
                    if accs
                    else "pending"
                )
                if len(accs) == seeds:
                    means[quantizer] = statistics.mean(accs)
            winners.append(max(means, key=means.get) if len(means) == len(QUANTIZERS) else "?")
        rows.append([model, bits, *cells, " / ".join(winners)])
    return headers, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="training epochs of the MLP")
    parser.add_argument("--conv-epochs", type=int, default=10, help="training epochs of the conv net")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to train")
    parser.add_argument("--report-only", action="store_true", help="write the table from the results so far")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/batchnorm.md"), help="the table")
    args = smoke.parse_args(parser, epochs=1, conv_epochs=1, seeds=1, time_steps=6)
    folder = args.out.with_suffix("")  # the runs' JSON files

    epochs = {"mlp": args.epochs, "conv+pool": args.conv_epochs}
    steps = tag("T", args.time_steps, 16)
    results = {}
    jobs = list(itertools.product(MODELS, NORMS, QUANTIZERS, BITS, range(args.seeds)))
    for key in tqdm(jobs, desc="configurations"):
        model, norm, quantizer, bits, seed = key
        path = folder / f"{model}_{norm}_{quantizer}_{bits}bit_seed{seed}_e{epochs[model]}{steps}.json"
        if path.exists() or (not args.report_only and model in args.models):
            results[key] = run_one(path, MODELS[model], norm, quantizer, bits, seed, epochs[model], args.time_steps)
    headers, rows = table(results, args.seeds)
    print(format_table(headers, rows))
    compute = sum(r["seconds"] for r in results.values())
    text = (
        "# BatchNorm and the ranking of the quantizers (digits)\n\n"
        f"Made by `.venv/bin/python benchmarks/batchnorm.py --epochs {args.epochs} --conv-epochs {args.conv_epochs} "
        f"--seeds {args.seeds} --time-steps {args.time_steps}` ({compute:.0f} s of training in all on 2 cores, "
        f"shared with other jobs). {args.seeds} seeds; {args.epochs} epochs (MLP 64-128-10), {args.conv_epochs} "
        f"(conv 8c3-p2-16c3-10); T = {args.time_steps}, rate coding; every conv and dense layer at the given bits "
        "(first and last included); BatchNorm (`--norm bn`) on every conv and hidden dense layer, folded into the "
        "weights before quantization and into a per-channel bias. Fixed-point test accuracy % on all 360 test "
        "images, mean ± std over seeds; 'better' is the quantizer with the higher mean without and with "
        "BatchNorm.\n\n" + format_markdown(headers, rows) + "\n"
    )
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
