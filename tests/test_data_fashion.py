"""Fashion-MNIST offline, and the two readers it needs: idx files and Debian packages.

Nothing here touches the network or the real package: the idx files and the ``.deb`` are
written here byte by byte from their formats' definitions, and ``apt-get`` is a fake on
``PATH`` that logs its arguments and either copies the fake package into its working folder
or fails as it does offline.
"""

import gzip
import hashlib
import io
import os
import stat
import struct
import tarfile

import numpy as np
import pytest

from lava_qpsnn.cli import main as qpsnn_main
from lava_qpsnn.data import fashion_mnist, load_dataset
from lava_qpsnn.data.debian import deb_files
from lava_qpsnn.data.idx import read_idx
from lava_qpsnn.errors import DataError


def idx_bytes(values: list[int], dims: tuple[int, ...], magic: bytes = b"\0\0\x08") -> bytes:
    """An idx file by hand: magic, dimension count, big-endian uint32 sizes, the bytes."""
    return magic + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(values)


# --- the idx reader


def test_an_idx_file_reads_in_c_order():
    images = read_idx(gzip.compress(idx_bytes(list(range(12)), (2, 2, 3))), "x.gz", (2, 3))
    assert images.dtype == np.uint8 and images.shape == (2, 2, 3)
    assert images[1, 0, 2] == 8 and images[0, 1, 0] == 3  # 1*6 + 0*3 + 2, 0*6 + 1*3 + 0
    labels = read_idx(gzip.compress(idx_bytes([7, 0, 9], (3,))), "y.gz", ())
    assert labels.tolist() == [7, 0, 9]


@pytest.mark.parametrize(
    "packed, problem",
    [
        (b"not gzip at all", r"not gzip data"),
        (gzip.compress(idx_bytes(list(range(12)), (2, 2, 3)))[:-9], r"not gzip data"),  # the archive cut short
        (gzip.compress(idx_bytes(list(range(12)), (2, 2, 3), magic=b"\0\0\x0d")), r"magic number 00000d03"),
        (gzip.compress(idx_bytes(list(range(12)), (2, 2, 3), magic=b"PK\x08")), r"magic number 504b0803"),
        (gzip.compress(b""), r"magic number missing"),
        (gzip.compress(idx_bytes(list(range(12)), (12,))), r"1 dimensions, expected 3"),
        (gzip.compress(idx_bytes(list(range(12)), (3, 2, 2))), r"entries of shape \(2, 2\), expected \(2, 3\)"),
        (gzip.compress(idx_bytes(list(range(11)), (2, 2, 3))), r"27 bytes where the header \(2, 2, 3\) announces 28"),
        (gzip.compress(idx_bytes(list(range(13)), (2, 2, 3))), r"29 bytes where the header \(2, 2, 3\) announces 28"),
        (gzip.compress(b"\0\0\x08\x03\0\0\0\x02"), r"the header stops after 8 bytes"),
        (gzip.compress(idx_bytes([], (2**20, 2, 3))), r"16 bytes where the header \(1048576, 2, 3\) announces 6291472"),
    ],
)
def test_a_malformed_idx_file_is_refused_in_one_line(packed, problem):
    with pytest.raises(DataError, match=rf"^x\.gz is not a valid idx file \(.*{problem}.*\): replace it") as info:
        read_idx(packed, "x.gz", (2, 3))
    assert "\n" not in str(info.value)


# --- fake Fashion-MNIST files: 3 train and 2 test images, image i has pixel 7*i+1 set to 10*i+seed


def fake_idx_files(seed: int = 1) -> dict[str, bytes]:
    def images(count: int, first: int) -> bytes:
        pixels = np.zeros((count, 28 * 28), dtype=np.uint8)
        for i in range(first, first + count):
            pixels[i - first, 7 * i + 1] = 10 * i + seed
        return gzip.compress(idx_bytes(pixels.flatten().tolist(), (count, 28, 28)))

    return {
        "train-images-idx3-ubyte.gz": images(3, 0),
        "train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes([9, 0, 4], (3,))),
        "t10k-images-idx3-ubyte.gz": images(2, 3),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes([1, 8], (2,))),
    }


