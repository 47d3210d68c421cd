"""The method in one run: the same network trained in float and as QP-SNN, both exported and measured
side by side, every output spike of the QP-SNN one checked in Lava and the simulator, and that one
deployed as a Lava Classifier process.

:func:`run_demo` returns a :class:`DemoResult`; :func:`format_demo` prints its two tables. The
``demo`` command (``make demo``) is both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import Encoding
from .evaluation import Evaluation, evaluate
from .export.writer import export_netx
from .files import check_output_path
from .lava.deployment import Deployment, agreement_with_pytorch, deploy
from .pipeline import train_checkpoint
from .report.network import NetworkReport, report_network
from .table import format_table
from .training.checkpoint import Checkpoint, save_checkpoint
from .training.loop import TrainConfig
from .training.prune import PruneConfig
from .training.quantize import QuantConfig
from .training.specs import NeuronConfig

__all__ = ["DemoResult", "run_demo", "format_demo", "DEMO_ARCH", "DEMO_ENCODING", "DEMO_FILES"]

DEMO_ARCH = "128-128-10"
# QP-SNN's own input: the image itself on every step; digits pixels have 17 levels, 4-bit payloads keep
# the first layer inside Lava's 24-bit state. Measured beside rate coding at T=16: the same QP-SNN accuracy
# within 0.3 points, 3x fewer SynOps (docs/data.md).
DEMO_ENCODING = Encoding(time_steps=4, kind="direct", bits=4)
DEMO_FILES = ("float.pt", "float.net", "qpsnn.pt", "qpsnn.net")


@dataclass(frozen=True, eq=False)
class DemoResult:
    """Both networks (checkpoints, files, reports) and the QP-SNN one's checks in Lava and the simulator."""

    float_checkpoint: Checkpoint
    qpsnn_checkpoint: Checkpoint
    files: dict[str, Path]
    reports: dict[str, NetworkReport]
    lava: Evaluation
    simulator: Evaluation
    deployed: Deployment
    deployed_agreement: float

    @property
    def exact(self) -> bool:
        """Every output spike equal in Lava, the simulator and PyTorch, and every Classifier prediction too."""
        return self.lava.spike_agreement == self.simulator.spike_agreement == self.deployed_agreement == 1.0


def run_demo(
    out: str | os.PathLike,
    *,
    quant: QuantConfig,
    prune: PruneConfig,
    dataset: str = "digits",
    arch: str = DEMO_ARCH,
    norm: str = "none",
    encoding: Encoding | None = None,
    config: TrainConfig | None = None,
    neuron: NeuronConfig | None = None,
    samples: int | None = None,
    force: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    on_step: Callable[[str], None] = lambda text: None,
) -> DemoResult:
    """Train ``arch`` in float and as QP-SNN (``quant``, ``prune``), write both to ``out``, check and measure.

    ``samples``: the first test samples run in Lava (None: all). The files of :data:`DEMO_FILES` in
    ``out`` (made if missing) are replaced only with ``force``; this is checked before any training. ``on_step`` is told
    each step as it starts.
    """
    out, encoding, config = Path(out), encoding or DEMO_ENCODING, config or TrainConfig()
    out.mkdir(parents=True, exist_ok=True)
    for name in DEMO_FILES:
        check_output_path(out / name, force=force)
    settings = dict(dataset=dataset, arch=arch, norm=norm, encoding=encoding, config=config, neuron=neuron)
    settings.update(progress=progress, device=device)
    what = f"{arch} on {dataset}, {config.epochs} epochs, {encoding.describe()}"
    on_step(f"[1/5] training the float network ({what})")
    float_ckpt = train_checkpoint(**settings)
    ratios = ", ".join(f"{r:.0%}" for r in prune.ratios)
    on_step(f"[2/5] the same as QP-SNN: {quant.bits}-bit hidden weights, pruning {ratios} ({prune.criterion})")
    qpsnn_ckpt = train_checkpoint(**settings, quant=quant, prune=prune)
    on_step(f"[3/5] exporting both to NetX HDF5 in {out}")
    files = {}
    for name, checkpoint in (("float", float_ckpt), ("qpsnn", qpsnn_ckpt)):
        save_checkpoint(checkpoint, out / f"{name}.pt", force=force)
        files[name] = out / f"{name}.net"
        export_netx(checkpoint, files[name], force=force)
    on_step("[4/5] every output spike of qpsnn.net in Lava (Loihi2SimCfg, fixed_pt) and in the simulator vs PyTorch")
    checks = dict(samples=samples, checkpoint=qpsnn_ckpt, device=device)
    lava = evaluate(files["qpsnn"], backend="lava", progress=progress, **checks)
    simulator = evaluate(files["qpsnn"], backend="sim", **checks)
    on_step("[5/5] deploying qpsnn.net as one Lava Classifier process (encoder -> netx -> readout); measuring both")
    deployed = deploy(files["qpsnn"], samples=samples, progress=progress)
    reports = {
        name: report_network(files[name], checkpoint=ckpt, samples=deployed.samples)
        for name, ckpt in (("float", float_ckpt), ("qpsnn", qpsnn_ckpt))
    }
    agreement = agreement_with_pytorch(qpsnn_ckpt, deployed.predictions, device)
    return DemoResult(float_ckpt, qpsnn_ckpt, files, reports, lava, simulator, deployed, agreement)


