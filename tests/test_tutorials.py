"""Every tutorial notebook runs from top to bottom without error (their cells assert
what they claim, e.g. Lava's spikes equal PyTorch's)."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = sorted((Path(__file__).parents[1] / "tutorials").glob("*.ipynb"))


def test_the_readme_lists_every_tutorial_and_no_other():
    """What runs below is what the README offers: a notebook added, renamed or removed without it fails here."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    listed = set(re.findall(r"\(tutorials/([^)/]+\.ipynb)\)", readme))
    assert TUTORIALS and listed == {path.name for path in TUTORIALS}


def _need_data(notebook: Path) -> None:
    """The downloaded data sets a notebook names (its code quotes them) are fetched on first use and cached:
    skip where one can be neither read nor fetched."""
    from lava_qpsnn.data import load_dataset
    from lava_qpsnn.errors import DataError

    code = "".join(cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code")
    for name in sorted(set(re.findall(r"[\"'](mnist|fashion-mnist|cifar10)[\"']", code))):
        try:
            load_dataset(name)
        except DataError as exc:
            pytest.skip(f"{name} is neither cached nor fetchable here: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize("notebook", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs(notebook, tmp_path, monkeypatch):
    _need_data(notebook)
    monkeypatch.setenv("LAVA_QPSNN_FAST", "1")  # tutorials that evaluate a whole test set take a part of it
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
