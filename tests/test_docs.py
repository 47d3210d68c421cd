"""`make docs`: the API reference builds from the docstrings without a warning and covers the public API;
the README's Python example runs as written; every link in the README and the guide leads to a file."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import lava_qpsnn
import netx_export

BUILD = Path(__file__).parents[1] / "docs" / "build_api.py"


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path):
    result = subprocess.run([sys.executable, str(BUILD), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "warn" not in result.stderr.lower(), result.stderr[-3000:]
    pages = ("index.html", "lava_qpsnn/export/writer.html", "lava_qpsnn/training/distributed.html")
    for page in (*pages, "lava_qpsnn/lava.html", "lava_qpsnn/sim/engine.html"):
        assert (tmp_path / page).is_file(), page
    package = (tmp_path / "lava_qpsnn.html").read_text()
    assert all(f'id="{name}"' in package for name in lava_qpsnn.__all__)
    exporter = (tmp_path / "netx_export.html").read_text()
    assert all(f'id="{name}"' in exporter for name in netx_export.__all__)


ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"## From Python\n\n```python\n(.*?)```", readme, re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})  # noqa: S102 - the example asserts Lava == PyTorch itself
    assert (tmp_path / "model.net").is_file()


def test_links_in_readme_and_guide_lead_to_files():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken


def test_readme_and_guide_point_nowhere_outside_the_repository():
    outside = [
        f"{page.relative_to(ROOT)}: {hit}"
        for page in PAGES
        for hit in re.findall(r"\.\./shared|https?://\S+", page.read_text())
    ]
    assert not outside
