"""The terminal report of a diagnosis."""

from __future__ import annotations

from collections.abc import Callable

from ...loihi import STATE_LIMIT
from ...table import format_table
from .result import EXACT_STAGES, Diagnosis, Problem

__all__ = ["format_diagnosis"]


def format_diagnosis(diagnosis: Diagnosis, advice: Callable[[Problem], str] = str) -> str:
    """The terminal report: per-layer table, accuracy per stage, divergences, problems and notes.

    ``advice`` writes a problem's line (a command line adds the options of its settings).
    """

    stages = diagnosis.stages
    names = [f"lava (first {diagnosis.lava_samples})" if s == "lava" else s for s in stages]
    headers = ["layer", "kind", "bits", "levels", *[f"{s} spikes" for s in names], "max |u|, |v| of 2^23"]
    rows = []
    for layer in diagnosis.layers:
        levels = "-" if layer.levels_used is None else f"{layer.levels_used}/{layer.levels_available}"
        peak = (
            "-"
            if layer.peak_current is None
            else f"{100 * max(layer.peak_current, layer.peak_voltage) / STATE_LIMIT:.1f}%"
        )
        rows.append(
            [
                layer.index,
                layer.kind,
                "-" if layer.bits is None else layer.bits,
                levels,
                *[f"{layer.spikes[s]:,.1f}" for s in stages],
                peak,
            ]
        )
    lava = f", Lava on the first {diagnosis.lava_samples}" if "lava" in stages else ""
    lines = [
        f"diagnosis of {diagnosis.checkpoint}"
        + (f" and {diagnosis.net}" if diagnosis.net else "")
        + f": {diagnosis.samples} test samples{lava}; spikes per sample",
        format_table(headers, rows),
        "",
        "accuracy: "
        + ", ".join(f"{s} {100 * diagnosis.accuracy[s]:.2f}%" for s in stages if s != "lava")
        + (f"; lava {100 * diagnosis.accuracy['lava']:.2f}% of {diagnosis.lava_samples}" if "lava" in stages else ""),
    ]
    exact = [s for s in stages if s in EXACT_STAGES]
    if len(exact) > 1 and not any(d.exact for d in diagnosis.divergences):
        lines.append(f"{', '.join(exact)}: identical spikes in every layer")
    lines += [f"problem: {advice(p)}" for p in diagnosis.problems]
    lines += [f"note: {n}" for n in diagnosis.notes]
    lines.append("healthy" if diagnosis.healthy else f"{len(diagnosis.problems)} problem(s) found")
    return "\n".join(lines)
