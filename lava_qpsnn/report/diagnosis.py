"""Why the network in Lava does not behave like the one that was trained: the same input spikes
through every stage of the pipeline, compared layer by layer, with the known causes named.

Stages, in pipeline order (:data:`STAGES`):

- **float**: the trained network with its quantization hooks removed (only for a quantized
  checkpoint; otherwise the trained network is the float one);
- **trained**: the training model (fake-quantized weights);
- **fixed-point**: the integer network that is exported, in PyTorch;
- **simulator**: the ``.net`` in :mod:`lava_qpsnn.sim`;
- **lava**: the ``.net`` in Lava's fixed-point CPU models (a few samples: Lava is slow).

The first three differ by design (quantization, fixed-point rounding): their differences are
shown, not failed. The last three must agree spike for spike (:data:`EXACT_STAGES`); any
difference between them is a problem, as is each cause :func:`diagnose` names: a file that
differs from its checkpoint, weights that netx changes when it builds the network, a layer
past Lava's 24-bit state, a silent or saturated layer.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import encode_test_split, load_dataset
from ..errors import ConfigError, ExportError, StateLimitWarning
from ..export.fixed_point import fixed_point_network
from ..export.limits import STATE_LIMIT, measured_peaks
from ..export.writer import export_netx
from ..lava.run import run_lava
from ..netx import NetxNetwork, check_exported_from, read_net_info, read_netx
from ..netx.diff import file_differences, netx_changed_weights
from ..sim import simulate
from ..table import format_table
from ..training.checkpoint import Checkpoint, load_checkpoint
from ..training.hooks import core_hook, grid_max, set_core_hook
from ..training.loop import classify, output_spikes
from ..training.models import weight_blocks
from ..training.quantize import synapse_bits

__all__ = [
    "Diagnosis",
    "Divergence",
    "LayerDiagnosis",
    "Raster",
    "diagnose",
    "format_diagnosis",
    "STAGES",
    "EXACT_STAGES",
]

STAGES = ("float", "trained", "fixed-point", "simulator", "lava")
EXACT_STAGES = ("fixed-point", "simulator", "lava")
SATURATED_RATE = 0.9  # a layer whose neurons fire at 90% of their steps or more passes on almost no information
RASTER_NEURONS = 24  # neurons shown around the first divergence
EXPECTED = {  # why two consecutive stages that need not agree differ
    ("float", "trained"): "the weights are quantized",
    ("trained", "fixed-point"): "the threshold and bias are rounded to integers, the state is kept in integers",
}


@dataclass(frozen=True)
class Divergence:
    """Where two stages first differ: the first layer (in pipeline order) with a different spike,
    and in it the first time step, then the first sample and neuron (C-order index) at that step."""

    first: str
    second: str
    layer: int
    step: int
    sample: int
    neuron: tuple[int, ...]
    mismatches: int  # (sample, neuron, step) entries of that layer that differ

    @property
    def exact(self) -> bool:
        """Whether both stages must agree spike for spike (a divergence between them is a problem)."""
        return self.first in EXACT_STAGES and self.second in EXACT_STAGES

    def describe(self) -> str:
        neuron = ", ".join(map(str, self.neuron))
        return (
            f"{self.first} and {self.second} diverge first at layer {self.layer}, step {self.step}, "
            f"sample {self.sample}, neuron ({neuron}): {self.mismatches:,} spikes of that layer differ"
        )


@dataclass(frozen=True)
class LayerDiagnosis:
    """One neuron layer (``index``: its ``/layer/i`` in the ``.net``) across the stages.

    ``spikes`` and ``rates`` are per stage: spikes per sample, and the share of a neuron's
    steps (from the step the sample reaches the layer) on which it fires. ``peak_current``
    and ``peak_voltage`` are the largest ``|u|`` and ``|v|`` reached without Lava's limits
    (``limit_step``: the first step at which one of them reaches :data:`STATE_LIMIT`;
    ``limit_changed_spikes``: the layer's spikes that Lava's wrap and clip change, in this layer
    or, passed on, in one before it). Spikes and
    rates of the ``lava`` stage are over its own (first) samples.
    """

    index: int
    kind: str
    shape: tuple[int, ...]
    latency: int
    bits: int | None
    levels_used: int | None
    levels_available: int | None
    zero_weights: bool
    spikes: dict[str, float]
    rates: dict[str, float]
    peak_current: int | None
    peak_voltage: int | None
    limit_step: int | None
    limit_changed_spikes: int | None
    netx_changed_weights: int | None
    file_differences: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Raster:
    """The spikes of two stages around a divergence: ``neurons`` (C-order indices) x steps, one sample."""

    first: str
    second: str
    layer: int
    sample: int
    neurons: np.ndarray
    first_spikes: np.ndarray
    second_spikes: np.ndarray


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The result of :func:`diagnose`. ``problems`` are the findings that make it fail (each a plain
    advice line); ``notes`` are differences expected by design, shown for information; ``raster``
    holds both stages' spikes around the first divergence (None if the stages agree)."""

    checkpoint: str
    net: str | None
    samples: int
    lava_samples: int
    stages: tuple[str, ...]
    accuracy: dict[str, float]
    layers: tuple[LayerDiagnosis, ...]
    divergences: tuple[Divergence, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    raster: Raster | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        """Plain JSON types: every field, the raster's arrays as lists."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "raster"}
        out["layers"] = [dataclasses.asdict(layer) for layer in self.layers]
        out["divergences"] = [dict(dataclasses.asdict(d), exact=d.exact) for d in self.divergences]
        out["healthy"] = self.healthy
        out["raster"] = None
        if self.raster is not None:
            raster = self.raster
            out["raster"] = {
                "first": raster.first,
                "second": raster.second,
                "layer": raster.layer,
                "sample": raster.sample,
                "neurons": raster.neurons.tolist(),
                "first_spikes": raster.first_spikes.tolist(),
                "second_spikes": raster.second_spikes.tolist(),
            }
        return _plain(out)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return value


def diagnose(
    checkpoint: Checkpoint | str | os.PathLike,
    net: str | os.PathLike | None = None,
    *,
    samples: int = 32,
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
    samples : test samples through the PyTorch stages and the simulator
    lava_samples : the first of those also run in Lava (0: no Lava stage)
    device : where the PyTorch stages run
    """
    if samples < 1 or lava_samples < 0:
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
    problems: list[str] = []
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
    problems += _problems(layers, divergences, checkpoint)
    notes += [f"{d.describe()} (expected: {EXPECTED[d.first, d.second]})" for d in divergences if not d.exact]
    notes += _level_notes(layers)
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


def _export_quietly(checkpoint: Checkpoint, path: Path, problems: list[str]) -> NetxNetwork | None:
    """The checkpoint's own ``.net``, read back (None, with the exporter's reason, if it does not export)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StateLimitWarning)  # measured below, on the samples run
            export_netx(checkpoint, path)
        return read_netx(path)
    except ExportError as exc:
        problems.append(f"the checkpoint does not export: {exc}")
        return None


def _stage_models(checkpoint: Checkpoint) -> dict[str, torch.nn.Module]:
    """The PyTorch stages' networks, in pipeline order; float only for a quantized checkpoint."""
    models = {}
    if checkpoint.quant is not None:
        models["float"] = checkpoint.build()
        for block in weight_blocks(models["float"]):
            set_core_hook(block.synapse, None)
    models["trained"] = checkpoint.build()
    models["fixed-point"] = fixed_point_network(checkpoint)
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


def _problems(layers: tuple[LayerDiagnosis, ...], divergences: list[Divergence], checkpoint: Checkpoint) -> list[str]:
    """The findings that fail a diagnosis, each with its advice."""
    out = [d.describe() for d in divergences if d.exact]
    edited = any(layer.file_differences for layer in layers)
    for layer in layers:
        name = f"layer {layer.index} ({layer.kind})"
        for difference in layer.file_differences:
            what = difference.split(" (")[0]
            out.append(
                f"the file's {what} of {name} {'differ' if what == 'weights' else 'differs'} from the checkpoint's"
                f"{_detail(difference)}: re-export the checkpoint (python -m netx_export model.pt --force)"
            )
        if layer.netx_changed_weights:
            why = (
                "the file's weights were changed after export: re-export the checkpoint"
                if "weights" in [d.split(" (")[0] for d in layer.file_differences]
                else "netx stores weights beyond -256..254 clipped, and a matrix without a positive weight "
                "distorted: retrain or prune less so that the layer keeps an excitatory weight"
            )
            out.append(
                f"netx changes {_count(layer.netx_changed_weights, 'weight')} of {name} when it builds the "
                f"network: {why}"
            )
        if layer.limit_step is not None and layer.limit_changed_spikes:  # past the limit itself, not downstream
            out.append(
                f"{name} reaches |u| {layer.peak_current:,} / |v| {layer.peak_voltage:,} at step {layer.limit_step}, "
                f"beyond Lava's 24-bit limit {STATE_LIMIT:,}: Lava wraps or clips it, which changes "
                f"{_count(layer.limit_changed_spikes, 'spike')} of the layer; lower its weight scale or the input rate"
            )
    deployed = "simulator" if any("simulator" in layer.spikes for layer in layers) else "fixed-point"
    previous = None
    for layer in layers:
        name = f"layer {layer.index} ({layer.kind})"
        if layer.spikes.get(deployed, 0) == 0:
            out.append(_silence(layer, name, deployed, previous, checkpoint, edited))
        elif layer.kind != "pool" and layer.rates.get(deployed, 0) >= SATURATED_RATE:  # a pool ORs its window
            out.append(
                f"{name} fires on {100 * layer.rates[deployed]:.0f}% of its neurons' steps in the {deployed} network "
                "(it passes on almost no information): raise the threshold (--threshold) or lower its weight scale"
            )
        previous = layer
    named = edited or any(
        layer.netx_changed_weights or (layer.limit_step is not None and layer.limit_changed_spikes) for layer in layers
    )
    if any(d.exact for d in divergences) and not named:
        out.append(
            "no known cause explains the divergence above: this is a bug in lava-qpsnn or Lava; "
            "report it with model.pt and the .net"
        )
    return out


def _silence(
    layer: LayerDiagnosis,
    name: str,
    deployed: str,
    previous: LayerDiagnosis | None,
    checkpoint: Checkpoint,
    edited: bool,
) -> str:
    """Why a layer has no spike in the deployed network: the first stage, in pipeline order, where it falls silent."""
    spikes = layer.spikes
    if deployed == "simulator" and spikes["fixed-point"] > 0:
        cause = (
            "the file does not hold the checkpoint's network (see above)"
            if edited
            else "see the divergence and the 24-bit limit above"
        )
        return (
            f"{name} is silent in the .net but fires in the checkpoint's fixed-point model "
            f"({spikes['fixed-point']:,.1f} spikes per sample): {cause}"
        )
    quantized = checkpoint.quant is not None and layer.bits is not None
    if quantized and layer.zero_weights:
        return f"{name} has only zero weights after {layer.bits}-bit quantization: {_more_levels(layer, checkpoint)}"
    if previous is not None and previous.spikes.get(deployed, 0) == 0:
        return f"{name} is silent because layer {previous.index} before it is: nothing reaches it"
    before = spikes.get("float", spikes["trained"])
    if quantized and spikes["trained"] == 0 and before > 0:
        return (
            f"{name} is silent after {layer.bits}-bit quantization (float model: {before:,.1f} spikes per "
            f"sample): {_more_levels(layer, checkpoint)}"
        )
    if spikes["trained"] > 0:
        return (
            f"{name} is silent after the conversion to fixed point (training model: {spikes['trained']:,.1f} "
            "spikes per sample): its integer weights, threshold and bias lose what kept it firing; try more bits"
        )
    everywhere = "in every stage, float included" if "float" in spikes else "in every stage"
    return f"{name} is silent {everywhere}: train longer or raise its weight scale (--init-gain)"


def _more_levels(layer: LayerDiagnosis, checkpoint: Checkpoint) -> str:
    """Advice for a layer its quantization silenced: ReScaW if it is not used yet, else more bits for the layer."""
    first_or_last = layer.bits != checkpoint.quant.bits
    option = "--first-last-bits" if first_or_last else "--bits"
    more = f"keep it at {max(4, layer.bits + 1)} bits ({option})"
    return f"try --quantizer rescaw or {more}" if checkpoint.quant.quantizer != "rescaw" else more


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _detail(difference: str) -> str:
    return f" ({difference.split(' (', 1)[1]}" if " (" in difference else ""


def _level_notes(layers: tuple[LayerDiagnosis, ...]) -> list[str]:
    return [
        f"layer {layer.index} ({layer.kind}) uses {layer.levels_used} of its {layer.levels_available} "
        f"{layer.bits}-bit levels"
        for layer in layers
        if layer.levels_used is not None and layer.bits <= 4 and layer.levels_used < layer.levels_available / 2
    ]


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


def format_diagnosis(diagnosis: Diagnosis) -> str:
    """The terminal report: per-layer table, accuracy per stage, divergences, problems and notes."""

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
        f"diagnosis of {diagnosis.checkpoint}" + (f" and {diagnosis.net}" if diagnosis.net else "")
        + f": {diagnosis.samples} test samples{lava}; spikes per sample",
        format_table(headers, rows),
        "",
        "accuracy: " + ", ".join(f"{s} {100 * diagnosis.accuracy[s]:.2f}%" for s in stages if s != "lava")
        + (f"; lava {100 * diagnosis.accuracy['lava']:.2f}% of {diagnosis.lava_samples}" if "lava" in stages else ""),
    ]
    exact = [s for s in stages if s in EXACT_STAGES]
    if len(exact) > 1 and not any(d.exact for d in diagnosis.divergences):
        lines.append(f"{', '.join(exact)}: identical spikes in every layer")
    lines += [f"problem: {p}" for p in diagnosis.problems]
    lines += [f"note: {n}" for n in diagnosis.notes]
    lines.append("healthy" if diagnosis.healthy else f"{len(diagnosis.problems)} problem(s) found")
    return "\n".join(lines)
