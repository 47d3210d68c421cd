"""Running the same test samples through every stage of the pipeline, layer by layer, and comparing them."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ...data import encode_test_split, load_dataset
from ...errors import ConfigError, ExportError, StateLimitWarning
from ...export.fixed_point import fixed_point_model
from ...export.limits import measured_peaks
from ...export.writer import export_netx
from ...lava.run import run_lava
from ...netx import NetxNetwork, check_exported_from, read_net_info, read_netx
from ...netx.diff import file_differences, netx_changed_weights
from ...sim import simulate
from ...training.checkpoint import Checkpoint, load_checkpoint
from ...training.hooks import core_hook, grid_max, set_core_hook
from ...training.loop import classify, output_spikes
from ...training.models import weight_blocks
from ...training.quantize import synapse_bits
from .causes import find_problems, level_notes
from .result import EXPECTED, RASTER_NEURONS, Diagnosis, Divergence, LayerDiagnosis, Problem, Raster

__all__ = ["diagnose"]


def diagnose(
    checkpoint: Checkpoint | str | os.PathLike,
    net: str | os.PathLike | None = None,
    *,
    samples: int | None = 32,
    lava_samples: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Diagnosis:
    """Run the first ``samples`` test samples through every stage and compare them layer by layer.

    Parameters
    ----------
    checkpoint : a :class:`~lava_qpsnn.training.checkpoint.Checkpoint` or a ``model.pt``
    net : the ``.net`` exported from it; without one, the stages float, trained and fixed-point
        (the checkpoint is exported to a temporary file to measure Lava's 24-bit state).
        A file of another network is refused, as every command refuses it.
    samples : test samples through the PyTorch stages and the simulator (None: all)
    lava_samples : the first of those also run in Lava (0: no Lava stage)
    device : where the PyTorch stages run
    """
    if (samples is not None and samples < 1) or lava_samples < 0:
        raise ConfigError(
            f"samples must be >= 1 and Lava samples >= 0, got {samples} and {lava_samples}",
            settings=("samples", "lava_samples"),
        )
    name = str(checkpoint) if not isinstance(checkpoint, Checkpoint) else "checkpoint"
    checkpoint = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    models = _stage_models(checkpoint)
    layer_info = _layer_facts(checkpoint, models["trained"], models["fixed-point"])
    file_network = None
    if net is not None:
        info = read_net_info(net)
        check_exported_from(checkpoint, info)
        _check_neuron_layers(info.network, len(layer_info), Path(net).name)
        file_network = info.network
    _, test_set = load_dataset(checkpoint.dataset)
    spikes = encode_test_split(test_set, checkpoint.encoding, samples)
    labels = test_set.labels[: len(spikes)]
    problems: list[Problem] = []
    notes: list[str] = []

    with tempfile.TemporaryDirectory() as folder:
        exported_path = Path(folder) / "checkpoint.net"
        exported = _export_quietly(checkpoint, exported_path, problems)
        differences = file_differences(net, exported_path) if net is not None and exported is not None else None
    reference = file_network if file_network is not None else exported
    runs = _run_stages(models, spikes, net, file_network, lava_samples, device, progress)
    counted = {stage: len(labels) if stage != "lava" else min(lava_samples, len(labels)) for stage in runs}
    accuracy = {
        stage: float((classify(layers[-1]) == labels[: counted[stage]]).mean()) for stage, layers in runs.items()
    }
    peaks = [None] * len(layer_info)
    if reference is not None:  # the file's run with Lava's limits is the simulator stage; without a file, run it
        limited = runs["simulator"] if file_network is not None else simulate(reference, spikes, layers=True)
        peaks = measured_peaks(reference, spikes, limited)
    changed = netx_changed_weights(net, file_network) if file_network is not None else [None] * len(layer_info)
    divergences = _divergences(runs, [facts["index"] for facts in layer_info])
    layers = tuple(
        LayerDiagnosis(
            **facts,
            spikes={stage: float(layers[i].sum() / counted[stage]) for stage, layers in runs.items()},
            rates={stage: _rate(layers[i], facts["latency"]) for stage, layers in runs.items()},
            peak_current=None if peaks[i] is None else peaks[i].current,
            peak_voltage=None if peaks[i] is None else peaks[i].voltage,
            limit_step=None if peaks[i] is None else peaks[i].first_step,
            limit_changed_spikes=None if peaks[i] is None else peaks[i].changed_spikes,
            netx_changed_weights=changed[i],
            file_differences=() if differences is None else differences[i],
        )
        for i, facts in enumerate(layer_info)
    )
    problems += find_problems(layers, divergences, checkpoint)
    notes += [f"{d.describe()} (expected: {EXPECTED[d.first, d.second]})" for d in divergences if not d.exact]
    notes += level_notes(layers)
    notes += [
        f"layer {layer.index} ({layer.kind}) reaches |u| {layer.peak_current:,} / |v| {layer.peak_voltage:,}, beyond "
        f"Lava's 24-bit limit, but no spike of it changes on these samples (other inputs may change some)"
        for layer in layers
        if layer.limit_step is not None and not layer.limit_changed_spikes
    ]
    if differences is None and file_network is not None:
        notes.append("the file was not compared with the checkpoint: the checkpoint does not export")
    return Diagnosis(
        checkpoint=name,
        net=None if net is None else str(net),
        samples=len(labels),
        lava_samples=counted.get("lava", 0),
        stages=tuple(runs),
        accuracy=accuracy,
        layers=layers,
        divergences=tuple(divergences),
        problems=tuple(problems),
        notes=tuple(notes),
        raster=_raster(runs, divergences, layers),
    )


def _check_neuron_layers(network: NetxNetwork, expected: int, name: str) -> None:
    """Refuse a file whose neuron layers do not pair one to one with the checkpoint's (e.g. an input neuron added)."""
    if len(network.neuron_layers) != expected:
        raise ConfigError(
            f"{name} has {len(network.neuron_layers)} layers with neurons, the checkpoint {expected}: "
            "give the checkpoint the network was exported from"
        )


def _export_quietly(checkpoint: Checkpoint, path: Path, problems: list[Problem]) -> NetxNetwork | None:
    """The checkpoint's own ``.net``, read back (None, with the exporter's reason, if it does not export)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StateLimitWarning)  # measured below, on the samples run
            export_netx(checkpoint, path)
        return read_netx(path)
    except ExportError as exc:
        problems.append(Problem(f"the checkpoint does not export: {exc}", exc.settings))
        return None


def _stage_models(checkpoint: Checkpoint) -> dict[str, torch.nn.Module]:
    """The PyTorch stages' networks, in pipeline order; float only for a quantized checkpoint."""
    models = {}
    if checkpoint.quant is not None:
        models["float"] = checkpoint.build()
        for block in weight_blocks(models["float"]):
            set_core_hook(block.synapse, None)
    models["trained"] = checkpoint.build()
    models["fixed-point"] = fixed_point_model(checkpoint)
    return models


def _run_stages(
    models: dict[str, torch.nn.Module],
    spikes: np.ndarray,
    net: str | os.PathLike | None,
    file_network: NetxNetwork | None,
    lava_samples: int,
    device: str | torch.device,
    progress: bool,
) -> dict[str, list[np.ndarray]]:
    """Every neuron layer's spikes, ``N x shape x T``, per stage."""
    runs = {stage: output_spikes(model, spikes, device=device, layers=True) for stage, model in models.items()}
    if file_network is not None:
        runs["simulator"] = simulate(file_network, spikes, layers=True)
        if lava_samples > 0:
            runs["lava"] = run_lava(net, spikes[:lava_samples], layers=True, progress=progress)
    return runs


def _layer_facts(checkpoint: Checkpoint, trained: torch.nn.Module, fixed: torch.nn.Module) -> list[dict]:
    """Per neuron layer: index in the file, kind, shape, latency, bits and quantization levels used.

    Levels are counted on the integer weights of the fixed-point network (what the exporter writes).
    """
    bits_of = dict(zip(map(id, weight_blocks(fixed)), synapse_bits(trained), strict=True))
    shapes = checkpoint.model.shapes
    facts, depth = [], 0
    for position, block in enumerate(fixed.blocks):
        depth += getattr(block, "synapse", None) is not None  # conv, pooling and dense each add a step
        if getattr(block, "neuron", None) is None:
            continue
        bits = bits_of.get(id(block))
        used = available = None
        zero = False
        if bits is not None:
            hook = core_hook(block.synapse)
            with torch.no_grad():
                integers = block.synapse.pre_hook_fx(block.synapse.weight, descale=True)
            values = np.unique(integers.cpu().numpy())
            zero = not values.any()
            zero_free = getattr(hook, "grid", "symmetric") == "zero-free" and bits < 8
            used = int(np.count_nonzero(values)) if zero_free else len(values)  # a zero-free grid's 0: pruned
            available = 1 << bits if zero_free else 2 * grid_max(bits, "symmetric") + 1
        facts.append(
            {
                "index": position + 1,  # /layer/0 is the input
                "kind": type(block).__name__.lower(),
                "shape": tuple(shapes[position]),
                "latency": depth,
                "bits": bits,
                "levels_used": used,
                "levels_available": available,
                "zero_weights": zero,
            }
        )
    return facts


def _rate(spikes: np.ndarray, latency: int) -> float:
    """Share of (neuron, step) pairs from ``latency`` on that spike."""
    window = spikes[..., latency:]
    return float(window.mean()) if window.size else 0.0


def _divergences(runs: dict[str, list[np.ndarray]], indices: list[int]) -> list[Divergence]:
    """For each pair of consecutive stages, the first place they differ (nothing if they agree)."""
    out = []
    names = list(runs)
    for first, second in zip(names, names[1:], strict=False):
        for position, (a, b) in enumerate(zip(runs[first], runs[second], strict=True)):
            n = min(len(a), len(b))
            differ = a[:n] != b[:n]
            if not differ.any():
                continue
            per_step = differ.reshape(-1, differ.shape[-1]).any(axis=0)
            step = int(np.flatnonzero(per_step)[0])
            where = np.argwhere(differ[..., step])[0]
            out.append(
                Divergence(
                    first,
                    second,
                    indices[position],
                    step,
                    int(where[0]),
                    tuple(int(i) for i in where[1:]),
                    int(differ.sum()),
                )
            )
            break
    return out


def _raster(
    runs: dict[str, list[np.ndarray]], divergences: list[Divergence], layers: tuple[LayerDiagnosis, ...]
) -> Raster | None:
    """Both stages' spikes around the first divergence that matters most (an exact pair's, else the first)."""
    if not divergences:
        return None
    chosen = next((d for d in divergences if d.exact), divergences[0])
    position = [layer.index for layer in layers].index(chosen.layer)
    a = runs[chosen.first][position][chosen.sample]
    b = runs[chosen.second][position][chosen.sample]
    flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    centre = int(np.ravel_multi_index(chosen.neuron, a.shape[:-1])) if chosen.neuron else 0
    start = max(0, min(centre - RASTER_NEURONS // 2, len(flat_a) - RASTER_NEURONS))
    neurons = np.arange(start, min(len(flat_a), start + RASTER_NEURONS))
    return Raster(chosen.first, chosen.second, chosen.layer, chosen.sample, neurons, flat_a[neurons], flat_b[neurons])
