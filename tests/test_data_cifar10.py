"""CIFAR-10 through torchvision's CIFAR10 class, on a small folder written here in its on-disk format.

The format, by its definition: ``cifar-10-batches-py/`` holds five training batches and one
test batch, each a pickled dict whose ``data`` is uint8 ``N x 3072`` (the red plane, then green,
then blue, each 32 rows of 32) and ``labels`` a list; ``batches.meta`` names the classes.
torchvision checks each file's MD5 before it unpickles it, so the fake files' MD5s replace the
real ones. Its download is replaced too: no test reaches the network.
"""

import hashlib
import pickle
from urllib.error import URLError

import numpy as np
import pytest
from torchvision.datasets import CIFAR10, cifar

from lava_qpsnn.cli import main as qpsnn_main
from lava_qpsnn.data import load_dataset
from lava_qpsnn.data.cifar10 import load_cifar10
from lava_qpsnn.errors import DataError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_batches(folder, monkeypatch) -> None:
    """Five train batches of 2 images and a test batch of 3; image k of the whole set has one
    pixel set: channel k % 3, row k, column 2k, value 10k + 5. Their MD5s become torchvision's."""
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    sums = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for index, name in enumerate(names):
        ks = range(2 * index, 2 * index + (3 if name == "test_batch" else 2))
        data = np.zeros((len(ks), 3072), dtype=np.uint8)
        for row, k in enumerate(ks):
            data[row, (k % 3) * 1024 + k * 32 + 2 * k] = 10 * k + 5
        (batches / name).write_bytes(pickle.dumps({"data": data, "labels": [k % 10 for k in ks]}))
    (batches / "batches.meta").write_bytes(pickle.dumps({"label_names": NAMES}))
    for name in [*names, "batches.meta"]:
        sums[name] = hashlib.md5((batches / name).read_bytes()).hexdigest()
    monkeypatch.setattr(CIFAR10, "train_list", [[name, sums[name]] for name in names[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": sums["batches.meta"]})


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """torchvision's download fails as it does offline; a test may replace it to see it called."""

    def offline(url, root, **kwargs):
        raise URLError("no network here")

    monkeypatch.setattr(cifar, "download_and_extract_archive", offline)


def test_cifar10_from_torchvisions_folder_with_downloads_off(tmp_path, monkeypatch):
    write_batches(tmp_path, monkeypatch)
    train, test = load_cifar10(tmp_path, download=False)
    assert train.images.shape == (10, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int64 and train.num_classes == 10
    assert train.labels.tolist() == list(range(10)) and test.labels.tolist() == [0, 1, 2]
    for images, first in ((train.images, 0), (test.images, 10)):
        for i, image in enumerate(images):
            k = first + i
            assert image[k % 3, k, 2 * k] == np.float32((10 * k + 5) / 255)
            assert np.count_nonzero(image) == 1


def test_cifar10_absent_with_downloads_off_says_what_to_do_in_one_line(tmp_path):
    problem = r"CIFAR-10 is not in .*cifar-10-batches-py .* \(downloads are off\): allow downloads"
    with pytest.raises(DataError, match=problem) as info:
        load_cifar10(tmp_path, download=False)
    assert "\n" not in str(info.value) and "copy torchvision's cifar-10-batches-py folder there" in str(info.value)


def test_a_file_that_does_not_match_torchvisions_checksum_is_refused(tmp_path, monkeypatch):
    write_batches(tmp_path, monkeypatch)
    with (tmp_path / "cifar-10-batches-py" / "data_batch_3").open("ab") as batch:
        batch.write(b"\0")
    with pytest.raises(DataError, match=r"not in .* with the checksums torchvision expects"):
        load_cifar10(tmp_path, download=False)


def test_the_registered_data_set_downloads_through_torchvision_when_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("LAVA_QPSNN_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"\(the download failed: <urlopen error no network here>\): load it again"):
        load_dataset("cifar10")
    fetched = []

    def download(url, root, **kwargs):  # what a reachable site gives: torchvision's folder in the data folder
        fetched.append((url, str(root)))
        write_batches(tmp_path, monkeypatch)

    monkeypatch.setattr(cifar, "download_and_extract_archive", download)
    train, test = load_dataset("cifar10")
    assert fetched == [(CIFAR10.url, str(tmp_path))]  # once: the test split finds it
    assert len(train) == 10 and len(test) == 3


def test_the_command_line_trains_on_three_channels(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAVA_QPSNN_DATA", str(tmp_path / "unused"))  # restored after the test
    write_batches(tmp_path, monkeypatch)
    args = ["--no-progress", "--data-dir", str(tmp_path), "train", "--dataset", "cifar10", "--epochs", "1"]
    assert qpsnn_main([*args, "--arch", "4c3s2-10", "--time-steps", "3", "--out", str(tmp_path / "m.pt")]) == 0
    assert "test accuracy" in capsys.readouterr().out
