"""``import-nir``: a NIR graph from another framework (or exported here) as a checkpoint."""

from __future__ import annotations

import argparse
import warnings

from ..interchange import import_nir
from ..training.checkpoint import save_checkpoint

__all__ = ["cmd_import_nir"]


def cmd_import_nir(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:  # one line each, as the command's own output
        warnings.simplefilter("always", category=UserWarning)
        checkpoint = import_nir(args.graph, dataset=args.dataset, time_steps=args.time_steps, dt=args.dt)
    for warning in caught:
        print(f"lava_qpsnn: warning: {warning.message}")
    save_checkpoint(checkpoint, args.out, force=args.force)
    layers = ", ".join(type(layer).__name__.lower() for layer in checkpoint.model.layers)
    bits = "float (slayer's 8-bit weights)" if checkpoint.quant is None else f"quantized as {checkpoint.quant}"
    print(f"wrote {args.out}: {layers}; {bits}; data set {checkpoint.dataset}, T = {checkpoint.encoding.time_steps}")
    return 0
