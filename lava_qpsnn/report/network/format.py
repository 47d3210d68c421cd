"""The report as a table and terminal text."""

from __future__ import annotations

from ...export.summary import SUMMARY_HEADERS, summary_rows
from ...loihi import STATE_LIMIT
from ...table import format_table
from ..loihi2 import ENERGIES, LIMITS, SOURCES
from .result import ESTIMATE_NOTE, LayerReport, NetworkReport

__all__ = ["report_table", "format_report"]


def report_table(report: NetworkReport) -> tuple[list[str], list[list[object]]]:
    """Headers and rows (with a total line): the exporter's table plus compression, activity and core columns."""
    before = " before pruning" if report.pruned else ""
    headers = [
        *SUMMARY_HEADERS,
        f"x float32{before}",
        "neurons",
        "synapses",
        "spikes",
        "SynOps",
        "cores (limit)",
        "max |u|",
        "max |v|",
    ]
    extra = [_extra_columns(layer) for layer in report.layers]
    extra.append(
        [
            f"{report.compression:.1f}",
            report.neurons,
            report.synapses,
            f"{report.spikes_per_sample:.1f}",
            f"{report.synops_per_sample:.1f}",
            report.cores,
            "",
            "",
        ]
    )
    rows = [[*base, *more] for base, more in zip(summary_rows([r.summary for r in report.layers]), extra, strict=True)]
    return headers, rows


def format_report(report: NetworkReport) -> str:
    """The report as terminal text: :func:`report_table`, then totals, ESTIMATES and the figures they use."""
    before = " before pruning" if report.pruned else ""
    energy = report.energy
    lines = [
        format_table(*report_table(report)),
        f"spikes and SynOps per sample: mean over the first {report.samples} test samples of {report.dataset} "
        f"({report.encoding.describe()}; accuracy on them {100 * report.accuracy:.2f}%). SynOps: synapses driven by "
        "input spikes, every stored synapse counted (zero weights too); spikes: each layer's output spikes"
        + (_GRADED_NOTE if report.encoding.graded else ""),
        f"max |u|, max |v|: the largest current and voltage reached on them (% of Lava's 24-bit limit 2^23 = "
        f"{STATE_LIMIT:,}; Lava is exact below it)",
        f"packed weights {report.packed_bytes / 1024:.2f} KB: {report.compression:.1f}x smaller than float32{before} "
        f"({report.float32_bytes_before / 1024:.2f} KB)"
        + (f", {report.float32_bytes / report.packed_bytes:.1f}x than float32 after pruning" if report.pruned else ""),
        f"Loihi 2 ESTIMATE: {report.cores} neuro cores, {report.chips} chip(s)",
        f"energy ESTIMATE per inference: {energy.joules * 1e9:.2f} nJ = SynOps {energy.synop_joules * 1e9:.2f} nJ "
        f"+ neuron updates {energy.neuron_joules * 1e9:.2f} nJ + spikes {energy.spike_joules * 1e9:.2f} nJ",
        f"{ESTIMATE_NOTE}. Figures used:",
        format_table(
            ["figure", "value", "source", "assumption"],
            [[c.name, f"{c.value:,} {c.unit}", c.source, c.assumption or "-"] for c in LIMITS + ENERGIES],
        ),
        *(f"[{key}] {reference}" for key, reference in SOURCES.items()),
        f"netx builds this file as the trained network with {report.netx_call} (netx's defaults never reset "
        "a layer between samples and give another network)",
    ]
    return "\n".join(lines)


_GRADED_NOTE = (
    ". Direct encoding: the input row counts graded events (non-zero pixels, each step); a graded event drives "
    "its fan-out like a spike, so it counts as one SynOp per synapse, and the energy estimate prices it as a "
    "spike's, although it carries a multi-bit payload that Loihi multiplies by each weight"
)


def _extra_columns(layer: LayerReport) -> list[object]:
    compression = "-" if layer.compression is None else f"{layer.compression:.1f}"
    spikes = "-" if layer.spikes_per_sample is None else f"{layer.spikes_per_sample:.1f}"
    synops = f"{layer.synops_per_sample:.1f}" if layer.cores else "-"
    cores = f"{layer.cores.cores} ({layer.cores.limited_by})" if layer.cores else "-"
    states = [_of_limit(value) for value in ((layer.peak.current, layer.peak.voltage) if layer.peak else (None, None))]
    return [compression, layer.neurons or "-", layer.synapses or "-", spikes, synops, cores, *states]


def _of_limit(value: int | None) -> str:
    return "-" if value is None else f"{value} ({100 * value / STATE_LIMIT:.1f}%)"