def write_folder(folder, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, packed in files.items():
        (folder / name).write_bytes(packed)


def ar_member(name: str, data: bytes) -> bytes:
    """One member of an ar archive as dpkg-deb writes it: 60-byte header, data, padded to even."""
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    assert len(header) == 60
    return header + data + b"\n" * (len(data) % 2)


def tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def fake_deb(files: dict[str, bytes], data_member: str = "data.tar.xz") -> bytes:
    """A package shaped like Debian's: debian-binary, control.tar.xz, data.tar.xz with the files under ./usr/..."""
    data = tar_xz({f"./usr/share/datasets/fashion-mnist/{name}": packed for name, packed in files.items()})
    control = tar_xz({"./control": b"Package: dataset-fashion-mnist\n"})
    members = ar_member("debian-binary", b"2.0\n") + ar_member("control.tar.xz", control)
    return b"!<arch>\n" + members + ar_member(data_member, data)


def expected_pixels(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The fake files' images as floats, written out by hand from fake_idx_files' rule."""
    train, test = np.zeros((3, 784), np.float32), np.zeros((2, 784), np.float32)
    train[0, 1], train[1, 8], train[2, 15] = (np.float32(v / 255) for v in (seed, 10 + seed, 20 + seed))
    test[0, 22], test[1, 29] = np.float32((30 + seed) / 255), np.float32((40 + seed) / 255)
    return train.reshape(3, 1, 28, 28), test.reshape(2, 1, 28, 28)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A data folder, an absent system folder and a fake apt-get that fails unless given a package to copy."""
    data, system, bin_dir = tmp_path / "data", tmp_path / "system" / "fashion-mnist", tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text(
        "#!/bin/sh\n"
        f'echo "$PWD $*" >> {tmp_path}/apt.log\n'
        f'if [ -f {tmp_path}/package.deb ]; then cp {tmp_path}/package.deb "./{fashion_mnist.DEB}"; exit 0; fi\n'
        'echo "E: Failed to fetch: no network here" >&2; exit 100\n'
    )
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LAVA_QPSNN_DATA", str(data))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_FOLDER", system)
    return tmp_path


def offer_package(places, deb: bytes, monkeypatch) -> None:
    """What apt-get download will fetch, recorded as the expected package."""
    (places / "package.deb").write_bytes(deb)
    monkeypatch.setattr(fashion_mnist, "DEB_SHA256", hashlib.sha256(deb).hexdigest())


def assert_fake_splits(train, test, seed: int = 1) -> None:
    train_images, test_images = expected_pixels(seed)
    np.testing.assert_array_equal(train.images, train_images)
    np.testing.assert_array_equal(test.images, test_images)
    assert train.labels.tolist() == [9, 0, 4] and test.labels.tolist() == [1, 8]
    assert train.images.dtype == np.float32 and train.labels.dtype == np.int64 and train.num_classes == 10


# --- Fashion-MNIST: where it is found


def test_fashion_mnist_from_a_folder_of_idx_files_then_from_its_cache(places):
    write_folder(places / "data" / "fashion-mnist", fake_idx_files())
    assert_fake_splits(*load_dataset("fashion-mnist"))
    assert not (places / "apt.log").exists()  # a folder of files needs no package
    for path in (places / "data" / "fashion-mnist").iterdir():
        path.unlink()  # the pixels are kept in the data folder, read without the idx files
    (places / "data" / "fashion-mnist").rmdir()
    assert_fake_splits(*load_dataset("fashion-mnist"))
    assert not (places / "apt.log").exists()


def test_the_data_folder_comes_before_where_the_distribution_installs_the_files(places):
    write_folder(fashion_mnist.SYSTEM_FOLDER, fake_idx_files(seed=2))
    assert_fake_splits(*fashion_mnist.load_fashion_mnist(places / "a"), seed=2)
    write_folder(places / "b" / "fashion-mnist", fake_idx_files(seed=3))
    assert_fake_splits(*fashion_mnist.load_fashion_mnist(places / "b"), seed=3)


def test_fashion_mnist_from_debians_package_fetched_with_apt_get_into_the_data_folder(places, monkeypatch):
    offer_package(places, fake_deb(fake_idx_files()), monkeypatch)
    assert_fake_splits(*load_dataset("fashion-mnist"))
    data = places / "data"
    version = "0.0~git20200523.55506a9-1"
    assert (places / "apt.log").read_text() == f"{data} download dataset-fashion-mnist={version}\n"
    assert (data / f"dataset-fashion-mnist_{version}_all.deb").is_file()
    assert (data / "fashion-mnist.npz").is_file()


def test_a_package_already_in_the_data_folder_is_read_without_apt_get(places, monkeypatch):
    deb = fake_deb(fake_idx_files())
    monkeypatch.setattr(fashion_mnist, "DEB_SHA256", hashlib.sha256(deb).hexdigest())
    (places / "data").mkdir()
    (places / "data" / fashion_mnist.DEB).write_bytes(deb)
    assert_fake_splits(*load_dataset("fashion-mnist"))
    assert not (places / "apt.log").exists()


def test_a_package_with_another_checksum_is_refused_before_it_is_read(places, monkeypatch):
    offer_package(places, fake_deb(fake_idx_files()), monkeypatch)
    monkeypatch.setattr(fashion_mnist, "DEB_SHA256", "39e172fe" + "0" * 56)
    monkeypatch.setattr(fashion_mnist, "deb_files", lambda *args: pytest.fail("read an unverified package"))
    with pytest.raises(DataError, match=r"has SHA-256 .*, not the expected 39e172fe0000\.\.\.: delete it") as info:
        load_dataset("fashion-mnist")
    assert "\n" not in str(info.value)
    assert not (places / "data" / "fashion-mnist.npz").exists()


@pytest.mark.parametrize("apt_get", ["fails", "absent"])
def test_nowhere_and_not_fetchable_names_both_ways_in_one_line(places, monkeypatch, apt_get):
    if apt_get == "absent":
        monkeypatch.setenv("PATH", str(places / "empty"))
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert "\n" not in message
    data = places / "data"
    assert (
        "put the four idx files (train-images-idx3-ubyte.gz, " in message and f"in {data / 'fashion-mnist'}" in message
    )
    assert f"`apt-get download dataset-fashion-mnist=0.0~git20200523.55506a9-1` in {data}" in message
    assert (places / "apt.log").exists() == (apt_get == "fails")
    assert not (data / "fashion-mnist.npz").exists()


def test_a_folder_missing_some_files_names_them(places):
    files = fake_idx_files()
    del files["t10k-labels-idx1-ubyte.gz"]
    write_folder(places / "data" / "fashion-mnist", files)
    with pytest.raises(DataError, match=r"fashion-mnist lacks t10k-labels-idx1-ubyte\.gz: put all four"):
        load_dataset("fashion-mnist")


def test_a_malformed_idx_file_in_the_folder_is_refused_and_nothing_is_cached(places):
    files = fake_idx_files()
    files["train-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes([0] * 784 * 3, (3, 28, 28))[:-5])
    write_folder(places / "data" / "fashion-mnist", files)
    problem = r"train-images-idx3-ubyte\.gz is not a valid idx file \(2363 bytes where the header \(3, 28, 28\) "
    problem += r"announces 2368\)"
    with pytest.raises(DataError, match=problem):
        load_dataset("fashion-mnist")
    assert not (places / "data" / "fashion-mnist.npz").exists()


def test_images_and_labels_that_do_not_pair_are_refused(places):
    files = fake_idx_files()
    files["t10k-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes([1, 8, 3], (3,)))
    write_folder(places / "data" / "fashion-mnist", files)
    with pytest.raises(DataError, match=r"test files hold 2 images but 3 labels"):
        load_dataset("fashion-mnist")


def test_the_command_line_finds_fashion_mnist_in_its_data_dir(places, capsys, tmp_path):
    given = tmp_path / "given"
    train = ["--no-progress", "train", "--dataset", "fashion-mnist", "--epochs", "1", "--arch", "10"]
    assert qpsnn_main(["--data-dir", str(given), *train, "--out", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"Fashion-MNIST is neither in {given / 'fashion-mnist'}" in err
    write_folder(given / "fashion-mnist", fake_idx_files())
    assert qpsnn_main([*train, "--time-steps", "2", "--out", str(tmp_path / "m.pt"), "--data-dir", str(given)]) == 0
    assert "test accuracy" in capsys.readouterr().out and (given / "fashion-mnist.npz").is_file()


# --- the package reader on broken packages (their checksums are whatever they are: deb_files is called directly)


@pytest.mark.parametrize(
    "package, problem",
    [
        (b"<html>a proxy's error page</html>", r"no ar magic"),
        (fake_deb(fake_idx_files())[:-100], r"truncated"),
        (b"!<arch>\n" + b"x" * 70, r"a damaged member header"),
        (fake_deb(fake_idx_files(), data_member="nodata.tar.xz"), r"no data.tar member"),
        (fake_deb({"train-images-idx3-ubyte.gz": b"", "t10k-images-idx3-ubyte.gz": b""}), r"it lacks usr/share/"),
    ],
)
def test_a_broken_package_is_refused_in_one_line(tmp_path, package, problem):
    deb = tmp_path / "p.deb"
    deb.write_bytes(package)
    wanted = {f"usr/share/datasets/fashion-mnist/{name}" for name in fake_idx_files()}
    with pytest.raises(DataError, match=rf"p\.deb is not a readable Debian package \({problem}.*\): delete it") as info:
        deb_files(deb, wanted)
    assert "\n" not in str(info.value)


def test_a_package_with_an_odd_sized_member_reads_past_its_padding(tmp_path):
    deb = tmp_path / "p.deb"
    deb.write_bytes(
        b"!<arch>\n"
        + ar_member("debian-binary", b"2.0\n")
        + ar_member("odd", b"abc")
        + ar_member("data.tar.xz", tar_xz({"./usr/x": b"payload"}))
    )
    assert deb_files(deb, {"usr/x"}) == {"usr/x": b"payload"}
