"""Shared fixtures: small trained checkpoints and their exported networks.

The project's tests are collected in importlib mode (no ``tests`` package), because the
lava-dl wheel installs a top-level ``tests`` package into site-packages.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import lava_qpsnn  # noqa: F401  (installs the Lava import hook before any Lava import)
from lava_qpsnn.checkpoint import Checkpoint, save_checkpoint
from lava_qpsnn.data import Encoding, load_dataset
from lava_qpsnn.models import ModelConfig, build_model
from lava_qpsnn.train import TrainConfig, train
from netx_export import export_netx

TIME_STEPS = 12


def trained_checkpoint(arch: str, hidden: tuple[int, ...], epochs: int) -> Checkpoint:
    import torch

    torch.manual_seed(0)
    train_set, test_set = load_dataset("digits")
    encoding = Encoding(time_steps=TIME_STEPS, seed=3)
    model = build_model(ModelConfig(arch, (1, 8, 8), 10, hidden))
    metrics = train(model, train_set, test_set, encoding, TrainConfig(epochs=epochs), progress=False)
    return Checkpoint.of(model, dataset="digits", encoding=encoding, metrics=metrics)


@pytest.fixture(scope="session")
def mlp_checkpoint() -> Checkpoint:
    return trained_checkpoint("mlp", (32,), epochs=2)


@pytest.fixture(scope="session")
def conv_checkpoint() -> Checkpoint:
    return trained_checkpoint("conv", (4, 8), epochs=2)


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
