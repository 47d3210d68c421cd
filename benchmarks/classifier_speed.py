"""The Classifier process: one Lava run over the digits test set vs one Lava run per sample.

Trains an MLP (64-128-10 at T = 16, the preset ``mlp``) and a conv net (8-16 channels,
4-bit weights, 50% SVS-pruned), exports each, then

- runs ONE :class:`lava_qpsnn.lava.processes.Classifier` over all 360 test samples and checks its
  predictions against the PyTorch fixed-point model and the simulator (must be identical);
- runs all samples again as ONE ``run_lava`` (spikes encoded beforehand into a source
  ``RingBuffer`` -> netx -> sink: one run too, without the Classifier's processes);
- runs the first ``--per-sample`` samples one Lava run each (a source ``RingBuffer`` ->
  netx network -> sink, built and compiled per sample: what a user writes by hand), checks
  they give the same predictions, and compares seconds per sample.

Writes ``benchmarks/results/classifier_speed.md``. ``--smoke`` trains each network one epoch and runs
20 test samples (seconds; it checks that the script runs).

    .venv/bin/python benchmarks/classifier_speed.py [--per-sample 30] [--out benchmarks/results/classifier_speed.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import smoke

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding, encode_test_split, load_dataset
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.lava.deployment import deploy
from lava_qpsnn.lava.run import run_lava
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.sim import simulate
from lava_qpsnn.table import format_markdown
from lava_qpsnn.training.loop import TrainConfig, classify, output_spikes
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx


def networks(smoke: bool) -> dict[str, dict]:
    """The two networks' training settings; ``smoke``: one epoch of training and one of fine-tuning."""
    mlp_epochs, conv_epochs, finetune_epochs = (1, 1, 1) if smoke else (20, 8, 3)
    return {
        "MLP 64-128-10": dict(arch="mlp", config=TrainConfig(epochs=mlp_epochs)),
        "conv 8-16, 4-bit, 50% SVS-pruned": dict(
            arch="conv",
            config=TrainConfig(epochs=conv_epochs),
            quant=QuantConfig(4, "baseline"),
            prune=PruneConfig((0.5,), "svs", finetune_epochs=finetune_epochs),
        ),
    }


def measure(name: str, spec: dict, folder: Path, samples: int | None, per_sample: int) -> list[str]:
    checkpoint = train_checkpoint(encoding=Encoding(time_steps=16), progress=False, **spec)
    net = folder / f"{spec['arch']}.net"
    export_netx(checkpoint, net)
    _, test = load_dataset("digits")
    spikes = encode_test_split(test, checkpoint.encoding, samples)

    one_run = deploy(net, samples=samples, progress=False)
    pytorch = classify(output_spikes(fixed_point_model(checkpoint), spikes))
    simulator = classify(simulate(net, spikes))
    assert (one_run.predictions == pytorch).all() and (one_run.predictions == simulator).all(), name

    start = time.perf_counter()
    buffered = classify(run_lava(net, spikes, progress=False))
    buffered_seconds = (time.perf_counter() - start) / len(spikes)
    assert (buffered == one_run.predictions).all(), name

    start = time.perf_counter()
    separate = np.array([classify(run_lava(net, spikes[i : i + 1], progress=False))[0] for i in range(per_sample)])
    separate_seconds = (time.perf_counter() - start) / per_sample
    assert (separate == one_run.predictions[:per_sample]).all(), name
    one_run_seconds = one_run.seconds / one_run.samples
    print(f"{name}: {one_run_seconds * 1e3:.1f} ms/sample in one run, {separate_seconds * 1e3:.0f} ms per-sample")
    return [
        name,
        f"{100 * one_run.accuracy:.2f}%",
        f"{one_run.samples} / {one_run.samples}",
        f"{one_run.seconds:.1f} s ({one_run_seconds * 1e3:.1f} ms)",
        f"{buffered_seconds * len(spikes):.1f} s ({buffered_seconds * 1e3:.1f} ms)",
        f"{per_sample} x 1: {separate_seconds * per_sample:.1f} s ({separate_seconds * 1e3:.0f} ms)",
        f"{separate_seconds / one_run_seconds:.0f}x",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None, help="test samples of the one-run rows (default: all)")
    parser.add_argument("--per-sample", type=int, default=30, help="samples run one Lava run each")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/classifier_speed.md"))
    args = smoke.parse_args(parser, samples=20, per_sample=1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            measure(name, spec, Path(tmp), args.samples, args.per_sample) for name, spec in networks(args.smoke).items()
        ]
    headers = [
        "network",
        "Lava accuracy",
        "predictions = PyTorch fixed point = simulator",
        "one Classifier run (per sample)",
        "one run, spikes encoded beforehand (per sample)",
        "one run per sample (per sample)",
        "speed-up",
    ]
    tested = "all 360" if args.samples is None else f"the first {args.samples}"
    text = "\n".join(
        [
            "# Classifier process: one Lava run vs one run per sample",
            "",
            f"Command: `.venv/bin/python {' '.join(['benchmarks/classifier_speed.py', *sys.argv[1:]])}`",
            "",
            f"Digits test set ({tested} samples), T = 16, Loihi2SimCfg(select_tag='fixed_pt'), 2-core CPU. "
            "One run: `deploy()` = one `Classifier` (Encoder -> netx -> Readout), build + compile + run. "
            "Spikes encoded beforehand: `run_lava` on all samples' spikes at once (RingBuffer -> netx -> sink, "
            "one run). Per sample: `run_lava` on one sample's spikes, built and compiled each time. All three give "
            "the same predictions (asserted). The speed-up is per-sample runs / one Classifier run: it comes from "
            "running once, not from the Classifier's processes, which cost about as much as the buffered run.",
            "",
            format_markdown(headers, rows),
            "",
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
