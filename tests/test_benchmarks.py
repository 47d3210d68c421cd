"""Every benchmark script runs in its smoke setting: a change that breaks one fails here, not months later.

Each runs as a user runs it (``python benchmarks/x.py --smoke``), writing into a temporary folder,
never into benchmarks/results/.
"""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
SMOKE = {"sim_speed.py": ["--repeats", "1"]}  # script -> its options besides --smoke and --out


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_benchmark_runs_in_its_smoke_setting(script, tmp_path):
    out = tmp_path / "result.md"
    command = [sys.executable, str(BENCHMARKS / script), "--smoke", *SMOKE[script], "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_text().startswith("# ")
