"""The shipped models: train, export and measure each with the library's own commands, against its targets.

Each step is one command line run as a child process; its wall time and peak resident memory
(``os.wait4``) are recorded with what it printed, one JSON file per step under
``benchmarks/results/shipped_models/<model>/``. A finished step is not run again, so an
interrupted run continues. A step is redone when its file is deleted or its command changed
here, and every step after it is redone too (they measure its output). The table of every model measured so far goes to
``benchmarks/results/shipped_models.md``, each target marked met or missed.

    .venv/bin/python benchmarks/shipped_models.py [mnist] [fashion-mnist]

``--validation`` runs only the training command, on 90% of the training split, measuring its
accuracy on the held-out 10% (the test split is never read): how each model's settings were
chosen. Its results go to ``<model>-validation/``, one file per setting tried (named by a hash of
the training arguments), all of them listed in the table; the models are not touched. The
checkpoint goes to ``build/validation/<hash>/`` and is not kept; a validation run that was
interrupted continues where it stopped when the script is run again.

Training uses every core PyTorch sees; the time of the ``train`` step is the whole of training,
pruning, fine-tuning and the accuracy passes that go with them. ``--smoke`` runs the same steps
on a tiny digits network in seconds, its files in the output's folder (it never reads MNIST: it
checks that the script runs).
"""

from __future__ import annotations

import argparse
import hashlib
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
    name: str  # of its folder under models/
    files: str  # the stem of its .pt and .net
    train: str  # the training command's arguments
    min_accuracy: float  # on the whole test split, in the simulator, percent
    max_kilobytes: float  # of packed weights
    max_train_minutes: float | None  # of the train step, on 2 cores
    min_pruned: float = 0.5  # fraction of the prunable conv channels removed
    lava_samples: int = 200  # test samples run in Lava, output spikes identical on all
    report_samples: int = 1000  # test samples whose activity the report measures


VALIDATION_OUT = Path("build") / "validation"  # validation checkpoints (not kept), one folder per setting
DIRECT = "--encoding direct --payload-bits 6 --bits 4 --prune 0.5 --criterion svs"  # BatchNorm: bn in --arch
MODELS = {
    model.name: model
    for model in (
        Model(
            "mnist",
            "mnist-4bit-svs50",
            "train --dataset mnist --arch 32c3s2-64c3s2-10 --time-steps 8 --epochs 12 --bits 4 --prune 0.5 "
            "--criterion svs --finetune-epochs 6",
            min_accuracy=99.0,
            max_kilobytes=50,
            max_train_minutes=30,
        ),
        Model(
            "fashion-mnist",
            "fashion-mnist-4bit-svs50",
            f"train --dataset fashion-mnist --arch 32c3s2-64c3s2bn-10 {DIRECT} --time-steps 8 --epochs 12 "
            "--finetune-epochs 4",
            min_accuracy=90.0,
            max_kilobytes=100,
            max_train_minutes=None,
        ),
    )
}
SMOKE = Model(
    "digits-smoke",
    "digits-smoke",
    f"train --dataset digits --arch 4c3-8c3s2bn-10 {DIRECT} --time-steps 4 --epochs 1 --finetune-epochs 1",
    min_accuracy=0,
    max_kilobytes=100,
    max_train_minutes=5,
    lava_samples=2,
    report_samples=20,
)


def steps(model: Model, folder: Path) -> dict[str, list[str]]:
    pt, net = folder / f"{model.files}.pt", folder / f"{model.files}.net"
    qpsnn = [sys.executable, "-m", "lava_qpsnn", "--no-progress"]
    lava = ["--backend", "lava", "--samples", str(model.lava_samples)]
    return {
        "train": [*qpsnn, *model.train.split(), "--out", str(pt), "--force"],
        "export": [sys.executable, "-m", "netx_export", str(pt), "-o", str(net), "--force"],
        "eval-sim": [*qpsnn, "eval", str(pt), str(net)],
        "eval-lava": [*qpsnn, "eval", str(pt), str(net), *lava],
        "report": [*qpsnn, "report", str(pt), str(net), "--samples", str(model.report_samples), "--json"],
    }


def validation_folder(model: Model) -> Path:
    """Where a validation run of ``model``'s setting writes its checkpoint, relative to the working folder."""
    return VALIDATION_OUT / hashlib.sha1(model.train.encode()).hexdigest()[:10]


def validation_steps(model: Model) -> dict[str, list[str]]:
    """The training command alone, measured on a held-out 10% instead of the test split, under a name of its
    own per setting (the command is the record's key); an interrupted run of the setting is resumed."""
    folder = validation_folder(model)
    train = [*steps(model, folder)["train"], "--validation", "0.1"]
    resume = ["--resume"] if (folder / f"{model.files}.pt.partial").exists() else []
    return {f"train-{folder.name}": [*train, *resume]}


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
    shown = [part for part in command if part not in ("--no-progress", "--resume")]  # neither changes the result
    return " ".join("python" if part == sys.executable else part for part in shown)


def run_steps(commands: dict[str, list[str]], results: Path) -> dict[str, dict]:
    """Each step's record, running those not recorded in ``results`` or recorded with another command (and
    every step after one that ran)."""
    results.mkdir(parents=True, exist_ok=True)
    records, redo = {}, False  # once a step runs, the steps after it measure its new output
    for name, command in commands.items():
        path = results / f"{name}.json"
        record = json.loads(path.read_text()) if path.exists() else None
        if redo or record is None or record["command"] != display(command):
            redo = True
            print(f"{name}: {display(command)}", flush=True)
            record = {**run_step(command), "command": display(command)}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, indent=1))
            tmp.replace(path)
        records[name] = record
    return records


