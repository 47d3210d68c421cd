"""The shipped MNIST model: train it, export it, and measure it with the library's own commands.

Each step is one command line run as a child process; its wall time and peak resident memory
(``os.wait4``) are recorded with what it printed, one JSON file per step under
``benchmarks/results/mnist_model/``. A finished step is not run again, so an interrupted run
continues; delete a step's JSON file to redo it, and every step after it is redone too (they
measure its output). A step's file may carry a ``note`` (for example
that it was timed outside this script); the table prints it. The table goes to ``benchmarks/results/mnist_model.md``.

    .venv/bin/python benchmarks/mnist_model.py [--models models/mnist]

Training uses every core PyTorch sees; the time of the ``train`` step is the
whole of training, pruning, fine-tuning and the accuracy passes that go with them.
``--smoke`` runs the same steps on a tiny digits network in seconds, its files in the output's
folder (it never reads MNIST: it checks that the script runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import smoke


@dataclass(frozen=True)
class Model:
    name: str  # of its files
    train: str  # the training command's arguments
    lava_samples: int  # test samples run in Lava
    report_samples: int  # test samples whose activity the report measures


MNIST = Model(
    "mnist-4bit-svs50",
    "train --dataset mnist --arch 32c3s2-64c3s2-10 --time-steps 8 --epochs 12 --bits 4 "
    "--prune 0.5 --criterion svs --finetune-epochs 6",
    200,
    1000,
)
SMOKE = Model(
    "digits-smoke",
    "train --dataset digits --arch 4c3-8c3s2-10 --time-steps 4 --epochs 1 --bits 4 "
    "--prune 0.5 --criterion svs --finetune-epochs 1",
    2,
    20,
)


def steps(model: Model, models: Path) -> dict[str, list[str]]:
    pt, net = models / f"{model.name}.pt", models / f"{model.name}.net"
    qpsnn = [sys.executable, "-m", "lava_qpsnn", "--no-progress"]
    lava = ["--backend", "lava", "--samples", str(model.lava_samples)]
    return {
        "train": [*qpsnn, *model.train.split(), "--out", str(pt), "--force"],
        "export": [sys.executable, "-m", "netx_export", str(pt), "-o", str(net), "--force"],
        "eval-sim": [*qpsnn, "eval", str(pt), str(net)],
        "eval-lava": [*qpsnn, "eval", str(pt), str(net), *lava],
        "report": [*qpsnn, "report", str(pt), str(net), "--samples", str(model.report_samples), "--json"],
    }


def run_step(command: list[str]) -> dict:
    """Run ``command``; its wall time, peak RSS and output. A failing step stops the benchmark."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{output}\nstep failed: {' '.join(command)}\nfix what it printed above and run this script again")
    return {"command": command, "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "output": output}


def display(command: list[str]) -> str:
    """The command as a user types it (no interpreter path of this machine)."""
    return " ".join(["python" if part == sys.executable else part for part in command if part != "--no-progress"])


def summary(model: Model, results: dict[str, dict]) -> list[tuple[str, str]]:
    """The figures the model is judged by, read from the steps' outputs."""
    report = json.loads(results["report"]["output"])
    sim = results["eval-sim"]["output"]
    lava = results["eval-lava"]["output"]
    convs = [layer for layer in report["layers"] if layer["type"] == "conv"]
    kept = ", ".join(f"{layer['shape_before_pruning'][0]} -> {layer['shape'][0]}" for layer in convs)
    tested = int(re.search(r"(\d+) test samples", sim).group(1))
    accuracy = re.search(r"accuracy ([\d.]+%)", sim).group(1)
    agree = re.search(r"output spikes identical on ([\d.]+%)", sim).group(1)
    lava_acc = re.search(r"accuracy ([\d.]+%)", lava).group(1)
    lava_agree = re.search(r"output spikes identical on ([\d.]+%)", lava).group(1)
    train_line = [re.sub(r"; saved .*", "", line) for line in results["train"]["output"].strip().splitlines()]
    return [
        (
            f"simulator accuracy, all {tested:,} test images",
            f"{accuracy} (output spikes identical to PyTorch: {agree})",
        ),
        (
            f"Lava fixed_pt, first {model.lava_samples} test images",
            f"{lava_acc} (output spikes identical to PyTorch: {lava_agree})",
        ),
        ("packed weights", f"{report['totals']['packed_bytes'] / 1024:.2f} KB"),
        ("channels of the prunable conv layers", kept),
        ("training (train, prune, fine-tune)", f"{results['train']['seconds'] / 60:.1f} min"),
        ("peak memory of eval over the whole test set", f"{results['eval-sim']['peak_rss_mb']:,.0f} MiB"),
        ("what training printed", "<br>".join(train_line[-3:])),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="the model's folder (default models/mnist)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mnist_model.md"))
    args = smoke.parse_args(parser)
    folder = args.out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    model = SMOKE if args.smoke else MNIST
    models = args.models or (folder / "models" if args.smoke else Path("models/mnist"))
    models.mkdir(parents=True, exist_ok=True)
    results = {}
    redo = False  # once a step runs, the steps after it measure its new output
    for name, command in steps(model, models).items():
        path = folder / f"{name}.json"
        if redo or not path.exists():
            redo = True
            print(f"{name}: {display(command)}", flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**run_step(command), "command": display(command)}, indent=1))
            tmp.replace(path)
        results[name] = json.loads(path.read_text())
    lines = [
        "# The shipped MNIST model, measured",
        "",
        f"Made by `{' '.join(['.venv/bin/python benchmarks/mnist_model.py', *sys.argv[1:]])}` on a 2-core CPU; "
        f"`{models}` holds the files.",
        "",
        "| step | command | wall time | peak RSS (MiB) |",
        "|---|---|---|---|",
        *(
            f"| {name} | `{r['command']}` | {r['seconds']:.0f} s | {r['peak_rss_mb']:,.0f} |"
            for name, r in results.items()
        ),
        "",
        *(f"{name}: {r['note']}\n" for name, r in results.items() if "note" in r),
        "| figure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in summary(model, results)),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
