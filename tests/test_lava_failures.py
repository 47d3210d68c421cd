"""A failure inside Lava's runtime ends the command in one line, with every Lava process stopped.

Each case runs in a fresh interpreter with a timeout: lava-nc 0.10.0 alone would hang on all of
them (see lava_qpsnn/lava/supervise.py), and a hang must fail the test, not stop the suite.
"""

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

HANG = 120  # seconds: far beyond a failing run's few, far below forever

# After the command, what is left of Lava: its forked processes (and its shared memory server) are children.
EPILOGUE = """
import multiprocessing
print("children left:", len(multiprocessing.active_children()))
"""


def run_code(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def unbuildable_net(mlp_files, tmp_path):
    """The MLP with its first layer's bias stored as (32, 1): netx builds a LIF whose bias Var Lava cannot fill."""
    path = tmp_path / "column.net"
    shutil.copy(mlp_files[1], path)
    with h5py.File(path, "a") as handle:
        handle["layer/1/bias"] = np.arange(32).reshape(32, 1)
    return path


@pytest.mark.parametrize("command", [["eval", "--backend", "lava", "--samples", "2"], ["run", "--samples", "2"]])
def test_a_net_netx_cannot_build_is_refused_in_one_line(unbuildable_net, command):
    result = subprocess.run(
        [sys.executable, "-m", "lava_qpsnn", "--no-progress", command[0], str(unbuildable_net), *command[1:]],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert "column.net: /layer/1 has bias of shape (32, 1), which netx cannot broadcast" in line, line


def test_a_build_failure_inside_lava_ends_the_run():
    """The same bias given to Lava directly (past the reader): Lava's builder fails in its own process."""
    code = f"""
import numpy as np
import lava_qpsnn
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc import io
from lava.proc.lif.process import LIF
from lava_qpsnn.errors import LavaRuntimeError
from lava_qpsnn.lava.run import run_windows

lif = LIF(shape=(3,), bias_mant=np.ones((3, 1)), vth=10)
sink = io.sink.RingBuffer(shape=(3,), buffer=8)
lif.s_out.connect(sink.a_in)
try:
    run_windows(lif, 2, 4, Loihi2SimCfg(select_tag="fixed_pt"), read=sink.data.get, name="lif", progress=False)
except LavaRuntimeError as exc:
    print("error:", exc)
{EPILOGUE}"""
    result = run_code(code)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert result.stdout.splitlines() == [
        "error: Lava run of lif failed in PyLifModelBitAcc "
        "(ValueError: could not broadcast input array from shape (3,1) into shape (3,))",
        "children left: 0",
    ]


# a model that raises in its 5th time step, in the interpreter the command runs in (Lava forks it)
RAISE_AT_STEP_5 = """
def run_spk(self):
    if self.time_step == 5:
        raise ZeroDivisionError("raised by the test at step 5")
    return original(self)
"""


@pytest.mark.parametrize(
    "command, model",
    [
        (["eval", "--backend", "lava", "--samples", "3"], "lava.proc.lif.models.PyLifResetModelBitAcc"),
        (["run", "--samples", "3"], "lava_qpsnn.lava.processes.readout.PyReadoutModel"),
    ],
)
def test_a_model_raising_inside_lava_ends_the_command(mlp_files, command, model):
    module, cls = model.rsplit(".", 1)
    argv = ["--no-progress", command[0], str(mlp_files[1]), *command[1:]]
    code = f"""
import importlib, sys
import lava_qpsnn
model = getattr(importlib.import_module({module!r}), {cls!r})
original = model.run_spk
{RAISE_AT_STEP_5}
model.run_spk = run_spk
from lava_qpsnn.cli import main
status = main({argv!r})
print("status:", status)
{EPILOGUE}"""
    result = run_code(code)
    line = one_error_line(result)
    assert line == (
        f"lava_qpsnn: error: Lava run of {mlp_files[1].name} failed in {cls} "
        "(ZeroDivisionError: raised by the test at step 5)"
    ), line
    assert result.stdout.splitlines()[-2:] == ["status: 2", "children left: 0"], result.stdout
