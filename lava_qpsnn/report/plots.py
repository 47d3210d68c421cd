"""PNG figures of a :class:`~lava_qpsnn.report.network.NetworkReport` (``report --plot DIR``)
and of a :class:`~lava_qpsnn.report.diagnosis.Diagnosis` (``diagnose --plot DIR``).

matplotlib is imported when a figure is drawn, with the Agg backend (files only, no
display), so importing lava-qpsnn never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import OutputPathError
from ..files import atomic_output
from .diagnosis import Diagnosis
from .network import NetworkReport

__all__ = ["check_plot_folder", "write_report_plots", "write_diagnosis_plots", "PLOT_NAMES", "DIAGNOSIS_PLOT_NAMES"]

PLOT_NAMES = ("memory.png", "synops.png", "raster.png")
DIAGNOSIS_PLOT_NAMES = ("stage_rates.png", "divergence.png")


def check_plot_folder(folder: str | os.PathLike, *, force: bool = False, names: tuple[str, ...] = PLOT_NAMES) -> Path:
    """Fail early, before any work, unless ``folder`` is (or can be created as) a writable folder
    without our PNGs ``names`` in it (``force`` allows replacing them)."""
    folder = Path(folder)
    existing = folder if folder.exists() else folder.parent
    if not existing.is_dir():
        problem = "is not a folder" if folder.exists() else f"cannot be created: {existing} is not an existing folder"
        raise OutputPathError(f"plot folder {folder} {problem}: give a folder for the PNG files")
    if not os.access(existing, os.W_OK):
        raise OutputPathError(f"folder {existing} is not writable: choose another plot folder")
    present = [name for name in names if (folder / name).exists()]
    if present and not force:
        raise OutputPathError(
            f"{folder} already has {', '.join(present)}: allow replacing them (force) or choose another plot folder",
            settings=("force",),
        )
    return folder


def write_report_plots(report: NetworkReport, folder: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Draw :data:`PLOT_NAMES` into ``folder`` (created if missing; with ``force``, ours there are replaced).

    Each file is written whole or not at all (:func:`~lava_qpsnn.files.atomic_output`).
    """
    folder = check_plot_folder(folder, force=force)
    return _save(folder, zip(PLOT_NAMES, [_memory(report), _synops(report), _raster(report)], strict=True), force)


