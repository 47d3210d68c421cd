"""``python -m netx_export model.pt [--out model.net] [--nir model.nir [--dt SECONDS]] [--force]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lava_qpsnn.cli.options import add_renamed
from lava_qpsnn.command import ArgumentParser, finite_float, option_strings, run_guarded
from lava_qpsnn.export.summary import format_summary, total_bytes
from lava_qpsnn.export.writer import export_netx
from lava_qpsnn.files import check_output_path
from lava_qpsnn.interchange import DEFAULT_DT, export_nir
from lava_qpsnn.netx import netx_call
from lava_qpsnn.training.checkpoint import load_checkpoint
from lava_qpsnn.training.distributed import launched_by_torchrun


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m netx_export",
        description="Write a lava-qpsnn checkpoint as a NetX HDF5 network that lava.lib.dl.netx loads.",
    )
    parser.add_argument("checkpoint", type=Path, help="model.pt written by 'python -m lava_qpsnn train'")
    parser.add_argument("-o", "--out", type=Path, help="output .net file (default: the checkpoint's name with .net)")
    parser.add_argument(
        "--nir",
        type=Path,
        metavar="OUT.nir",
        help="also write the exported network as a NIR graph (float parameters for other frameworks, "
        "the .net's integers in each node's metadata)",
    )
    parser.add_argument(
        "--dt",
        type=finite_float,
        default=DEFAULT_DT,
        help="with --nir: the time step in seconds that the NIR time constants assume (default %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    add_renamed(parser, "--output", "--out")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if launched_by_torchrun():
        print("netx_export: error: export runs in one process: run it without torchrun", file=sys.stderr)
        return 2
    return run_guarded("netx_export", lambda: _export(args), option_strings(parser))


def _export(args: argparse.Namespace) -> int:
    output = args.out or args.checkpoint.with_suffix(".net")
    if args.nir is not None:  # before any work: an existing graph must not stop the export half-way
        check_output_path(args.nir, force=args.force)
    checkpoint = load_checkpoint(args.checkpoint)
    rows = export_netx(checkpoint, output, force=args.force)
    print(format_summary(rows))
    packed, dense = total_bytes(rows)
    unpruned = sum(r.float32_bytes_before for r in rows)
    before = "" if unpruned == dense else f"; {unpruned / packed:.1f}x smaller than float32 before pruning"
    print(
        f"wrote {output} ({output.stat().st_size / 1024:.1f} KB): packed weights "
        f"{packed / 1024:.2f} KB vs {dense / 1024:.2f} KB float32 ({dense / packed:.1f}x smaller{before})"
    )
    print(f"load it in netx as the trained network: {netx_call(checkpoint.encoding, output.name)}")
    if args.nir is not None:
        export_nir(checkpoint, output, args.nir, dt=args.dt, force=args.force)
        size = args.nir.stat().st_size / 1024
        print(f"wrote {args.nir} ({size:.1f} KB): the same network as a NIR graph, time step dt {args.dt:g} s")
    return 0
