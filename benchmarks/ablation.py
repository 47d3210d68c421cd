"""QP-SNN's ablation on a data set: baseline quantizer, + ReScaW, + SVS, both, at 4 and 2 bits.

Rows, in the paper's shape (its Table 4 prunes every row to the same size):

- full precision: the float network; on export lava-dl's own 8-bit hook quantizes it;
- quantization only: the QP-SNN baseline quantizer (Eqs 4-6) or ReScaW, at b bits, unpruned;
- QP-SNN baseline: baseline quantizer + the baseline pruning criterion (SCA), 50% of the
  channels of every prunable layer; + ReScaW: ReScaW + SCA; + SVS: baseline quantizer + SVS;
  QP-SNN: ReScaW + SVS.

Every network of one seed and one quantizer comes from the same trained base (``--epochs``);
each row then gets the same ``--finetune-epochs`` of fine-tuning (unpruned rows too), so all
rows have had the same training budget. First and last layers stay 8-bit (the paper keeps them
in float; Loihi has no float weights);
both quantizers use the paper's zero-free grid (b bits of levels, b + 1 signed bits on Loihi)
and ReScaW the library's default scale (mean |W| up to 2 bits, max |W| from 3).
Each network is exported to NetX HDF5 and measured by ``report_network`` on ALL test images
in the bit-exact simulator: accuracy, packed weight bytes, weights and SynOps per sample.
One JSON file per (quantizer, bits, seed) is kept under ``benchmarks/results/ablation-<data>/``
and reused, so an interrupted run resumes where it stopped.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ablation.py --dataset digits --seeds 3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ablation.py --dataset fashion-mnist --seeds 3 \\
        --arch 12c3s2-24c3s2bn-10 --norm none --encoding direct --payload-bits 6 --time-steps 7 \\
        --epochs 3 --finetune-epochs 1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ablation.py --dataset mnist --seeds 1 \\
        --arch 16c3s2-32c3s2-10 --time-steps 8 --epochs 2 --finetune-epochs 1
    .venv/bin/python benchmarks/ablation.py --smoke    # seconds: a tiny MLP, one epoch (checks that it runs)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import smoke
import torch
from runcache import cached_run
from tqdm import tqdm

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding, load_dataset
from lava_qpsnn.pipeline import prune_checkpoint, train_checkpoint
from lava_qpsnn.report.network import report_network
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.loop import TrainConfig
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx

BITS = (4, 2)
RATIO = 0.5
GRID = "zero-free"  # the paper's levels (Eqs 4-6), for both quantizers
# (row name, quantizer or None for full precision, pruning criterion or None for unpruned)
METHODS = (
    ("full precision (lava-dl 8-bit hook on export)", None, None),
    ("baseline quantizer, unpruned", "baseline", None),
    ("ReScaW, unpruned", "rescaw", None),
    ("QP-SNN baseline (baseline quantizer + SCA)", "baseline", "sca"),
    ("+ ReScaW (ReScaW + SCA)", "rescaw", "sca"),
    ("+ SVS (baseline quantizer + SVS)", "baseline", "svs"),
    ("QP-SNN (ReScaW + SVS)", "rescaw", "svs"),
)


def measure(checkpoint, folder: Path) -> dict:
    """Export ``checkpoint`` and measure it on every test image in the bit-exact simulator.

    An unquantized network is counted at 8 bits per weight, the grid of lava-dl's hook (the
    report would count the fewer signed bits its small integers happen to need).
    """
    path = folder / "net.net"
    export_netx(checkpoint, path, force=True)
    _, test_set = load_dataset(checkpoint.dataset)
    report = report_network(path, checkpoint=checkpoint, samples=len(test_set.labels))
    return {
        "sim_accuracy": 100 * report.accuracy,
        "pytorch_accuracy": 100 * checkpoint.metrics["test_accuracy"],
        "packed_bytes": report.packed_bytes if checkpoint.quant else float(report.weights),
        "float32_bytes": report.float32_bytes,
        "weights": report.weights,
        "synops_per_sample": report.synops_per_sample,
        "widths": list(checkpoint.model.widths[:-1]),
    }


def run_base(dataset: str, arch: str, quantizer: str | None, bits: int, seed: int, args) -> dict:
    """Train one base network and measure it fine-tuned unpruned and pruned by each criterion."""
    start = time.perf_counter()
    quant = None if quantizer is None else QuantConfig(bits, quantizer, grid=GRID)
    base = train_checkpoint(
        dataset=dataset,
        arch=arch,
        norm=args.norm,
        encoding=Encoding(time_steps=args.time_steps, seed=seed, kind=args.encoding, bits=args.payload_bits),
        config=TrainConfig(epochs=args.epochs, seed=seed),
        quant=quant,
        progress=False,
    )
    criteria = [None] if quantizer is None else [None, "sca", "svs"]
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for criterion in criteria:
            ratio = 0.0 if criterion is None else RATIO
            prune = PruneConfig((ratio,), criterion or "svs", finetune_epochs=args.finetune_epochs)
            tuned = prune_checkpoint(base, prune, progress=False)
            rows[str(criterion)] = measure(tuned, Path(folder))
    return {"rows": rows, "seconds": time.perf_counter() - start}


def mean_std(values: list[float], digits: int = 2) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{values[0]:.{digits}f}"


def collect(results: dict, method: tuple, bits: int, key: str) -> list[float]:
    _, quantizer, criterion = method
    return [run["rows"][str(criterion)][key] for run in results[quantizer, 8 if quantizer is None else bits]]


def plot(results: dict, path: Path, title: str, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in METHODS:
        points = BITS if method[1] is not None else (8,)
        size = [np.mean(collect(results, method, b, "packed_bytes")) / 1024 for b in points]
        acc = np.array([collect(results, method, b, "sim_accuracy") for b in points])
        spread = acc.std(1, ddof=1) if acc.shape[1] > 1 else None  # as the table's ± (sample std)
        ax.errorbar(size, acc.mean(1), yerr=spread, marker="o", capsize=3, label=method[0])
        for x, y, b in zip(size, acc.mean(1), points, strict=True):
            ax.annotate(f"{b}b", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(xscale="log", xlabel="packed weights, KB (log)", ylabel=f"test accuracy %, simulator ({seeds} seed(s))")
    ax.set_title(title, fontsize=10)
    for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        axis(FormatStrFormatter("%g"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--arch", default="conv")
    parser.add_argument("--norm", choices=("none", "bn"), default="none")
    parser.add_argument("--encoding", choices=("rate", "direct"), default="rate")
    parser.add_argument("--payload-bits", type=int, default=8, help="direct encoding's payload bits")
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/results/ablation-<dataset>[-direct].md"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("float8", "baseline4", "rescaw4", "baseline2", "rescaw2"),
        metavar="BASE",
        help="run only these bases (float8, baseline4, rescaw4, baseline2, rescaw2), e.g. to share them between "
        "processes; a run without --only then writes the table",
    )
    args = smoke.parse_args(parser, arch="16-10", time_steps=4, epochs=1, finetune_epochs=1, seeds=1)
    setting = "-direct" if args.encoding == "direct" else ""
    out = args.out or Path(f"benchmarks/results/ablation-{args.dataset}{setting}.md")

    torch.set_num_threads(1)
    folder = out.with_suffix("")
    bases = [(None, 8)] + [(q, b) for b in BITS for q in ("baseline", "rescaw")]
    jobs = [(q, b, seed) for seed in range(args.seeds) for q, b in bases]
    coding = "" if args.encoding == "rate" else f"-direct{args.payload_bits}"
    budget = f"{'bn-' if args.norm == 'bn' else ''}T{args.time_steps}{coding}-e{args.epochs}-f{args.finetune_epochs}"
    results: dict = {}
    seconds = 0.0
    for quantizer, bits, seed in tqdm(jobs, desc="networks (each: train, fine-tune, export, measure)"):
        base = f"{quantizer or 'float'}{bits}"
        key = f"{args.arch}-{budget}-{base}-s{seed}"
        if args.only and base not in args.only:
            continue
        run = cached_run(folder, key, run_base, args.dataset, args.arch, quantizer, bits, seed, args)
        results.setdefault((quantizer, bits), []).append(run)
        seconds += run["seconds"]
    if args.only:
        print("done; run again without --only to write the table (finished bases are read back, not rerun)")
        return 0

    headers = ["method", "bits", "kept widths", "test acc % (simulator)", "training model acc %",
               "packed KB", "weights", "SynOps / sample"]  # fmt: skip
    rows = []
    for bits in BITS:
        for method in METHODS:
            if method[1] is None and bits != BITS[0]:
                continue
            b = 8 if method[1] is None else bits
            widths = collect(results, method, b, "widths")[0]
            rows.append(
                [
                    method[0],
                    "32 / 8" if method[1] is None else f"{b} (first, last 8)",
                    "-".join(map(str, widths)),
                    mean_std(collect(results, method, b, "sim_accuracy")),
                    mean_std(collect(results, method, b, "pytorch_accuracy")),
                    f"{np.mean(collect(results, method, b, 'packed_bytes')) / 1024:.2f}",
                    f"{np.mean(collect(results, method, b, 'weights')):,.0f}",
                    f"{np.mean(collect(results, method, b, 'synops_per_sample')):,.0f}",
                ]
            )
    print(format_table(headers, rows))
    png = out.with_suffix(".png")
    title = f"{args.dataset}, {args.arch}, T = {args.time_steps}: accuracy vs packed size"
    plot(results, png, title, args.seeds)
    fp = collect(results, METHODS[0], 8, "float32_bytes")[0] / 1024
    command = (
        f"OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ablation.py --dataset {args.dataset} --seeds {args.seeds} "
        f"--arch {args.arch} --norm {args.norm} --encoding {args.encoding} --payload-bits {args.payload_bits} "
        f"--time-steps {args.time_steps} --epochs {args.epochs} "
        f"--finetune-epochs {args.finetune_epochs}"
    )
    coding_text = (
        "rate coding"
        if args.encoding == "rate"
        else f"direct encoding ({args.payload_bits}-bit pixel payloads every step)"
    )
    seeds = f"mean ± std over {args.seeds} seeds" if args.seeds > 1 else "one seed"
    text = (
        f"# QP-SNN ablation on {args.dataset}\n\n"
        f"Made by `{command}` ({seconds / 60:.0f} min of single-threaded runs).\n\n"
        f"Network `{args.arch}`{', BatchNorm on every hidden layer' if args.norm == 'bn' else ''}, "
        f"T = {args.time_steps}, {coding_text}, the library's default training recipe: "
        f"{args.epochs} epochs, then {args.finetune_epochs} epoch(s) of fine-tuning (Adam, lr 1e-3) for every row, "
        f"after one-shot pruning of {RATIO:.0%} of the channels of every prunable layer where a criterion is named. "
        "First and last layers 8-bit; both quantizers on the paper's zero-free grid, ReScaW with the library's "
        "default scale (mean |W| at 2 bits, max |W| at 4). 'test acc' is the exported NetX network's, on every "
        "test image, in the bit-exact simulator (spike-identical with Lava fixed_pt); 'training model' is the "
        f"PyTorch network trained (float for full precision, fake-quantized otherwise); {seeds}. Packed KB counts "
        f"each weight at its trained bits; the float32 network's weights take {fp:.2f} KB. SynOps per sample are "
        "measured on all test images (every stored synapse a spike drives, zero weights included).\n\n"
        + format_markdown(headers, rows)
        + f"\n\n![accuracy vs packed size]({png.name})\n"
    )
    out.write_text(text)
    print(f"wrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
