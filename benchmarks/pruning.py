"""Accuracy vs structured-pruning ratio for each criterion, and score stability (SCA vs SVS).

For each model (conv: conv 8, conv 16 stride 2, dense; MLP: 64-128-10) and seed, one network
is quantized to 4 bits (ReScaW, first and last layers 8 bits: what ``--bits 4`` gives) and
trained; copies of it are then pruned one-shot at ratio R in every prunable layer with each
criterion, fine-tuned and compacted (the library's ``prune_and_finetune``). R = 0 is the same
fine-tuning without pruning, so every row has had the same training budget. Accuracy is the
exported fixed-point network's, on all 360 test images. One JSON file per (model, seed) is
kept under ``benchmarks/results/pruning/`` and reused, so an interrupted run resumes.

Score stability across calibration batches of the trained, unpruned network: QP-SNN's Eq 15
(mean cosine similarity of the channel-score vectors), and two rank measures that can tell
criteria apart where the cosine of non-negative scores cannot: Kendall's tau of the scores and
the overlap (Jaccard) of the channel sets each batch would prune at 50%.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pruning.py [--epochs 20] [--finetune-epochs 10] [--seeds 3]
    .venv/bin/python benchmarks/pruning.py --smoke    # seconds: one seed, one epoch, T = 4 (checks that it runs)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import smoke
import torch
from runcache import cached_run, tag
from tqdm import tqdm

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding, load_dataset
from lava_qpsnn.export.fixed_point import to_fixed_point
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.loop import TrainConfig, accuracy, train
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.prune import (
    CRITERIA,
    PruneConfig,
    Stability,
    calibration_batch,
    prune_and_finetune,
    score_stability,
)
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig

RATIOS = (0.0, 0.25, 0.5, 0.75)
ARCHS = {"conv": "8c3-16c3s2-10", "mlp": "128-10"}


def trained_base(arch: str, seed: int, epochs: int, train_set, test_set, encoding):
    torch.manual_seed(seed)
    net = build_model(ModelConfig.from_arch(ARCHS[arch], train_set.images.shape[1:], train_set.num_classes))
    quantize_model(net, QuantConfig(4))
    train(net, train_set, test_set, encoding, TrainConfig(epochs=epochs, seed=seed), progress=False)
    return net


def stability(net, train_set, encoding, batches: int, size: int) -> dict[str, Stability]:
    data = calibration_batch(train_set, encoding, batches * size, seed=123)
    split = [data[i * size : (i + 1) * size] for i in range(batches)]
    return {c: score_stability(net, split, c) for c in ("sca", "svs")}


def run_seed(arch: str, seed: int, epochs: int, finetune_epochs: int, batches: int, size: int, time_steps: int) -> dict:
    """One seed of one model: score stability, and the fixed-point accuracy of every (criterion, ratio)."""
    train_set, test_set = load_dataset("digits")
    encoding = Encoding(time_steps=time_steps, seed=seed)
    base = trained_base(arch, seed, epochs, train_set, test_set, encoding)
    start = time.perf_counter()
    result: dict = {"stability": {}, "accuracy": {}, "widths": {}}
    for criterion, value in stability(base, train_set, encoding, batches, size).items():
        result["stability"][criterion] = dataclasses.asdict(value)
    for ratio in RATIOS:
        for criterion in CRITERIA if ratio else CRITERIA[:1]:
            config = PruneConfig((ratio,), criterion, finetune_epochs=finetune_epochs)
            small, _, _ = prune_and_finetune(
                copy.deepcopy(base), config, train_set, test_set, encoding, TrainConfig(seed=seed), progress=False
            )
            acc = 100 * accuracy(to_fixed_point(small, time_steps=encoding.time_steps), test_set, encoding)
            for c in CRITERIA if ratio == 0 else (criterion,):
                result["accuracy"][f"{c}@{ratio}"] = acc
            result["widths"][str(ratio)] = list(small.config.widths[:-1])
    result["seconds"] = time.perf_counter() - start
    return result


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f}"


def plot(results: dict, path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ARCHS), figsize=(5 * len(ARCHS), 4), sharey=True)
    for ax, arch in zip(axes, ARCHS, strict=True):
        for criterion in CRITERIA:
            accs = np.array([results[arch, criterion, r] for r in RATIOS])
            ax.errorbar(RATIOS, accs.mean(1), yerr=accs.std(1), marker="o", capsize=3, label=criterion)
        ax.set(title=f"{arch}, 4-bit ReScaW", xlabel="pruning ratio per layer", xticks=RATIOS)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"fixed-point test accuracy % (mean ± std, {seeds} seeds)")
    axes[0].legend()
    fig.suptitle("Structured pruning on digits: accuracy vs ratio by criterion")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--stability-batches", type=int, default=8)
    parser.add_argument("--stability-batch-size", type=int, default=64)
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pruning.md"))
    args = smoke.parse_args(
        parser, epochs=1, finetune_epochs=1, seeds=1, stability_batches=2, stability_batch_size=16, time_steps=4
    )

    torch.set_num_threads(1)
    results: dict = {}
    stable: dict = {}
    widths: dict = {}
    seconds = 0.0
    folder = args.out.with_suffix("")
    jobs = [(arch, seed) for arch in ARCHS for seed in range(args.seeds)]
    for arch, seed in tqdm(jobs, desc="models"):
        stab = f"{args.stability_batches}x{args.stability_batch_size}"
        key = f"{arch}-seed{seed}-e{args.epochs}-f{args.finetune_epochs}-s{stab}{tag('T', args.time_steps, 16)}"
        run = cached_run(
            folder,
            key,
            run_seed,
            arch,
            seed,
            args.epochs,
            args.finetune_epochs,
            args.stability_batches,
            args.stability_batch_size,
            args.time_steps,
        )
        for criterion, value in run["stability"].items():
            stable.setdefault((arch, criterion), []).append(Stability(**value))
        for name, acc in run["accuracy"].items():
            criterion, ratio = name.split("@")
            results.setdefault((arch, criterion, float(ratio)), []).append(acc)
        seconds += run["seconds"]
        for ratio, kept in run["widths"].items():
            widths[arch, float(ratio)] = kept

    headers = ["model", "criterion", *[f"R = {r}" for r in RATIOS]]
    rows = []
    for arch in ARCHS:
        for criterion in CRITERIA:
            rows.append([arch, criterion, *[mean_std(results[arch, criterion, r]) for r in RATIOS]])
    header_note = ", ".join(f"{arch}: " + " / ".join(str(widths[arch, r]) for r in RATIOS) for arch in ARCHS)
    stab_headers = ["model", "criterion", "cosine (Eq 15)", "Kendall tau", "overlap of the 50% pruned sets"]
    stab_rows = [
        [
            arch,
            c,
            *(f"{statistics.mean(getattr(s, f) for s in stable[arch, c]):.4f}" for f in Stability.__annotations__),
        ]
        for arch in ARCHS
        for c in ("sca", "svs")
    ]
    print(format_table(headers, rows))
    print(format_table(stab_headers, stab_rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = args.out.with_suffix(".png")
    plot(results, png, args.seeds)
    text = (
        "# Structured pruning on digits: accuracy vs ratio, by criterion\n\n"
        f"Made by `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pruning.py --epochs {args.epochs} --finetune-epochs "
        f"{args.finetune_epochs} --seeds {args.seeds} --time-steps {args.time_steps}` ({seconds / 60:.0f} min of "
        f"single-threaded runs).\n\n4-bit ReScaW (first and last layers 8 bits), T = {args.time_steps}, rate "
        f"coding; each seed trains one network for {args.epochs} epochs, then every (criterion, ratio) prunes a "
        f"copy one-shot in every prunable layer and fine-tunes it {args.finetune_epochs} epochs (Adam, lr 1e-3) "
        "before compaction; R = 0 gets the same fine-tuning. Fixed-point test accuracy % on all 360 test images, "
        f"mean ± std over {args.seeds} seeds. Kept widths per ratio: {header_note}.\n\n"
        + format_markdown(headers, rows)
        + f"\n\n![accuracy vs ratio]({png.name})\n\n"
        "## Score stability across calibration batches\n\n"
        f"Channel scores from {args.stability_batches} training batches of {args.stability_batch_size} samples, "
        "on the trained unpruned network, compared pairwise: cosine similarity (QP-SNN's Eq 15), Kendall's tau, "
        "and the Jaccard overlap of the channels each batch would prune at 50% (means over batch pairs, "
        "layers and seeds).\n\n" + format_markdown(stab_headers, stab_rows) + "\n"
    )
    args.out.write_text(text)
    print(f"wrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
