"""Hostile .net files: N seeded mutants of an exported network, each read and simulated in a worker process.

The network is a randomly initialised conv net with a dense output layer, quantized to 4 bits
and exported by ``netx_export`` (no training, no data: offline). Mutants are truncations,
byte flips and structured h5py edits (``benchmarks/netx_mutants.py``), then the file with each of
its bytes inverted in turn. Counted: accepted (reads and simulates), refused (one
``NetxFileError`` line; grouped by reason), other exceptions, crashes of the worker (the HDF5 C
library) and hangs. Every accepted mutant is listed with the reason accepting it is right: the
file reads as the original network (the edit touched an entry netx never reads or left its
value unchanged; damage that leaves every value netx reads unchanged), or as another network netx and
Lava build and run (what it reads as is what they compute). Writes ``benchmarks/results/fuzz_netx.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_netx.py [--mutants 1200] [--seed 0] [--no-sweep]
    .venv/bin/python benchmarks/fuzz_netx.py --smoke    # seconds: 12 mutants, no sweep (checks that it runs)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import smoke
from netx_mutants import KINDS, byte_sweep, mutants, run_isolated

import lava_qpsnn  # noqa: F401  (Lava on Python 3.11)
from lava_qpsnn.data import Encoding
from lava_qpsnn.netx.metadata import NetInfo, read_net_info
from lava_qpsnn.table import format_markdown
from lava_qpsnn.training.checkpoint import Checkpoint
from lava_qpsnn.training.models import build_model
from lava_qpsnn.training.quantize import QuantConfig, quantize_model
from lava_qpsnn.training.specs import ModelConfig
from netx_export import export_netx

# refusal message fragment -> reason, first match wins
REASONS = [
    ("cannot be read as HDF5", "not readable as HDF5 (truncated or damaged structure)"),
    ("is not an HDF5 file", "not an HDF5 file (signature damaged)"),
    ("unreadable", "an HDF5 read error inside the file"),
    ("cannot be listed", "an HDF5 read error inside the file"),
    ("metadata", "metadata missing, damaged or not matching the network"),
    ("NaN or infinite", "NaN or infinity"),
    ("of type", "a string, boolean or compound value where numbers belong, or a number for a name"),
    ("has an empty", "an empty value"),
    ("expected integers", "a fraction where netx needs an integer"),
    ("expected one", "a vector where a scalar belongs (or the reverse)"),
    ("where netx expects", "a group where a dataset belongs (or the reverse)"),
    ("has no '", "a required entry missing"),
    ("ASCII name", "an empty or non-ASCII name"),
    ("does not support", "a layer or neuron type netx cannot build or we do not simulate"),
    ("without gaps", "layer numbering with gaps"),
    ("no /layer/0", "no /layer/0 group"),
    ("gradedSpike", "graded spikes, which netx makes binary"),
    ("messageBits", "messageBits, which breaks netx's build"),
    (": expected", "a value outside Lava's or netx's range"),
]


def _network(folder: Path) -> Path:
    net = build_model(ModelConfig.from_arch("4c3-8c3s2-10", (1, 8, 8), 10))
    quantize_model(net, QuantConfig(4))
    checkpoint = Checkpoint.of(net, dataset="digits", encoding=Encoding(time_steps=8, seed=0))
    export_netx(checkpoint, folder / "model.net")
    return folder / "model.net"


def _reason(result: str) -> str:
    if result.startswith("refused: "):
        return next((label for fragment, label in REASONS if fragment in result), "the layer chain or a shape mismatch")
    return result.split(":")[0]


def _differences(a, b) -> list[str]:
    """Names of the fields in which two read networks differ."""
    diffs = []
    for i, (x, y) in enumerate(zip(a.layers, b.layers, strict=False)):
        for field in ("shape", "weight", "weight_exp", "delay", "stride", "padding", "dilation", "groups"):
            u, v = getattr(x, field, None), getattr(y, field, None)
            if type(u) is not type(v) or (u is not None and not np.array_equal(u, v)):
                diffs.append(f"layer {i} {field}")
        nx, ny = getattr(x, "neuron", None), getattr(y, "neuron", None)
        if (nx is None) != (ny is None) or (
            nx is not None
            and not all(np.array_equal(getattr(nx, k), getattr(ny, k)) for k in ("vth", "du", "dv", "bias"))
        ):
            diffs.append(f"layer {i} neuron")
    if len(a.layers) != len(b.layers):
        diffs.append("number of layers")
    return diffs


def _why(original: NetInfo, path: Path, same: str) -> str:
    """Why accepting the file at ``path`` is right, from how it reads compared with the original."""
    info = read_net_info(path)
    metadata = [key for key in ("dataset", "encoding", "num_classes") if getattr(info, key) != getattr(original, key)]
    diffs = _differences(original.network, info.network) + [f"metadata {key}" for key in metadata]
    if not diffs:
        return f"reads as the original network: {same}"
    return f"another network netx and Lava build and run as read ({', '.join(diffs)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sweep", dest="sweep", action="store_false", help="skip the every-byte sweep")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fuzz_netx.md"))
    args = smoke.parse_args(parser, mutants=12, sweep=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = _network(Path(tmp))
        original = read_net_info(path)
        batch = list(mutants(path, args.mutants, args.seed)) + (list(byte_sweep(path)) if args.sweep else [])
        start = time.perf_counter()
        results = list(run_isolated(batch, path.name))
        seconds = time.perf_counter() - start
        accepted_edits: dict[tuple[str, str], Counter] = defaultdict(Counter)
        accepted_damage: Counter = Counter()
        scratch = Path(tmp) / "accepted.net"
        for mutant, result in results:
            if result != "accepted":
                continue
            scratch.write_bytes(mutant.data)
            if mutant.kind == "edit":
                target, change = mutant.description.removeprefix("edit ").split(": ", 1)
                accepted_edits[target, _why(original, scratch, "an entry netx never reads, or the same value")][
                    change.split(", shape")[0]
                ] += 1
            else:
                accepted_damage[mutant.kind, _why(original, scratch, "every value netx reads is unchanged")] += 1
    by_kind = Counter((mutant.kind, result.split(":")[0]) for mutant, result in results)
    reasons = Counter(_reason(result) for _, result in results if result.startswith("refused: "))
    outcomes = ["accepted", "refused", "exception", "crash", "hang"]
    lines = [
        "# Hostile .net files: outcomes of seeded mutants",
        "",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_netx.py --mutants {args.mutants} "
        f"--seed {args.seed}{'' if args.sweep else ' --no-sweep'}` ({seconds:.0f} s on 2 shared cores). "
        "Network: a randomly initialised 4-bit conv net 4c3-8c3s2-10 (input, conv, conv, flatten, dense) "
        "exported by netx_export.",
        "",
        format_markdown(
            ["mutation", *outcomes],
            [[kind, *(by_kind[kind, outcome] for outcome in outcomes)] for kind in KINDS]
            + [["total", *(sum(by_kind[k, outcome] for k in KINDS) for outcome in outcomes)]]
            + ([["every byte inverted", *(by_kind["sweep", outcome] for outcome in outcomes)]] if args.sweep else []),
        ),
        "",
        "Refused, by reason:",
        "",
        format_markdown(["reason", "mutants"], [[reason, n] for reason, n in reasons.most_common()]),
        "",
        "Accepted damage (flips, sweep) and why accepting it is right:",
        "",
        format_markdown(
            ["mutation", "why", "mutants"], [[kind, why, n] for (kind, why), n in sorted(accepted_damage.items())]
        ),
        "",
        "Accepted structured edits and why accepting them is right:",
        "",
        format_markdown(
            ["entry", "edits (mutants)", "why", "mutants"],
            [
                [target, ", ".join(f"{change} ({n})" for change, n in sorted(changes.items())), why, changes.total()]
                for (target, why), changes in sorted(accepted_edits.items())
            ],
        ),
        "",
    ]
    problems = [(m.description, r) for m, r in results if r.split(":")[0] in ("exception", "crash", "hang")]
    if problems:
        lines += ["Exceptions, crashes and hangs:", ""] + [f"- {d}: {r}" for d, r in problems] + [""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
