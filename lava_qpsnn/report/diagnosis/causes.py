"""The known causes of a network that does not behave in Lava like the one trained, each with its advice.

Every cause returns a :class:`~lava_qpsnn.report.diagnosis.result.Problem` that speaks of settings
by their Python names; the command line adds its options.
"""

from __future__ import annotations

from ...loihi import STATE_LIMIT
from ...training.checkpoint import Checkpoint
from .result import SATURATED_RATE, Divergence, LayerDiagnosis, Problem

__all__ = ["find_problems", "level_notes"]


def find_problems(
    layers: tuple[LayerDiagnosis, ...], divergences: list[Divergence], checkpoint: Checkpoint
) -> list[Problem]:
    """The findings that fail a diagnosis, each with its advice."""
    out = [Problem(d.describe()) for d in divergences if d.exact]
    edited = any(layer.file_differences for layer in layers)
    for layer in layers:
        name = f"layer {layer.index} ({layer.kind})"
        for difference in layer.file_differences:
            what = difference.split(" (")[0]
            verb = "differ" if what == "weights" else "differs"
            out.append(
                Problem(
                    f"the file's {what} of {name} {verb} from the checkpoint's{_detail(difference)}: "
                    "export the checkpoint again, replacing the file"
                )
            )
        if layer.netx_changed_weights:
            why = (
                "the file's weights were changed after export: re-export the checkpoint"
                if "weights" in [d.split(" (")[0] for d in layer.file_differences]
                else "netx stores weights beyond -256..254 clipped, and a matrix without a positive weight "
                "distorted: retrain or prune less so that the layer keeps an excitatory weight"
            )
            count = _count(layer.netx_changed_weights, "weight")
            out.append(Problem(f"netx changes {count} of {name} when it builds the network: {why}", ("prune",)))
        if layer.limit_step is not None and layer.limit_changed_spikes:  # past the limit itself, not downstream
            advice, settings = "lower its weight scale or the input rate", ("bits", "true_rate")
            if checkpoint.encoding.graded and layer is layers[0]:  # it reads the payloads
                advice = "send fewer payload bits or give the first layer fewer weight bits"
                settings = ("payload_bits", "first_last_bits")
            out.append(
                Problem(
                    f"{name} reaches |u| {layer.peak_current:,} / |v| {layer.peak_voltage:,} at step "
                    f"{layer.limit_step}, beyond Lava's 24-bit limit {STATE_LIMIT:,}: Lava wraps or clips it, which "
                    f"changes {_count(layer.limit_changed_spikes, 'spike')} of the layer; {advice}",
                    settings,
                )
            )
    deployed = "simulator" if any("simulator" in layer.spikes for layer in layers) else "fixed-point"
    previous = None
    for layer in layers:
        name = f"layer {layer.index} ({layer.kind})"
        if layer.spikes.get(deployed, 0) == 0:
            out.append(_silence(layer, name, deployed, previous, checkpoint, edited))
        elif layer.kind != "pool" and layer.rates.get(deployed, 0) >= SATURATED_RATE:  # a pool ORs its window
            out.append(
                Problem(
                    f"{name} fires on {100 * layer.rates[deployed]:.0f}% of its neurons' steps in the {deployed} "
                    "network (it passes on almost no information): raise the neuron threshold or lower its weight "
                    "scale",
                    ("threshold", "init_gain"),
                )
            )
        previous = layer
    named = edited or any(
        layer.netx_changed_weights or (layer.limit_step is not None and layer.limit_changed_spikes) for layer in layers
    )
    if any(d.exact for d in divergences) and not named:
        out.append(
            Problem(
                "no known cause explains the divergence above: this is a bug in lava-qpsnn or Lava; "
                "report it with model.pt and the .net"
            )
        )
    return out


def _silence(
    layer: LayerDiagnosis,
    name: str,
    deployed: str,
    previous: LayerDiagnosis | None,
    checkpoint: Checkpoint,
    edited: bool,
) -> Problem:
    """Why a layer has no spike in the deployed network: the first stage, in pipeline order, where it falls silent."""
    spikes = layer.spikes
    if deployed == "simulator" and spikes["fixed-point"] > 0:
        cause = (
            "the file does not hold the checkpoint's network (see above)"
            if edited
            else "see the divergence and the 24-bit limit above"
        )
        return Problem(
            f"{name} is silent in the .net but fires in the checkpoint's fixed-point model "
            f"({spikes['fixed-point']:,.1f} spikes per sample): {cause}"
        )
    quantized = checkpoint.quant is not None and layer.bits is not None
    if quantized and layer.zero_weights:
        advice, settings = _more_levels(layer, checkpoint)
        return Problem(f"{name} has only zero weights after {layer.bits}-bit quantization: {advice}", settings)
    if previous is not None and previous.spikes.get(deployed, 0) == 0:
        return Problem(f"{name} is silent because layer {previous.index} before it is: nothing reaches it")
    before = spikes.get("float", spikes["trained"])
    if quantized and spikes["trained"] == 0 and before > 0:
        advice, settings = _more_levels(layer, checkpoint)
        return Problem(
            f"{name} is silent after {layer.bits}-bit quantization (float model: {before:,.1f} spikes per "
            f"sample): {advice}",
            settings,
        )
    if spikes["trained"] > 0:
        return Problem(
            f"{name} is silent after the conversion to fixed point (training model: {spikes['trained']:,.1f} "
            "spikes per sample): its integer weights, threshold and bias lose what kept it firing; try more bits",
            ("bits",),
        )
    everywhere = "in every stage, float included" if "float" in spikes else "in every stage"
    return Problem(f"{name} is silent {everywhere}: train longer or raise its weight scale", ("epochs", "init_gain"))


def _more_levels(layer: LayerDiagnosis, checkpoint: Checkpoint) -> tuple[str, tuple[str, ...]]:
    """Advice for a layer its quantization silenced, and its settings: ReScaW if it is not used yet, else more
    bits for the layer."""
    bits = "first_last_bits" if layer.bits != checkpoint.quant.bits else "bits"
    more = f"keep it at {max(4, layer.bits + 1)} bits"
    if checkpoint.quant.quantizer != "rescaw":
        return f"try the rescaw quantizer or {more}", ("quantizer", bits)
    return more, (bits,)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _detail(difference: str) -> str:
    return f" ({difference.split(' (', 1)[1]}" if " (" in difference else ""


def level_notes(layers: tuple[LayerDiagnosis, ...]) -> list[str]:
    return [
        f"layer {layer.index} ({layer.kind}) uses {layer.levels_used} of its {layer.levels_available} "
        f"{layer.bits}-bit levels"
        for layer in layers
        if layer.levels_used is not None and layer.bits <= 4 and layer.levels_used < layer.levels_available / 2
    ]
