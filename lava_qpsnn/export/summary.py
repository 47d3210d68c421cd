"""The exporter's table: one :class:`LayerSummary` per layer (shape, weights, bits, threshold, sizes).

Sizes count what the chip stores: ``packed`` at the trained grid's bits per weight, beside
float32; a pruned network shows each layer before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..table import format_table
from ..training.checkpoint import Checkpoint
from ..training.models import build_model, weight_blocks

__all__ = [
    "LayerSummary",
    "format_summary",
    "summary_rows",
    "total_bytes",
    "signed_weight_bits",
    "with_unpruned_sizes",
    "describe_shape",
    "pool_synapses",
    "SUMMARY_HEADERS",
]


@dataclass(frozen=True)
class LayerSummary:
    """One row of the exporter's table."""

    index: int
    kind: str
    shape: tuple[int, ...]
    params: int = 0
    weight_bits: int | None = None
    loihi_bits: int | None = None
    threshold: int | None = None
    shape_before: tuple[int, ...] | None = None  # before pruning (None: not pruned)
    params_before: int | None = None

    @property
    def packed_bytes(self) -> float:
        """Weight memory at ``weight_bits`` (the trained grid's bits) per weight."""
        return self.params * (self.weight_bits or 0) / 8

    @property
    def float32_bytes(self) -> int:
        return self.params * 4

    @property
    def float32_bytes_before(self) -> int:
        """float32 weight memory of the layer before pruning."""
        return (self.params if self.params_before is None else self.params_before) * 4


def signed_weight_bits(weights: np.ndarray) -> int:
    """Signed bits per weight on Loihi: integers divided by their common power of two.

    This is what netx's ``optimize_weight_bits`` stores (the power of two becomes the
    weight exponent): e.g. [-20, 20, 6] -> [-10, 10, 3] -> 5 bits.
    """
    values = np.asarray(weights, dtype=np.int64)
    nonzero = np.abs(values[values != 0])
    if nonzero.size == 0:
        return 1
    shift = int(np.bitwise_and(np.bitwise_or.reduce(nonzero), -np.bitwise_or.reduce(nonzero))).bit_length() - 1
    mantissa = values >> shift
    return max(int(mantissa.max()).bit_length(), int(-mantissa.min() - 1).bit_length()) + 1


def with_unpruned_sizes(rows: list[LayerSummary], checkpoint: Checkpoint) -> list[LayerSummary]:
    """Add each layer's shape and weight count before pruning (when the checkpoint was pruned)."""
    if checkpoint.pruning is None:
        return rows
    unpruned = build_model(checkpoint.unpruned_model)
    before = [tuple(checkpoint.model.input_shape)] + [tuple(int(s) for s in b.shape) for b in unpruned.blocks]
    weighted = {id(b) for b in weight_blocks(unpruned)}
    params = [0] + [
        b.synapse.weight.numel() if id(b) in weighted else pool_synapses(b) if hasattr(b, "neuron") else 0
        for b in unpruned.blocks
    ]
    return [replace(r, shape_before=s, params_before=p) for r, s, p in zip(rows, before, params, strict=True)]


def total_bytes(rows: list[LayerSummary]) -> tuple[float, float]:
    """(packed, float32) weight bytes of the whole network."""
    return sum(r.packed_bytes for r in rows), sum(r.float32_bytes for r in rows)


def describe_shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "-"


def _before_after(before: object, after: object, text: Callable[[object], str] = str) -> str:
    return text(after) if before is None or before == after else f"{text(before)} -> {text(after)}"


def summary_rows(rows: list[LayerSummary]) -> list[list[object]]:
    """Rows for :func:`lava_qpsnn.table.format_table` with a total line."""
    out: list[list[object]] = []
    for r in rows:
        out.append(
            [
                r.index,
                r.kind,
                _before_after(r.shape_before, r.shape, describe_shape),
                _before_after(r.params_before, r.params),
                _dash(r.weight_bits),
                _dash(r.loihi_bits),
                _dash(r.threshold),
                f"{r.packed_bytes / 1024:.2f}",
                f"{r.float32_bytes / 1024:.2f}",
            ]
        )
    packed, dense = total_bytes(rows)
    params = _before_after(sum(r.params_before or 0 for r in rows) or None, sum(r.params for r in rows))
    out.append(["", "total", "", params, "", "", "", f"{packed / 1024:.2f}", f"{dense / 1024:.2f}"])
    return out


def _dash(value: object) -> object:
    return "-" if value is None else value


# "bits": the trained grid's bits per weight (what "packed" counts); "Loihi bits": signed
# bits of the stored integers after netx removes their power-of-two factor (b + 1 on the
# zero-free grid); "vth": the layer's integer threshold (vThMant).
SUMMARY_HEADERS = ["layer", "type", "shape", "weights", "bits", "Loihi bits", "vth", "packed KB", "float32 KB"]


def format_summary(rows: list[LayerSummary]) -> str:
    """The per-layer table :func:`export_netx` returns, as text (what ``python -m netx_export`` prints)."""
    return format_table(SUMMARY_HEADERS, summary_rows(rows))


def pool_synapses(block: torch.nn.Module) -> int:
    """Weights of a pooling layer as exported: one K x K window per channel."""
    return int(block.neuron.shape[0]) * int(block.synapse.kernel_size[0]) ** 2
