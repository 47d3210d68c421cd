"""Training-step time with QP-SNN quantization hooks vs the same slayer network without hooks.

One run, same data, same model shapes; steps of the two variants are interleaved so that
machine load affects both alike. Writes the ratio (goal: at most 1.3x) to
benchmarks/results/qat_speed.md.

    .venv/bin/python benchmarks/qat_speed.py [--steps 200] [--out benchmarks/results/qat_speed.md]
    .venv/bin/python benchmarks/qat_speed.py --smoke    # seconds: 2 small steps (checks that it runs)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import smoke
import torch

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import load_dataset, rate_encode
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig


def without_hooks(net):
    for block in net.blocks:
        if getattr(block, "synapse", None) is not None:
            block.synapse._pre_hook_fx = None
    return net


def step_time(net, optimizer, loss_fn, x, y) -> float:
    start = time.perf_counter()
    loss = loss_fn(net(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def measure(arch: str, steps: int, batch: int, time_steps: int) -> dict[str, float]:
    from lava.lib.dl import slayer

    train_set, _ = load_dataset("digits")
    rng = np.random.default_rng(0)
    config = ModelConfig.from_arch(arch, (1, 8, 8), 10)
    torch.manual_seed(0)
    variants = {
        "no hooks": without_hooks(build_model(config)),
        "QP-SNN 2-bit ReScaW": quantize_model(build_model(config), QuantConfig(2, first_last_bits=None)),
    }
    optimizers = {k: torch.optim.Adam(v.parameters(), lr=1e-3) for k, v in variants.items()}
    loss_fn = slayer.loss.SpikeRate(true_rate=0.5, false_rate=0.05, reduction="sum")
    times = {k: [] for k in variants}
    for i in range(steps + 10):
        index = rng.choice(len(train_set), batch, replace=False)
        x = torch.from_numpy(rate_encode(train_set.images[index], time_steps, rng))
        y = torch.from_numpy(train_set.labels[index])
        for name, net in variants.items():
            elapsed = step_time(net, optimizers[name], loss_fn, x, y)
            if i >= 10:  # warm-up
                times[name].append(elapsed)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/qat_speed.md"))
    args = smoke.parse_args(parser, steps=2, batch=8, time_steps=4)
    lines = [
        "# QAT training-step time",
        "",
        f"Made by `.venv/bin/python benchmarks/qat_speed.py --steps {args.steps}` on {torch.get_num_threads()} "
        f"CPU threads: median of {args.steps} interleaved steps (forward, backward, Adam), batch {args.batch}, "
        f"T = {args.time_steps}, digits. 'no hooks' = the same slayer network with `pre_hook_fx=None`.",
        "",
        "| model | no hooks (ms/step) | QP-SNN 2-bit ReScaW (ms/step) | ratio |",
        "|---|---|---|---|",
    ]
    for arch in ("mlp", "conv"):
        t = measure(arch, args.steps, args.batch, args.time_steps)
        plain, qat = t["no hooks"], t["QP-SNN 2-bit ReScaW"]
        lines.append(f"| {arch} | {1000 * plain:.2f} | {1000 * qat:.2f} | {qat / plain:.3f}x |")
        print(lines[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