def printed_lines(record: dict) -> list[str]:
    """What a step printed, without the path it saved to (a path of the machine it ran on)."""
    return [re.sub(r"; saved .*", "", line) for line in record["output"].strip().splitlines()]


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def summary(model: Model, results: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows the model is judged by, read from the steps' outputs."""
    report = json.loads(results["report"]["output"])
    sim, lava = results["eval-sim"]["output"], results["eval-lava"]["output"]
    convs = [layer for layer in report["layers"] if layer["type"] == "conv"]
    kept = ", ".join(f"{layer['shape_before_pruning'][0]} -> {layer['shape'][0]}" for layer in convs)
    before = sum(layer["shape_before_pruning"][0] for layer in convs)
    pruned = 1 - sum(layer["shape"][0] for layer in convs) / before
    tested = int(re.search(r"(\d+) test samples", sim).group(1))
    accuracy = float(re.search(r"accuracy ([\d.]+)%", sim).group(1))
    agree = re.search(r"output spikes identical on ([\d.]+%)", sim).group(1)
    lava_acc = re.search(r"accuracy ([\d.]+%)", lava).group(1)
    lava_agree = float(re.search(r"output spikes identical on ([\d.]+)%", lava).group(1))
    kilobytes = report["totals"]["packed_bytes"] / 1024
    minutes = results["train"]["seconds"] / 60
    printed = printed_lines(results["train"])
    return [
        (
            f"simulator accuracy, all {tested:,} test images",
            f"{accuracy:.2f}% (output spikes identical to PyTorch: {agree})",
            f">= {model.min_accuracy}%: {verdict(accuracy >= model.min_accuracy)}",
        ),
        (
            f"Lava fixed_pt, first {model.lava_samples} test images",
            f"{lava_acc} (output spikes identical to PyTorch: {lava_agree:.2f}%)",
            f"identical on all: {verdict(lava_agree == 100)}",
        ),
        (
            "packed weights",
            f"{kilobytes:.2f} KB",
            f"<= {model.max_kilobytes:g} KB: {verdict(kilobytes <= model.max_kilobytes)}",
        ),
        (
            "channels of the conv layers",
            f"{kept} ({pruned:.0%} removed)",
            f">= {model.min_pruned:.0%}: {verdict(pruned >= model.min_pruned - 1e-9)}",
        ),
        (
            "training (train, prune, fine-tune)",
            f"{minutes:.1f} min",
            ""
            if model.max_train_minutes is None
            else f"<= {model.max_train_minutes:g} min: {verdict(minutes <= model.max_train_minutes)}",
        ),
        ("peak memory of eval over the whole test set", f"{results['eval-sim']['peak_rss_mb']:,.0f} MiB", ""),
        ("what training printed", "<br>".join(printed[-3:]), ""),
    ]


def model_table(model: Model, results: dict[str, dict], folder: Path) -> list[str]:
    return [
        f"## {model.name}",
        "",
        f"`{folder}` holds the files.",
        "",
        "| step | command | wall time | peak RSS (MiB) |",
        "|---|---|---|---|",
        *(
            f"| {name} | `{r['command']}` | {r['seconds']:.0f} s | {r['peak_rss_mb']:,.0f} |"
            for name, r in results.items()
        ),
        "",
        *(f"{name}: {r['note']}\n" for name, r in results.items() if "note" in r),
        "| figure | value | target |",
        "|---|---|---|",
        *(f"| {figure} | {value} | {target} |" for figure, value, target in summary(model, results)),
        "",
    ]


def validation_table(model: Model, tried: list[dict]) -> list[str]:
    """Every setting tried on the validation split, the shipped model's marked."""
    chosen = display(validation_steps(model).popitem()[1])
    lines = [f"## {model.name}: settings tried on the validation split", ""]
    for record in tried:
        took = record["note"] if "note" in record else f"{record['seconds'] / 60:.1f} min"
        mark = " (the shipped model's setting)" if record["command"] == chosen else ""
        lines += [f"`{record['command']}`{mark}: {took}", ""]
        lines += [f"    {line}" for line in printed_lines(record)] + [""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"of {', '.join(MODELS)} (default: all)")
    parser.add_argument("--validation", action="store_true", help="only train, measured on a held-out 10%%")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shipped_models.md"))
    args = smoke.parse_args(parser)
    if set(args.models) - set(MODELS):
        parser.error(f"no shipped model {sorted(set(args.models) - set(MODELS))}: choose from {', '.join(MODELS)}")
    results = args.out.with_suffix("")
    chosen = [SMOKE] if args.smoke else [MODELS[name] for name in args.models or MODELS]
    shown = {SMOKE: results / "models"} if args.smoke else {m: Path("models") / m.name for m in MODELS.values()}
    for model in chosen:
        if args.validation:
            validation_folder(model).mkdir(parents=True, exist_ok=True)
            run_steps(validation_steps(model), results / f"{model.name}-validation")
        else:
            shown[model].mkdir(parents=True, exist_ok=True)
            run_steps(steps(model, shown[model]), results / model.name)
    lines = [
        "# The shipped models, measured",
        "",
        "Made by `.venv/bin/python benchmarks/shipped_models.py [--validation] [MODEL ...]` on a 2-core CPU,",
        "nothing else running; each step's command is in its model's table.",
        "",
    ]
    for model, folder in shown.items():
        done = {name: results / model.name / f"{name}.json" for name in steps(model, folder)}
        if all(path.exists() for path in done.values()):
            lines += model_table(model, {name: json.loads(p.read_text()) for name, p in done.items()}, folder)
        tried = sorted((results / f"{model.name}-validation").glob("train*.json"))
        if tried:
            lines += validation_table(model, [json.loads(path.read_text()) for path in tried])
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