def _percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def format_demo(result: DemoResult) -> str:
    """The float vs QP-SNN table and the QP-SNN network's checks in Lava."""
    pair = (result.float_checkpoint, result.qpsnn_checkpoint)
    a, b = result.reports["float"], result.reports["qpsnn"]

    def bits(report: NetworkReport) -> str:
        """Stored bits per synapse layer: the trained grid's, or for lava-dl's 8-bit export what netx keeps."""
        return "-".join(str(layer.summary.weight_bits) for layer in report.layers if layer.summary.params)

    comparison = [
        ["hidden widths", *("-".join(map(str, c.model.widths[:-1])) for c in pair)],
        ["weight bits per layer (as stored)", bits(a), bits(b)],
        ["test accuracy, trained model", *(_percent(c.metrics["test_accuracy"]) for c in pair)],
        ["test accuracy, exported integer network", *(_percent(c.metrics["fixed_point_test_accuracy"]) for c in pair)],
        ["packed weight memory", *(f"{r.packed_bytes / 1024:.2f} KB" for r in (a, b))],
        [
            "smaller than the float network in float32",
            f"{a.float32_bytes_before / a.packed_bytes:.1f}x",
            f"{a.float32_bytes_before / b.packed_bytes:.1f}x",
        ],
        ["SynOps per sample (measured)", *(f"{r.synops_per_sample:,.0f}" for r in (a, b))],
        ["spikes per sample (measured)", *(f"{r.spikes_per_sample:,.0f}" for r in (a, b))],
        ["Loihi 2 neuro cores, chips (ESTIMATE)", *(f"{r.cores}, {r.chips}" for r in (a, b))],
        ["energy per inference (ESTIMATE, Loihi 1 figures)", *(f"{r.energy.joules * 1e9:,.0f} nJ" for r in (a, b))],
    ]
    lava, sim, deployed = result.lava, result.simulator, result.deployed
    checks = [
        [f"Lava fixed_pt accuracy ({lava.samples} samples)", _percent(lava.accuracy)],
        ["identical output spikes Lava vs PyTorch", _percent(lava.spike_agreement)],
        [f"simulator accuracy, time ({sim.samples} samples)", f"{_percent(sim.accuracy)}, {sim.seconds:.2f} s"],
        ["identical output spikes simulator vs PyTorch", _percent(sim.spike_agreement)],
        [f"Lava time ({lava.samples} samples)", f"{lava.seconds:.1f} s"],
        [
            f"Classifier process accuracy, time ({deployed.samples} samples, one run)",
            f"{_percent(deployed.accuracy)}, {deployed.seconds:.1f} s",
        ],
        ["prediction agreement Classifier vs PyTorch", _percent(result.deployed_agreement)],
    ]
    tables = [format_table(["", "float", "QP-SNN"], comparison), format_table(["QP-SNN in Lava", "value"], checks)]
    return "\n\n".join(tables)
