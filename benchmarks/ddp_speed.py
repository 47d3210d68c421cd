"""Wall time of one training epoch on digits: one process against torchrun with 2 processes (gloo, CPU).

The same global batch, seed and network in every configuration; the epoch is timed inside the
run, from a barrier before ``train`` to its end (start-up, data loading and the final test
evaluation excluded), best of ``--repeats``. Configurations: 1 process with 1 and with 2 torch
threads, and 2 processes (torchrun) with 1 thread each. Writes
``benchmarks/results/ddp_speed-ARCH-bBATCH.md``.

    .venv/bin/python benchmarks/ddp_speed.py [--arch conv] [--time-steps 16] [--batch-size 32] [--repeats 3]
    .venv/bin/python benchmarks/ddp_speed.py --smoke    # seconds: a tiny MLP, one repeat (checks that it runs)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import smoke
import torch

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Dataset, Encoding, load_dataset
from lava_qpsnn.table import format_markdown
from lava_qpsnn.training import distributed
from lava_qpsnn.training.loop import TrainConfig, train
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig


def _epoch(arch: str, time_steps: int, batch: int, out: Path) -> None:
    """One rank: build, quantize to 4 bits, train one epoch; rank 0 writes the seconds it took."""
    with distributed.session("cpu"):
        train_set, test_set = load_dataset("digits")
        torch.manual_seed(0)
        model = build_model(ModelConfig.from_arch(arch, train_set.images.shape[1:], train_set.num_classes))
        quantize_model(model, QuantConfig(4))
        config = TrainConfig(epochs=1, batch_size=batch, monitor_samples=0)
        test_set = Dataset(test_set.images[:1], test_set.labels[:1], test_set.num_classes)  # its accuracy: ~free
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        start = time.perf_counter()
        train(model, train_set, test_set, Encoding(time_steps=time_steps), config, progress=False)
        seconds = time.perf_counter() - start
        if distributed.is_main():
            out.write_text(json.dumps({"seconds": seconds, "samples": len(train_set)}))


def _measure(command: list[str], threads: int, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(command, env=env, check=True, capture_output=True)
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="conv")
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rank-of", type=Path, help=argparse.SUPPRESS)  # internal: run one rank, write here
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/ddp_speed-ARCH-bBATCH.md")
    args = smoke.parse_args(parser, arch="16-10", time_steps=4, repeats=1)
    if args.rank_of is not None:
        _epoch(args.arch, args.time_steps, args.batch_size, args.rank_of)
        return 0
    out_file = args.out or Path(f"benchmarks/results/ddp_speed-{args.arch}-b{args.batch_size}.md")
    me = [__file__, "--arch", args.arch, "--time-steps", str(args.time_steps), "--batch-size", str(args.batch_size)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    configurations = [
        ("1 process, 1 thread", [sys.executable], 1),
        ("1 process, 2 threads", [sys.executable], 2),
        ("torchrun, 2 processes x 1 thread", torchrun, 1),
    ]
    if args.smoke:  # both launchers, one thread each
        configurations = [(name, launcher, threads) for name, launcher, threads in configurations if threads == 1]
    rows, base = [], None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "epoch.json"
        for name, launcher, threads in configurations:
            runs = [_measure([*launcher, *me, "--rank-of", str(out)], threads, out) for _ in range(args.repeats)]
            best = min(r["seconds"] for r in runs)
            base = base or best
            rows.append([name, f"{best:.2f}", f"{runs[0]['samples'] / best:.0f}", f"{base / best:.2f}x"])
            print(rows[-1], flush=True)
    lines = [
        "# One training epoch on digits: one process vs torchrun (CPU, gloo)",
        "",
        f"Command: `.venv/bin/python benchmarks/ddp_speed.py --arch {args.arch} --time-steps {args.time_steps} "
        f"--batch-size {args.batch_size} --repeats {args.repeats}`. Network `{args.arch}` with 4-bit weights, "
        f"T = {args.time_steps}, global batch {args.batch_size}, the same seed in every row; the epoch is timed "
        f"inside the run (best of {args.repeats}), start-up excluded. Machine: {os.cpu_count()} cores.",
        "",
        format_markdown(["configuration", "epoch (s)", "samples/s", "speed-up vs 1 thread"], rows),
        "",
    ]
    out_file.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
