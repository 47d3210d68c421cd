"""Direct against rate encoding on MNIST: accuracy, spikes, SynOps, training time and Lava time.

One network and recipe for every configuration: the preset ``32c3s2-64c3s2-10``, hidden weights
4-bit (first and last layer 8-bit), 50% of the conv channels pruned with SVS and fine-tuned. The
configurations differ only in the encoding: direct (6-bit payloads: an 8-bit first layer reading
8-bit payloads leaves Lava's 24-bit state) and rate. Each of the three spiking layers adds one step
of latency in slayer and in Lava, so a window of T steps gives T - 3 output steps: QP-SNN's
direct encoding at 2 and 4 steps (its networks have no such latency) is T = 5 and 7 here, beside
direct T = 4 (one output step) and rate coding at T = 8 and 16.

Every step is the library's own command, run as a child process and timed (``shipped_models.py``'s
``run_step``): train, export, eval in the simulator on all 10,000 test images, report on the
first 1,000 (spikes and SynOps per sample), eval in Lava on the first ``--lava-samples``. One JSON
file per configuration and step under ``benchmarks/results/encoding/``, so an interrupted run
continues; the table goes to ``benchmarks/results/encoding.md``.

    .venv/bin/python benchmarks/encoding.py [--epochs 4] [--finetune-epochs 2]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from runcache import cached_run
from shipped_models import display, run_step
from smoke import parse_args

ENCODINGS = {  # configuration -> its encoding options, in the order they run
    "direct-T4": "--encoding direct --payload-bits 6 --time-steps 4",
    "rate-T8": "--encoding rate --time-steps 8",
    "direct-T7": "--encoding direct --payload-bits 6 --time-steps 7",
    "direct-T5": "--encoding direct --payload-bits 6 --time-steps 5",
    "rate-T16": "--encoding rate --time-steps 16",
}
RECIPE = "--dataset mnist --arch 32c3s2-64c3s2-10 --bits 4"
PRUNING = "--prune 0.5 --criterion svs"
SMOKE = {  # with --smoke: a few seconds each, checks that every step runs and parses
    "encodings": {"direct-T3": "--encoding direct --payload-bits 4 --time-steps 3"},  # rate runs in the other tests
    "recipe": "--dataset digits --arch 4c3s2-10 --bits 4",
    "pruning": "--prune 0.5 --criterion svs --calibration-samples 64",
}


TIMED = ("eval-lava", "epoch")  # steps whose time goes into the table


def steps(
    folder: Path, encoding: str, recipe: str, pruning: str, epochs: str, lava_samples: int, report_samples: int
) -> dict:
    pt, net = folder / "model.pt", folder / "model.net"
    qpsnn = [sys.executable, "-m", "lava_qpsnn", "--no-progress"]
    return {
        "train": [*qpsnn, *f"train {recipe} {pruning} {encoding} {epochs}".split(), "--out", str(pt), "--force"],
        "export": [sys.executable, "-m", "netx_export", str(pt), "-o", str(net), "--force"],
        "eval-sim": [*qpsnn, "eval", str(pt), str(net), "--samples", "all"],
        "report": [*qpsnn, "report", str(pt), str(net), "--samples", str(report_samples), "--json"],
        "eval-lava": [*qpsnn, "eval", str(pt), str(net), "--backend", "lava", "--samples", str(lava_samples)],
        # timed on its own (the whole train command above mixes in pruning and fine-tuning)
        "epoch": [
            *qpsnn,
            *f"train {recipe} {encoding} --epochs 1".split(),
            "--out",
            str(folder / "epoch.pt"),
            "--force",
        ],
    }


def figures(results: dict[str, dict]) -> dict:
    """One configuration's row, read from what its steps printed."""
    sim, lava = results["eval-sim"]["output"], results["eval-lava"]["output"]
    report = json.loads(results["report"]["output"])
    lava_samples, lava_seconds = re.search(r"lava: (\d+) test samples, .*\(([\d.]+) s\)", lava).groups()
    depth = sum(layer["type"] in ("conv", "dense") for layer in report["layers"])
    return {
        "output_steps": report["time_steps"] - depth,
        "accuracy": re.search(r"accuracy ([\d.]+%)", sim).group(1),
        "identical": re.search(r"output spikes identical on ([\d.]+%)", lava).group(1),
        "spikes": report["totals"]["spikes_per_sample"],
        "synops": report["totals"]["synops_per_sample"],
        "epoch_minutes": results["epoch"]["seconds"] / 60,
        "lava_ms": 1000 * float(lava_seconds) / int(lava_samples),
        "lava_samples": int(lava_samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs (before pruning)")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--lava-samples", type=int, default=100, help="test samples run in Lava")
    parser.add_argument("--only", nargs="*", choices=ENCODINGS, help="configurations to run (default: all)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/encoding.md"))
    args = parse_args(parser, epochs=1, finetune_epochs=1, lava_samples=3)
    encodings, recipe, pruning = (
        (SMOKE["encodings"], SMOKE["recipe"], SMOKE["pruning"]) if args.smoke else (ENCODINGS, RECIPE, PRUNING)
    )
    epochs = f"--epochs {args.epochs} --finetune-epochs {args.finetune_epochs}"
    folder = args.out.with_suffix("")
    chosen = {name: encoding for name, encoding in encodings.items() if not args.only or name in args.only}
    commands = {
        name: steps(folder / name, encoding, recipe, pruning, epochs, args.lava_samples, 100 if args.smoke else 1000)
        for name, encoding in chosen.items()
    }
    results = {name: {} for name in chosen}
    for timed in (False, True):  # the timed steps last, so that no training overlaps them
        for name in chosen:
            for step, command in commands[name].items():
                if (step in TIMED) != timed:
                    continue
                print(f"{name} {step}: {display(command)}", flush=True)
                run = lambda c=command: {**run_step(c), "command": display(c)}  # noqa: E731
                results[name][step] = cached_run(folder / name, step, run)
    rows = {name: (figures(results[name]), results[name]["train"]["command"]) for name in chosen}
    lines = [
        "# Direct and rate encoding on MNIST",
        "",
        f"Made by `.venv/bin/python benchmarks/encoding.py --epochs {args.epochs} --finetune-epochs "
        f"{args.finetune_epochs} --lava-samples {args.lava_samples}` on a 2-core CPU. Network: `{recipe} {pruning}` "
        "(hidden weights 4-bit, first and last layer 8-bit, 50% of the conv channels pruned with SVS).",
        "",
        "| encoding | output steps | simulator accuracy, all test images | Lava = PyTorch output spikes | "
        "spikes / sample | SynOps / sample | training epoch | Lava per sample |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {f['output_steps']} | {f['accuracy']} | {f['identical']} of {f['lava_samples']} | "
            f"{f['spikes']:,.0f} | {f['synops']:,.0f} | {f['epoch_minutes']:.1f} min | "
            f"{f['lava_ms']:.0f} ms |"
            for name, (f, _) in rows.items()
        ),
        "",
        "Spikes per sample count the input's events too (a direct-encoded pixel that is not 0 is one graded "
        "event per step); SynOps count the synapses every event drives. A training epoch is timed on "
        "its own, one configuration after the other on an otherwise idle machine: the `train` command with "
        "`--epochs 1` and no pruning (data loading, one epoch over the 60,000 training "
        "images, its test passes). Lava time: Lava's fixed-point CPU models, one run for all samples.",
        "",
        "Commands:",
        "",
        *(f"- {name}: `{command}`" for name, (_, command) in rows.items()),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
