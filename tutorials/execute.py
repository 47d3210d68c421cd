"""Run tutorial notebooks top to bottom and save them with their outputs (``make tutorials``).

Each runs in a fresh temporary folder, so the files a tutorial writes stay out of the
repository, and the time it took is printed: every tutorial is meant to finish in a few minutes
on 2 CPU cores.

    .venv/bin/python tutorials/execute.py [NOTEBOOK ...]      (default: every tutorial)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(notebook: Path) -> float:
    """Execute ``notebook`` in place; return the seconds it took."""
    nb = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, notebook)
    return seconds


def main() -> int:
    notebooks = [Path(p) for p in sys.argv[1:]] or sorted(Path(__file__).parent.glob("*.ipynb"))
    for notebook in notebooks:
        print(f"{notebook.name}: {execute(notebook):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
