"""What a ``model.pt`` of format version 2 always holds, and what its parts must agree on.

A checkpoint is read without defaults: every setting is rebuilt by a config class whose fields
have defaults, so a setting missing from the file would silently become the library's default
and the file would describe another network than the one trained (a quantized network without
its ``quant`` entry exports as an 8-bit lava-dl one; a dropped time-step count or grid becomes
the default one). :func:`check_complete` therefore requires every entry and every field the
writer (:meth:`~lava_qpsnn.training.checkpoint.Checkpoint.to_dict`) puts in a file, and
:func:`check_agreement` compares the recorded settings with what the weights themselves show.
Problems are ``ValueError`` lines that :func:`~lava_qpsnn.training.checkpoint.load_checkpoint`
reports as a damaged file.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from ..data import Encoding
from .layer_specs import KINDS, OWN_FIELDS, NeuronConfig
from .loop import TrainConfig
from .prune import PruneConfig
from .quantize import QuantConfig

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

__all__ = ["ENTRIES", "check_complete", "check_agreement"]

# every top-level entry of a checkpoint; the value may be None for the last five
ENTRIES = ("model", "dataset", "encoding", "state_dict", "metrics", "quant", "pruning", "scales", "training")
MODEL_FIELDS = ("layers", "image_shape", "norm", "neuron")
PRUNING_LISTS = ("layer_ratios", "widths_before", "kept_channels", "capped_layers")
# fields added to version 2 after files of it were written; their absence means the default's behaviour
LATER_FIELDS = {
    "training": {"validation", "augment_shift"},  # no held-out split, no augmentation: as runs before them
    "encoding": {"bits"},  # only direct encoding has payload bits; every earlier file is rate-coded
    "neuron": {"requires_grad"},  # learnable decays are written only when set: fixed decays, as before
    "layer": set(OWN_FIELDS),  # a layer's own neuron and norm: the model's, as every earlier layer had
}


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _require(record: object, expected: set[str], what: str, later: set[str] = frozenset()) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{what} is {type(record).__name__}, not a record")
    missing = sorted(expected - set(record) - set(later))
    if missing:
        raise ValueError(f"{what} lacks {', '.join(repr(m) for m in missing)}, which every checkpoint of it holds")


def check_complete(data: dict) -> None:
    """Every entry and every setting a checkpoint always has is in ``data``, a loaded ``model.pt``."""
    missing = [entry for entry in ENTRIES if entry not in data]
    if missing:
        raise ValueError(f"entry {', '.join(repr(m) for m in missing)} is missing")
    model = data["model"]
    _require(model, set(MODEL_FIELDS), "'model'")
    _require(model["neuron"], _names(NeuronConfig), "the model's 'neuron'", LATER_FIELDS["neuron"])
    if not isinstance(model["layers"], list):
        raise ValueError(f"the model's 'layers' is {type(model['layers']).__name__}, not a list")
    for i, layer in enumerate(model["layers"]):
        kind = KINDS.get(layer.get("kind")) if isinstance(layer, dict) else None
        if kind is None:
            raise ValueError(f"model layer {i} is {layer!r}: expected one of kinds {', '.join(KINDS)}")
        _require(layer, _names(kind), f"model layer {i} ({layer['kind']})", LATER_FIELDS["layer"])
        if layer.get("neuron") is not None:
            _require(layer["neuron"], _names(NeuronConfig), f"model layer {i}'s 'neuron'", LATER_FIELDS["neuron"])
    _require(data["encoding"], _names(Encoding), "'encoding'", LATER_FIELDS["encoding"])
    if data["quant"] is not None:
        _require(data["quant"], _names(QuantConfig), "'quant'")
    if data["training"] is not None:
        _require(data["training"], _names(TrainConfig), "'training'", LATER_FIELDS["training"])
    if data["pruning"] is not None:
        _require(data["pruning"], _names(PruneConfig) | set(PRUNING_LISTS), "'pruning'")


def check_agreement(checkpoint: Checkpoint) -> None:
    """The recorded settings describe the stored weights: a quantizer has scales, a pruning record the widths."""
    if (checkpoint.quant is None) != (checkpoint.scales is None):
        has, lacks = ("quantizer scales", "'quant'") if checkpoint.quant is None else ("'quant'", "quantizer scales")
        raise ValueError(f"it has {has} but no {lacks}: every quantized checkpoint records both")
    if checkpoint.pruning is None:
        return
    widths, before = checkpoint.model.widths, checkpoint.pruning["widths_before"]
    kept = checkpoint.pruning["kept_channels"]
    if len(kept) != len(widths) - 1:
        raise ValueError(f"the pruning record keeps channels of {len(kept)} layers; the model prunes {len(widths) - 1}")
    for i, (channels, width, total) in enumerate(zip(kept, widths, before, strict=False)):
        if (
            len(channels) != width
            or not all(isinstance(c, int) and 0 <= c < total for c in channels)
            or sorted(set(channels)) != channels
        ):
            raise ValueError(
                f"the pruning record's kept channels of layer {i} are not {width} distinct ones of its {total}: "
                "they do not describe the stored weights"
            )
