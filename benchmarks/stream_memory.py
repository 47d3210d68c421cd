"""Time and peak memory of evaluating 10,000 28x28 samples through the simulator, streamed in batches.

Network: ``32c3-p2-64c3s2-10`` on 1 x 28 x 28 at T = 16 (32 x 28 x 28 conv, spike pooling,
64 x 7 x 7 conv, dense 10), 8-bit weights, trained one epoch on 80% of the digits training
images upsampled to 28 x 28 (bilinear) and exported through the library. Its test split
(data set ``digits28``, registered by this script) is 10,000 images: the 360 digits test
images upsampled the same way, cycled, each shifted by a seeded random offset of up to
2 pixels in each direction. Training never reads it.

Every measurement runs in a fresh process and reports that process's peak resident memory,
``VmHWM`` of ``/proc/self/status`` (not ``ru_maxrss``, which Linux carries over from the parent
across fork and exec, so a child would inherit the training's peak): ``floor`` imports
everything, loads the data and reads the file (what any evaluation pays before its first
sample); ``sim N`` is
``evaluate(net, samples=N)`` with the default batch size; ``lava`` times a short Lava run
(fixed_pt, the first samples; start-up excluded as ``eval --backend lava`` measures it) and
checks its spikes against the simulator's; ``slayer`` runs the PyTorch fixed-point model
(what the checkpoint given to ``eval`` is compared with) on the first samples and checks them too.
Writes ``benchmarks/results/stream_memory.md``. ``--smoke`` does the same with a tiny network at T = 4
on 100 test images and one simulator run, in seconds (it checks that the script runs).

    .venv/bin/python benchmarks/stream_memory.py [--threads 1] [--samples 10000] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import smoke
import torch
from torch.nn import functional as F

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Dataset, Encoding, load_dataset, register_dataset, stream_test_split
from lava_qpsnn.table import format_markdown

SHIFT = 2


@dataclass(frozen=True)
class Setting:
    arch: str
    steps: int  # time steps
    test_size: int  # images of the digits28 test split
    lava_samples: int  # run in Lava
    slayer_samples: int  # run through the PyTorch fixed-point model


FULL = Setting("32c3-p2-64c3s2-10", 16, 10_000, 6, 256)
SMOKE = Setting("4c3-p2-8c3s2-10", 6, 100, 2, 16)


def _upsampled(images: np.ndarray) -> np.ndarray:
    x = F.interpolate(torch.from_numpy(images), size=(28, 28), mode="bilinear", align_corners=False)
    return x.clamp(0, 1).numpy().astype(np.float32)


def digits28(test_size: int) -> tuple[Dataset, Dataset]:
    """The digits upsampled to 28 x 28; the test split: ``test_size`` shifted copies of the 360 test images."""
    train, test = load_dataset("digits")
    rng = np.random.default_rng(0)
    index = np.arange(test_size) % len(test)
    shifts = rng.integers(-SHIFT, SHIFT + 1, size=(test_size, 2))
    base = _upsampled(test.images)
    images = np.stack([np.roll(base[i], tuple(s), axis=(1, 2)) for i, s in zip(index, shifts, strict=True)])
    return Dataset(_upsampled(train.images), train.labels, 10), Dataset(images, test.labels[index], 10)


def build(folder: Path, setting: Setting) -> tuple[Path, Path, float]:
    """Train (1 epoch, validation split: the test split is not read) and export; returns files and seconds."""
    from lava_qpsnn.pipeline import train_checkpoint
    from lava_qpsnn.training.checkpoint import save_checkpoint
    from lava_qpsnn.training.loop import TrainConfig
    from lava_qpsnn.training.quantize import QuantConfig
    from netx_export import export_netx

    start = time.perf_counter()
    checkpoint = train_checkpoint(
        dataset="digits28",
        arch=setting.arch,
        encoding=Encoding(time_steps=setting.steps, seed=0),
        config=TrainConfig(epochs=1, init_gain=1.0, validation=0.2),
        quant=QuantConfig(8),
        progress=False,
    )
    pt, net = folder / "model.pt", folder / "model.net"
    save_checkpoint(checkpoint, pt)
    export_netx(checkpoint, net)
    return pt, net, time.perf_counter() - start


def measure(kind: str, pt: Path, net: Path, samples: int, steps: int) -> dict:
    """One measurement in this process (see the module docstring); ends with its peak RSS."""
    from lava_qpsnn.evaluation import evaluate
    from lava_qpsnn.export.fixed_point import fixed_point_model
    from lava_qpsnn.lava.run import run_lava
    from lava_qpsnn.lava.sizing import measure_rate
    from lava_qpsnn.netx import read_netx
    from lava_qpsnn.sim import default_batch_size, simulate
    from lava_qpsnn.training.checkpoint import load_checkpoint
    from lava_qpsnn.training.loop import output_spikes

    network = read_netx(net)
    stream = stream_test_split(load_dataset("digits28")[1], Encoding(time_steps=steps, seed=0))
    result: dict = {"kind": kind, "samples": samples}
    if kind == "sim":
        start = time.perf_counter()
        evaluation = evaluate(net, samples=samples, progress=False)
        result.update(
            wall=time.perf_counter() - start,
            seconds=evaluation.seconds,
            accuracy=evaluation.accuracy,
            batch=default_batch_size(network, steps),
        )
    elif kind == "lava":
        spikes = stream.encode(0, samples)
        outputs = []

        def probe(n, chunk, on_chunk):
            outputs.append(run_lava(net, spikes[:n], samples_per_run=chunk, progress=False, on_chunk=on_chunk))

        rate = measure_rate(probe, samples)
        result.update(seconds=rate.per_sample * samples, startup=rate.startup)
        result["mismatches"] = int((outputs[0] != simulate(network, spikes)).sum())
        result["spikes"] = int(outputs[0].sum())
    elif kind == "slayer":
        model = fixed_point_model(load_checkpoint(pt))
        spikes = stream.encode(0, samples)
        output_spikes(model, spikes[:8])  # warm-up
        start = time.perf_counter()
        out = output_spikes(model, spikes, batch_size=default_batch_size(network, steps))
        result["seconds"] = time.perf_counter() - start
        result["mismatches"] = int((out != simulate(network, spikes)).sum())
        result["spikes"] = int(out.sum())
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux ``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark needs Linux")


def child(kind: str, pt: Path, net: Path, samples: int, threads: int, tiny: list[str]) -> dict:
    """``measure`` in a fresh process; ``tiny``: ``--smoke`` and ``--out`` for a smoke run, else nothing."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = [sys.executable, __file__, "--measure", kind, str(pt), str(net), str(samples), "--threads", str(threads)]
    args += tiny
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise RuntimeError(f"{kind} {samples} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def report(
    results: list[dict], setting: Setting, command: str, threads: int, build_seconds: float, loads: tuple[str, str]
) -> str:
    rows = []
    for r in results:
        if r["kind"] == "floor":
            rows.append(["floor: imports, data, file", "-", "-", "-", f"{r['peak_rss_mb']:,.0f}"])
            continue
        rate = r["samples"] * setting.steps / r["seconds"]
        name = {"sim": "simulator (evaluate)", "lava": "Lava fixed_pt", "slayer": "slayer fixed-point model"}[r["kind"]]
        rows.append([name, f"{r['samples']:,}", f"{r['seconds']:.1f}", f"{rate:,.0f}", f"{r['peak_rss_mb']:,.0f}"])
    sim = [r for r in results if r["kind"] == "sim"]
    checks = [r for r in results if r["kind"] in ("lava", "slayer")]
    lines = [
        "# Streaming evaluation: time and peak memory",
        "",
        f"Made by `{command}`: torch on {threads} thread(s), {os.cpu_count()} cores shared with other jobs "
        f"(load average {loads[0]} at the start, {loads[1]} at the end: timings are slower than on an idle "
        "machine; memory is not affected).",
        "",
        f"Network `{setting.arch}` on 1 x 28 x 28, T = {setting.steps}, 8-bit weights, trained one epoch "
        f"({build_seconds:.0f} s with export) on the digits training images upsampled to 28 x 28. Test split: "
        f"{setting.test_size:,} images, the 360 digits test images upsampled and shifted by up to {SHIFT} pixels "
        "(synthetic, see the script). Each row is a fresh process; peak RSS is its `VmHWM`. Seconds: the "
        "backend's own time (simulator: `Evaluation.seconds`; Lava: the marginal time per sample measured "
        "after its start-up, times the samples; slayer: the PyTorch fixed-point model's forward passes).",
        "",
        *format_markdown(["run", "samples", "seconds", "sample-steps/s", "peak RSS MB"], rows).splitlines(),
        "",
        *(
            f"- simulator, {r['samples']:,} samples: batches of {r['batch']} samples (default), "
            f"{r['wall']:.1f} s wall time including encoding, accuracy {100 * r['accuracy']:.2f}%"
            for r in sim
        ),
        *(
            f"- {r['kind']}, first {r['samples']} samples: {r['spikes']:,} output spikes, "
            f"{r['mismatches']} differ from the simulator's"
            + (f"; start-up {r['startup']:.1f} s" if "startup" in r else "")
            for r in checks
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every measurement")
    parser.add_argument("--samples", type=int, default=FULL.test_size, help="samples of the large simulator run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/stream_memory.md"))
    parser.add_argument("--measure", nargs=4, metavar=("KIND", "PT", "NET", "SAMPLES"), help=argparse.SUPPRESS)
    args = smoke.parse_args(parser, argv, samples=SMOKE.test_size)
    setting = SMOKE if args.smoke else FULL
    register_dataset("digits28", partial(digits28, setting.test_size))
    torch.set_num_threads(args.threads)
    if args.measure:
        kind, pt, net, samples = args.measure
        if kind == "floor":
            from lava_qpsnn.netx import read_netx

            read_netx(net)
            load_dataset("digits28")
            result = {"kind": kind, "peak_rss_mb": peak_rss_mb()}
        else:
            result = measure(kind, Path(pt), Path(net), int(samples), setting.steps)
        print(json.dumps(result))
        return 0
    loads = [_load()]
    with tempfile.TemporaryDirectory() as tmp:
        pt, net, build_seconds = build(Path(tmp), setting)
        sims = [args.samples] if args.smoke else [args.samples // 10, args.samples]
        runs = [("floor", 0), *(("sim", samples) for samples in sims)]
        runs += [("lava", setting.lava_samples), ("slayer", setting.slayer_samples)]
        tiny = ["--smoke", "--out", str(args.out)] if args.smoke else []
        results = []
        for kind, samples in runs:
            results.append(child(kind, pt, net, samples, args.threads, tiny))
            print(json.dumps(results[-1]), flush=True)
    loads.append(_load())
    command = " ".join(
        [".venv/bin/python", "benchmarks/stream_memory.py", *(argv if argv is not None else sys.argv[1:])]
    )
    text = report(results, setting, command, args.threads, build_seconds, tuple(loads))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0 if all(r.get("mismatches", 0) == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
