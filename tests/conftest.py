"""Shared fixtures: small trained checkpoints and their exported networks.

The project's tests are collected in importlib mode (no ``tests`` package), because the
lava-dl wheel installs a top-level ``tests`` package into site-packages.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lava_qpsnn  # noqa: F401  (installs the Lava import hook before any Lava import)
from lava_qpsnn.data import Encoding
from lava_qpsnn.export.fixed_point import fixed_point_model
from lava_qpsnn.lava.run import run_lava
from lava_qpsnn.pipeline import train_checkpoint
from lava_qpsnn.sim import simulate
from lava_qpsnn.training.checkpoint import Checkpoint, save_checkpoint
from lava_qpsnn.training.loop import TrainConfig, output_spikes
from lava_qpsnn.training.prune import PruneConfig
from lava_qpsnn.training.quantize import QuantConfig
from netx_export import export_netx

TIME_STEPS = 12


def trained_checkpoint(
    arch: str,
    epochs: int,
    quant: QuantConfig | None = None,
    prune: PruneConfig | None = None,
    norm: str = "none",
    init_gain: float | None = None,
) -> Checkpoint:
    return train_checkpoint(
        arch=arch,
        norm=norm,
        encoding=Encoding(time_steps=TIME_STEPS, seed=3),
        config=TrainConfig(epochs=epochs, init_gain=init_gain),
        quant=quant,
        prune=prune,
        progress=False,
    )


@pytest.fixture(scope="session")
def mlp_checkpoint() -> Checkpoint:
    return trained_checkpoint("32-10", epochs=2)


@pytest.fixture(scope="session")
def conv_checkpoint() -> Checkpoint:
    """4 and 8 channels start silent, and a silent net gets no gradient from the narrow
    surrogate: the scaled initialisation wakes it."""
    return trained_checkpoint("4c3-8c3s2-10", epochs=2, init_gain=1.0)


QUANTIZED = [(1, "zero-free"), (2, "zero-free"), (4, "zero-free"), (8, "symmetric"), (2, "symmetric"), (4, "symmetric")]


@pytest.fixture(scope="session")
def quantized_checkpoints() -> dict[tuple[int, str], Checkpoint]:
    """Small ReScaW MLPs with every layer at b bits on a grid, keyed by ``(bits, grid)`` (see ``QUANTIZED``)."""
    return {
        (bits, grid): trained_checkpoint("32-10", 2, QuantConfig(bits, first_last_bits=None, grid=grid))
        for bits, grid in QUANTIZED
    }


@pytest.fixture(scope="session")
def pruned_conv_checkpoint() -> Checkpoint:
    """The conv net at 4 bits (baseline quantizer: it learns to spike within 3 epochs), both
    convs 50% pruned with SVS: widths (4, 8) -> (2, 4)."""
    prune = PruneConfig((0.5,), "svs", finetune_epochs=1, calibration_samples=128)
    return trained_checkpoint("4c3-8c3s2-10", epochs=3, quant=QuantConfig(4, "baseline"), prune=prune)


@pytest.fixture(scope="session")
def bn_pool_checkpoint() -> Checkpoint:
    """A BatchNorm + pooling conv net at 4 bits (ReScaW), both convs 50% pruned with SVS: (8, 16) -> (4, 8)."""
    prune = PruneConfig((0.5,), "svs", finetune_epochs=1, calibration_samples=128)
    return trained_checkpoint("8c3-p2-16c3-10", epochs=1, quant=QuantConfig(4), prune=prune, norm="bn")


@pytest.fixture(scope="session")
def mlp_files(mlp_checkpoint, tmp_path_factory):
    """(model.pt, model.net) of the small MLP."""
    folder = tmp_path_factory.mktemp("mlp")
    pt = save_checkpoint(mlp_checkpoint, folder / "model.pt")
    net = folder / "model.net"
    export_netx(mlp_checkpoint, net)
    return pt, net


@pytest.fixture(scope="session")
def conv_net(conv_checkpoint, tmp_path_factory):
    net = tmp_path_factory.mktemp("conv") / "model.net"
    export_netx(conv_checkpoint, net)
    return net


@pytest.fixture(scope="session")
def run_python():
    """Run Python code in a fresh interpreter of this environment."""

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)

    return run


@pytest.fixture
def train_error(tmp_path, capsys):
    """Run ``train`` with bad options: assert exit status 2, a one-line error and no checkpoint; return the line."""
    from lava_qpsnn.cli import main

    def run(options: list[str]) -> str:
        out = tmp_path / "m.pt"
        try:  # argparse's own checks exit; ours return the status
            status = main(["--no-progress", "train", "--epochs", "0", "--time-steps", "4", "--out", str(out), *options])
        except SystemExit as exc:
            status = exc.code
        err = capsys.readouterr().err.strip()
        assert status == 2 and err and "\n" not in err, err
        assert not out.exists()
        return err

    return run


@pytest.fixture
def spike_exact_layers():
    """The three-way check of the spike-exactness tests: PyTorch's fixed-point network, the simulator and Lava."""
    return _spike_exact_layers


def _spike_exact_layers(checkpoint: Checkpoint, path, spikes: np.ndarray) -> list[np.ndarray]:
    """Export; every layer's spikes of the PyTorch fixed-point network == simulator == Lava (one multi-sample run)."""
    export_netx(checkpoint, path, force=True)
    reference = output_spikes(fixed_point_model(checkpoint), spikes, layers=True)
    simulated = simulate(path, spikes, layers=True)
    in_lava = run_lava(path, spikes, layers=True, progress=False)
    assert len(reference) == len(simulated) == len(in_lava)
    for i, (ours, sim, lava) in enumerate(zip(reference, simulated, in_lava, strict=True)):
        np.testing.assert_array_equal(sim, ours, err_msg=f"simulator, neuron layer {i}")
        np.testing.assert_array_equal(lava, ours, err_msg=f"Lava, neuron layer {i}")
    return reference
