"""`make docs`: the API reference builds from the docstrings without a warning and covers the public API."""

import subprocess
import sys
from pathlib import Path

import lava_qpsnn
import netx_export

BUILD = Path(__file__).parents[1] / "docs" / "build_api.py"


def test_api_reference_builds_without_warnings(tmp_path):
    result = subprocess.run([sys.executable, str(BUILD), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warn" not in result.stderr.lower(), result.stderr[-3000:]
    for page in ("index.html", "lava_qpsnn/export.html", "lava_qpsnn/distributed.html", "lava_qpsnn/sim/engine.html"):
        assert (tmp_path / page).is_file(), page
    package = (tmp_path / "lava_qpsnn.html").read_text()
    assert all(f'id="{name}"' in package for name in lava_qpsnn.__all__)
    exporter = (tmp_path / "netx_export.html").read_text()
    assert all(f'id="{name}"' in exporter for name in netx_export.__all__)
