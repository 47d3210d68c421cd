"""Every benchmark script runs in its smoke setting: a change that breaks one fails here, not months later.

Each runs as a user runs it (``python benchmarks/x.py --smoke --out ...``), on one thread, from an
empty folder: everything it writes must be its result file or named after it (a result folder, a
plot), never a default path such as benchmarks/results/ or models/. Its data folder is empty and
the package index is off, so a smoke run that reached for MNIST would fail here instead of
fetching it.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
HELPERS = {"netx_mutants.py", "runcache.py", "smoke.py"}  # modules the scripts import, not scripts
PEER_MISSING = not all(importlib.util.find_spec(name) for name in ("snntorch", "brevitas"))
SLOW = pytest.mark.slow  # over ~10 s on 2 cores
# script -> its marks
SMOKE = {
    "ablation.py": [SLOW],
    "batchnorm.py": [SLOW],
    "classifier_speed.py": [SLOW],
    "ddp_speed.py": [SLOW],
    "encoding.py": [SLOW],
    "fuzz_netx.py": [],
    "shipped_models.py": [SLOW],
    "nir_snntorch.py": [
        SLOW,
        pytest.mark.skipif(PEER_MISSING, reason="the peer extra is not installed (make install adds it)"),
    ],
    "peer_snntorch.py": [
        SLOW,
        pytest.mark.skipif(PEER_MISSING, reason="the peer extra is not installed (make install adds it)"),
    ],
    "pruning.py": [SLOW],
    "qat_speed.py": [],
    "quantization.py": [SLOW],
    "recipe.py": [SLOW],
    "report_pruned.py": [SLOW],
    "sim_speed.py": [SLOW],
    "stream_memory.py": [SLOW],
    "train_speed.py": [],
}


def run_script(script: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(BENCHMARKS / script), "--smoke", "--out", str(folder / "result.md")]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder, env=env)


def test_every_script_has_a_smoke_run():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - HELPERS
    assert scripts == set(SMOKE)


@pytest.mark.parametrize("script", [pytest.param(script, marks=marks) for script, marks in SMOKE.items()])
def test_benchmark_runs_in_its_smoke_setting(script, tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LAVA_QPSNN_DATA": str(data), "PIP_NO_INDEX": "1"}
    result = run_script(script, tmp_path, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "result.md").read_text().startswith("# ")
    assert not data.exists(), "the smoke run looked for a downloaded data set"
    assert all(path.name.startswith("result") for path in tmp_path.iterdir()), sorted(tmp_path.iterdir())


def test_the_peer_benchmark_without_its_extra_says_how_to_install_it(tmp_path):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in ("snntorch", "brevitas"):  # shadow the installed packages, if any
        (hidden / f"{name}.py").write_text(f"raise ImportError('no {name}')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))}
    result = run_script("peer_snntorch.py", tmp_path, env)
    assert result.returncode == 2
    assert result.stderr == "the peer packages are missing: .venv/bin/python -m pip install -e '.[peer]'\n"
    assert not (tmp_path / "result.md").exists()


@SLOW
def test_shipped_models_records_a_validation_setting_once(tmp_path):
    """``--validation`` keeps one record per setting tried; a second run reads it back instead of training again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LAVA_QPSNN_DATA": str(tmp_path / "data"), "PIP_NO_INDEX": "1"}
    command = [sys.executable, str(BENCHMARKS / "shipped_models.py"), "--smoke", "--validation"]
    command += ["--out", str(tmp_path / "result.md")]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    (record,) = (tmp_path / "result").glob("digits-smoke-validation/train-*.json")
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "-m lava_qpsnn train" not in again.stdout.split("# The shipped models")[0]  # nothing was trained
    table = (tmp_path / "result.md").read_text()
    assert "## digits-smoke: settings tried on the validation split" in table
    assert "--validation 0.1` (the shipped model's setting)" in table
    assert "validation accuracy" in table and record.exists()