def write_diagnosis_plots(diagnosis: Diagnosis, folder: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Per-layer firing rates per stage, and (when two stages diverge) a raster around the first divergence."""
    folder = check_plot_folder(folder, force=force, names=DIAGNOSIS_PLOT_NAMES)
    figures = [_stage_rates(diagnosis)]
    if diagnosis.raster is not None:
        figures.append(_divergence(diagnosis))
    else:  # an earlier run's raster (--force) would no longer describe this network
        (folder / DIAGNOSIS_PLOT_NAMES[1]).unlink(missing_ok=True)
    return _save(folder, zip(DIAGNOSIS_PLOT_NAMES, figures, strict=False), force)


def _save(folder: Path, figures, force: bool) -> list[Path]:
    paths = []
    try:
        folder.mkdir(exist_ok=True)
        for name, figure in figures:
            with atomic_output(folder / name, force=force) as tmp:
                figure.savefig(tmp, format="png", dpi=120)
            paths.append(folder / name)
    except OSError as exc:
        raise OutputPathError(
            f"cannot write plots into {folder} ({exc.strerror or exc}): choose another folder"
        ) from None
    return paths


def _figure(width: float, height: float, columns: int = 1):
    """A figure and its axes outside pyplot: no backend is chosen or changed, so the caller's
    (a notebook's inline display, a GUI) stays as it was, and nothing is left open."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(1, columns, sharey=columns > 1)


def _synapse_layers(report: NetworkReport) -> tuple[list, list[str]]:
    layers = [layer for layer in report.layers if layer.cores is not None]
    return layers, [f"{layer.summary.index}: {layer.summary.kind}" for layer in layers]


def _memory(report: NetworkReport):
    layers, names = _synapse_layers(report)
    x = np.arange(len(layers))
    bars = [("packed", [layer.summary.packed_bytes for layer in layers])]
    bars.append(("float32", [layer.summary.float32_bytes for layer in layers]))
    if report.pruned:
        bars.append(("float32 before pruning", [layer.summary.float32_bytes_before for layer in layers]))
    fig, ax = _figure(7, 4)
    width = 0.8 / len(bars)
    for i, (label, values) in enumerate(bars):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, np.array(values) / 1024, width, label=label)
    packed_x = x - (len(bars) - 1) / 2 * width
    for xi, layer in zip(packed_x, layers, strict=True):  # compression over the packed bar
        ax.annotate(f"{layer.compression:.1f}x", (xi, layer.summary.packed_bytes / 1024), ha="center", va="bottom")
    ax.set(xticks=x, xticklabels=names, ylabel="weight memory (KB, log scale)", yscale="log")
    ax.set_title(
        f"{report.net.name}: packed {report.packed_bytes / 1024:.2f} KB, {report.compression:.1f}x smaller "
        f"than float32{' before pruning' if report.pruned else ''}",
        fontsize=10,
    )
    ax.legend()
    fig.tight_layout()
    return fig


def _synops(report: NetworkReport):
    layers, names = _synapse_layers(report)
    values = [layer.synops_per_sample for layer in layers]
    fig, ax = _figure(7, 4)
    ax.bar(names, values, color="tab:orange")
    for name, value in zip(names, values, strict=True):
        ax.annotate(f"{value:,.0f}", (name, value), ha="center", va="bottom")
    ax.set(ylabel="SynOps per sample")
    ax.margins(y=0.1)  # room for the labels
    ax.set_title(
        f"{report.net.name}: {report.synops_per_sample:,.0f} SynOps per sample "
        f"(mean of {report.samples} test samples, T = {report.time_steps})",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _raster(report: NetworkReport):
    spikes = report.example_output
    classes, steps = spikes.shape
    fig, ax = _figure(7, 0.3 * classes + 1.5)
    ax.imshow(spikes, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
    ax.set_yticks(range(classes), [f"{c} ({n})" for c, n in enumerate(spikes.sum(axis=1))])
    if steps <= 32:
        ax.set_xticks(range(steps))
    ax.set_yticks(np.arange(classes + 1) - 0.5, minor=True)
    ax.grid(which="minor", axis="y", color="0.85")
    ax.tick_params(which="minor", left=False)
    ax.set(xlabel="time step", ylabel="class (spikes)")
    ax.set_title(
        f"output spikes of test sample 0: predicted {report.example_prediction}, label {report.example_label}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _stage_rates(diagnosis: Diagnosis):
    layers, stages = diagnosis.layers, diagnosis.stages
    x = np.arange(len(layers))
    width = 0.8 / len(stages)
    fig, ax = _figure(max(6, 1.4 * len(layers) + 2), 4)
    for i, stage in enumerate(stages):
        rates = [100 * layer.rates[stage] for layer in layers]
        label = f"lava (first {diagnosis.lava_samples})" if stage == "lava" else stage
        ax.bar(x + (i - (len(stages) - 1) / 2) * width, rates, width, label=label)
    ax.set(xticks=x, xticklabels=[f"{layer.index}: {layer.kind}" for layer in layers], ylabel="firing rate (%)")
    status = "healthy" if diagnosis.healthy else f"{len(diagnosis.problems)} problem(s)"
    ax.set_title(f"firing rate per layer and stage ({diagnosis.samples} test samples): {status}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _divergence(diagnosis: Diagnosis):
    raster = diagnosis.raster
    differ = raster.first_spikes != raster.second_spikes
    fig, axes = _figure(10, 0.22 * len(raster.neurons) + 1.8, columns=3)
    panels = [(raster.first_spikes, raster.first), (raster.second_spikes, raster.second), (differ, "differ")]
    for ax, (values, title) in zip(axes, panels, strict=True):
        cmap = "Reds" if title == "differ" else "Greys"
        ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest", vmin=0, vmax=1)
        ax.set(title=title, xlabel="time step")
    axes[0].set_yticks(range(len(raster.neurons)), [str(n) for n in raster.neurons], fontsize=6)
    axes[0].set_ylabel("neuron (C-order index)")
    fig.suptitle(
        f"{raster.first} vs {raster.second}, layer {raster.layer}, test sample {raster.sample}: "
        f"{int(differ.sum())} spikes differ in these neurons",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
