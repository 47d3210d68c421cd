"""``report`` on a 4-bit, 50%-pruned conv net: packed size vs the unpruned float32 network, activity, Loihi 2 ESTIMATE.

Two configurations of the same recipe (conv 8, conv 16 stride 2, dense; digits, T = 16;
4-bit baseline quantizer; SVS pruning of half the channels of both convs, fine-tuned, then
compacted): the first and last layers at 8 bits (the default, as in QP-SNN) and every
layer at 4 bits (``--first-last-bits same``). Each is exported to NetX and reported by
:func:`lava_qpsnn.report.network.report_network` with its checkpoint, on the whole test set.

    .venv/bin/python benchmarks/report_pruned.py [--epochs 20] [--finetune-epochs 10] [--samples 360]
    .venv/bin/python benchmarks/report_pruned.py --smoke    # seconds: one epoch, 20 samples (checks that it runs)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import smoke

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.report.network import NetworkReport, report_network, report_table
from lava_qpsnn.report.plots import write_report_plots
from lava_qpsnn.table import format_markdown, format_table
from lava_qpsnn.training.loop import TrainConfig
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx

# name -> (QuantConfig.first_last_bits, file and plot folder name)
CONFIGS = {"8-bit first and last layers": (8, "first_last_8bit"), "all layers 4-bit": (None, "all_4bit")}
SUMMARY_HEADERS = [
    "configuration",
    "fixed-point accuracy %",
    "packed KB",
    "float32 KB before pruning",
    "x float32 before pruning",
    "x float32 after pruning",
    "x float32 before pruning, at Loihi's stored bits",
    "SynOps / sample",
    "spikes / sample",
    "cores (ESTIMATE)",
    "energy nJ / inference (ESTIMATE)",
]


def summary_row(name: str, report: NetworkReport, accuracy: float) -> list[object]:
    return [
        name,
        f"{100 * accuracy:.1f}",
        f"{report.packed_bytes / 1024:.2f}",
        f"{report.float32_bytes_before / 1024:.2f}",
        f"{report.compression:.1f}x",
        f"{report.float32_bytes / report.packed_bytes:.1f}x",
        f"{report.float32_bytes_before / _loihi_bytes(report):.1f}x",
        f"{report.synops_per_sample:,.0f}",
        f"{report.spikes_per_sample:,.0f}",
        report.cores,
        f"{report.energy.joules * 1e9:.0f}",
    ]


def _loihi_bytes(report: NetworkReport) -> float:
    """Weight bytes at the bits Loihi stores (netx's signed bits: a 4-bit grid's weights take 5)."""
    return sum(layer.summary.params * (layer.summary.loihi_bits or 0) / 8 for layer in report.layers)


def why(reports: dict[str, NetworkReport]) -> str:
    """The size arithmetic behind the two compression figures, from the reports' own rows."""
    default = reports["8-bit first and last layers"]
    synapse_rows = [layer.summary for layer in default.layers if layer.cores is not None]
    first_last = synapse_rows[0].params + synapse_rows[-1].params
    share = first_last / default.weights
    return (
        f"Why the default misses 15x: after pruning, the first and last layers hold {first_last} of the "
        f"{default.weights} weights ({100 * share:.0f}%; the last, dense layer alone {synapse_rows[-1].params}), and "
        "they stay at 8 bits, so the network averages "
        f"{8 * default.packed_bytes / default.weights:.2f} bits per weight (float32 / that = "
        f"{32 * default.weights / (8 * default.packed_bytes):.1f}x) and pruning keeps "
        f"{default.weights} of {default.float32_bytes_before // 4} weights "
        f"({default.float32_bytes_before / 4 / default.weights:.2f}x): "
        f"{default.compression:.1f}x in all. With every layer at 4 bits the same pruning gives 32 / 4 = 8x times "
        f"that weight ratio: {reports['all layers 4-bit'].compression:.1f}x. QP-SNN keeps the first and last layers "
        "at full or 8-bit precision for accuracy; on this small net they hold most of the weights, so that choice "
        "decides whether 15x is reached."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=360, help="test samples whose activity is measured")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/report_pruned.md"))
    args = smoke.parse_args(parser, epochs=1, finetune_epochs=1, samples=20)

    start = time.time()
    encoding = Encoding(time_steps=16, seed=0)
    prune = PruneConfig((0.5,), "svs", finetune_epochs=args.finetune_epochs)
    plot_root = args.out.with_suffix("")
    reports, accuracies, sections = {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (first_last, slug) in CONFIGS.items():
            checkpoint = train_checkpoint(
                arch="conv",
                encoding=encoding,
                config=TrainConfig(epochs=args.epochs),
                quant=QuantConfig(4, "baseline", first_last_bits=first_last),
                prune=prune,
                progress=False,
            )
            net = Path(tmp) / f"{slug}.net"
            export_netx(checkpoint, net)
            report = report_network(net, checkpoint=checkpoint, samples=args.samples)
            plot_root.mkdir(parents=True, exist_ok=True)
            plots = write_report_plots(report, plot_root / slug, force=True)
            reports[name], accuracies[name] = report, checkpoint.metrics["fixed_point_test_accuracy"]
            headers, rows = report_table(report)
            print(f"{name}\n{format_table(headers, rows)}")
            sections.append(
                f"## {name}\n\n{format_markdown(headers, rows)}\n\n"
                + " ".join(f"![{p.stem}]({p.relative_to(args.out.parent)})" for p in plots)
                + "\n"
            )
    summary = [summary_row(name, reports[name], accuracies[name]) for name in CONFIGS]
    print(format_table(SUMMARY_HEADERS, summary))
    command = (
        f".venv/bin/python benchmarks/report_pruned.py --epochs {args.epochs} "
        f"--finetune-epochs {args.finetune_epochs} --samples {args.samples}"
    )
    text = (
        "# `report` on a 4-bit, 50%-pruned conv net: size vs float32, activity, Loihi 2 ESTIMATE\n\n"
        f"Made by `{command}` ({time.time() - start:.0f} s on 2 cores).\n\n"
        "conv(8, 3x3) -> conv(16, 3x3, stride 2) -> dense(10) on digits (1x8x8), T = 16, rate coding, seed 0; "
        f"4-bit baseline quantizer (QP-SNN Eqs 4-6), {args.epochs} epochs; SVS prunes 50% of the channels of both "
        f"convs (8 -> 4, 16 -> 8), {args.finetune_epochs} fine-tuning epochs, compaction; exported to NetX and "
        f"reported with its checkpoint (`report_network`), activity on the first {report.samples} test "
        "samples. Accuracy: the exported fixed-point network on all 360 test images.\n\n"
        + format_markdown(SUMMARY_HEADERS, summary)
        + f"\n\n{why(reports)}\n\n"
        "Cores, chips and energy are ESTIMATES (published Loihi 2 limits, some assumed from Loihi 1, and Loihi 1 "
        "per-operation energies), not measurements: see `lava_qpsnn/report/loihi2.py`. SynOps count every stored "
        "synapse an input spike drives, zero weights included; see `lava_qpsnn/report/network/`.\n\n"
        + "\n".join(sections)
    )
    args.out.write_text(text)
    print(f"wrote {args.out} and the PNGs in {plot_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
