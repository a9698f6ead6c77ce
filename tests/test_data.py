import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnutils import data

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def test_mnist_is_the_original_lecun_data():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_subsets():
    (x_train, y_train), (x_test, y_test) = data.load_mnist(n_train=100, n_test=10)
    assert x_train.shape == (100, 28, 28) and y_train.shape == (100,) and x_test.shape == (10, 28, 28)


@pytest.mark.parametrize("kwargs", [dict(n_train=0), dict(n_test=10001), dict(n_train=1.5), dict(n_train="all")])
def test_mnist_bad_subset_names_the_argument(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        data.load_mnist(**kwargs)


def test_fashion_mnist_through_keras():
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(n_train=50)
    assert x_train.shape == (50, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_test.max() == 9 and len(data.FASHION_CLASSES) == 10


def test_shakespeare_text():
    text = data.load_shakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")


def test_fetch_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        data.fetch("imdb")


def _idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x.gz"
    path.write_bytes(_idx_bytes(array))
    np.testing.assert_array_equal(data.read_idx(path), array)


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(ValueError, match="magic number"):
        data.read_idx(path)
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2])))  # says 9 bytes, holds 2
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(path)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_offline_without_cache_explains_both_fixes(empty_cache, monkeypatch):
    fname, _, sha, subdir = data.FILES["mnist-test-labels"]
    monkeypatch.setitem(data.FILES, "mnist-test-labels", (fname, "http://127.0.0.1:9/", sha, subdir))  # refused
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.fetch("mnist-test-labels")
    message = str(error.value)
    assert fname in message and str(empty_cache / "datasets" / "mnist-idx") in message
    assert "go online" in message and "make data" in message and "KERAS_HOME" in message
    assert not (empty_cache / subdir / fname).exists()


def test_download_is_verified_and_cached(empty_cache, server, monkeypatch):
    root, url = server
    payload = b"hello course\n" * 100
    (root / "hello.txt").write_bytes(payload)
    monkeypatch.setitem(data.FILES, "hello", ("hello.txt", url, hashlib.sha256(payload).hexdigest(), "datasets"))
    path = Path(data.fetch("hello"))
    assert path == empty_cache / "datasets" / "hello.txt" and path.read_bytes() == payload
    (root / "hello.txt").unlink()  # second call is served from the cache
    assert data.fetch("hello") == str(path)


def test_download_with_wrong_hash_leaves_no_file(empty_cache, server, monkeypatch):
    root, url = server
    (root / "evil.txt").write_bytes(b"tampered")
    monkeypatch.setitem(data.FILES, "evil", ("evil.txt", url, "0" * 64, "datasets"))
    with pytest.raises(data.DatasetUnavailableError, match="evil.txt"):
        data.fetch("evil")
    assert not (empty_cache / "datasets" / "evil.txt").exists()


def test_corrupted_cached_file_is_reported_not_used(empty_cache):
    fname, origin, sha, subdir = data.FILES["mnist-test-labels"]
    (empty_cache / subdir).mkdir(parents=True)
    shutil.copy(data.__file__, empty_cache / subdir / fname)  # a file with the wrong content
    with pytest.raises(data.CorruptedDatasetError) as error:
        data.fetch("mnist-test-labels")
    message = str(error.value)
    assert fname in message and sha in message and "Delete it" in message


def test_sha256_of_known_bytes(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert data.sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_fetch_all_verifies_every_file(capsys):
    data.fetch_all()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(data.FILES) + 1 and all(line.startswith("ok  ") for line in lines)  # + spa-eng
    assert lines[-1].split()[1] == "spa-eng" and lines[-1].endswith("spa.txt")


def test_cache_dir_follows_keras_home(empty_cache):
    assert data.cache_dir() == empty_cache and empty_cache.is_dir()
