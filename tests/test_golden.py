"""The shipped model: its checkpoint, exported again, gives the committed ``.net`` value for value (offline)."""

from pathlib import Path

import h5py
import numpy as np

from lava_qpsnn.training.checkpoint import load_checkpoint
from netx_export import export_netx

SHIPPED = Path(__file__).parents[1] / "models" / "mnist" / "mnist-4bit-svs50"


def _contents(path: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Every dataset (``/layer/i/...``, ``/simulation/...``) and every root attribute (our metadata)."""
    datasets = {}

    def read(name: str, item: h5py.Group | h5py.Dataset) -> None:  # returning anything else would stop the visit
        if isinstance(item, h5py.Dataset):
            datasets[name] = item[()]

    with h5py.File(path, "r") as handle:
        handle.visititems(read)
        return datasets, dict(handle.attrs)


def test_the_shipped_checkpoint_exports_to_the_committed_file(tmp_path, monkeypatch):
    """No data set is read: this network's layers stay inside Lava's 24-bit state in the worst case, so export
    measures nothing on test samples (MNIST would be fetched from the registry)."""
    from lava_qpsnn.data import mnist

    def offline():
        raise AssertionError("export read MNIST: this test runs offline")

    monkeypatch.setattr(mnist, "load_mnist", offline)
    export_netx(load_checkpoint(SHIPPED.with_suffix(".pt")), tmp_path / "again.net")
    committed, committed_attrs = _contents(SHIPPED.with_suffix(".net"))
    again, again_attrs = _contents(tmp_path / "again.net")
    assert sorted(again) == sorted(committed)
    assert {name.split("/")[1] for name in committed if name.startswith("layer/")} == {"0", "1", "2", "3", "4"}
    for name, value in committed.items():
        assert np.asarray(again[name]).dtype == np.asarray(value).dtype, name
        np.testing.assert_array_equal(again[name], value, err_msg=name)
    assert again_attrs == committed_attrs
