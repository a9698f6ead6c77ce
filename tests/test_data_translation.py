"""The Spanish-English loader (verified by spa.txt's sha256), normalisation, the grouped split, Vocab with <bos>."""

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnutils import data

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough

SHARED_ZIP = Path(data.cache_dir()) / "datasets" / "spa-eng.zip"


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home / "datasets"


def test_spa_eng_pairs():
    spanish, english = data.load_spa_eng()
    assert len(spanish) == len(english) == 118_964
    assert (spanish[0], english[0]) == ("Ve.", "Go.")
    assert all(isinstance(s, str) and s for s in spanish[:1000] + english[:1000])


def test_spa_txt_is_extracted_from_the_zip_and_verified(empty_cache):
    empty_cache.mkdir(parents=True)
    shutil.copy(SHARED_ZIP, empty_cache / "spa-eng.zip")
    path = Path(data.spa_eng_path())
    assert path == empty_cache / "spa-eng" / "spa.txt"
    assert data.sha256_of(path) == data.SPA_TXT_SHA256
    assert not list(path.parent.glob("*.partial"))


def test_a_corrupted_spa_txt_is_reported_not_used(empty_cache):
    (empty_cache / "spa-eng").mkdir(parents=True)
    (empty_cache / "spa-eng" / "spa.txt").write_text("Go.\tVe.\n")
    with pytest.raises(data.CorruptedDatasetError, match="spa.txt is corrupted"):
        data.load_spa_eng()
    assert (empty_cache / "spa-eng" / "spa.txt").exists()  # reported, never silently deleted


def test_a_zip_with_the_wrong_text_is_rejected_and_nothing_extracted(empty_cache):
    empty_cache.mkdir(parents=True)
    with zipfile.ZipFile(empty_cache / "spa-eng.zip", "w") as archive:
        archive.writestr("spa-eng/spa.txt", "Go.\tVe.\n")
    with pytest.raises(data.CorruptedDatasetError, match="sha256"):
        data.spa_eng_path()
    assert not (empty_cache / "spa-eng" / "spa.txt").exists()


def test_offline_without_cache_names_file_folder_and_fixes(empty_cache, monkeypatch):
    monkeypatch.setattr(data, "SPA_ENG_ORIGIN", "http://127.0.0.1:9/spa-eng.zip")  # connection refused
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_spa_eng()
    message = str(info.value)
    assert "spa-eng.zip" in message and str(empty_cache) in message and "make data" in message
    assert "KERAS_HOME" in message
    assert not (empty_cache / "spa-eng.zip").exists()


def test_normalize_sentence():
    assert data.normalize_sentence("¿Qué tal,  Tom?") == "¿ qué tal , tom ?"
    assert data.normalize_sentence("¡Hola!\u202fÉl\u00a0viene.") == "¡ hola ! él viene ."
    assert data.normalize_sentence("Don't go.") == "don't go ."
    assert data.normalize_sentence("e\u0301") == "\u00e9"  # composed form
    with pytest.raises(TypeError, match="text"):
        data.normalize_sentence(["a"])


def test_split_pairs_keeps_each_source_sentence_in_one_split():
    rng = np.random.default_rng(0)
    source = [f"s{rng.integers(300)}" for _ in range(1000)]
    target = [f"t{i}" for i in range(1000)]
    (tr_s, tr_t), (va_s, va_t), (te_s, te_t) = data.split_pairs(source, target, n_val=100, n_test=200, seed=1)
    assert len(tr_s) + len(va_s) + len(te_s) == 1000
    assert 200 <= len(te_s) < 200 + 10 and 100 <= len(va_s) < 100 + 10
    assert not (set(tr_s) & set(te_s)) and not (set(tr_s) & set(va_s)) and not (set(va_s) & set(te_s))
    assert sorted(tr_t + va_t + te_t) == sorted(target)
    pairs = dict(zip(target, source))
    assert all(pairs[t] == s for s, t in zip(te_s, te_t))  # pairs stay together
    again = data.split_pairs(source, target, n_val=100, n_test=200, seed=1)
    assert again[2] == (te_s, te_t)  # seeded: the same split every time
    assert data.split_pairs(source, target, n_val=100, n_test=200, seed=2)[2] != (te_s, te_t)


@pytest.mark.parametrize("args, error, word", [
    ((["a", "b"], ["x"], 0, 1), ValueError, "same length"),
    (("ab", "xy", 0, 1), TypeError, "lists"),
    ((["a", "b", "c"], ["x", "y", "z"], -1, 1), ValueError, "n_val"),
    ((["a", "b", "c"], ["x", "y", "z"], 1, 1.5), TypeError, "n_test"),
    ((["a", "b", "c"], ["x", "y", "z"], 2, 1), ValueError, "training"),
])
def test_split_pairs_bad_input(args, error, word):
    with pytest.raises(error, match=word):
        data.split_pairs(*args)


def test_vocab_with_bos():
    vocab = data.Vocab("tom is here tom".split(), bos=True)
    assert vocab.itos[:5] == ["<pad>", "<unk>", "<eos>", "<bos>", "tom"]
    assert vocab.bos_id == 3 and data.Vocab("ab").bos_id is None
    ids = vocab.encode(["tom", "runs"], add_bos=True, add_eos=True)
    assert ids.tolist() == [3, vocab["tom"], 1, 2]
    assert vocab.decode(ids, sep=" ", skip_reserved=True) == "tom"
    assert data.Vocab(["<bos>", "a"]).itos == ["<pad>", "<unk>", "<eos>", "a"]  # never a normal token
    with pytest.raises(ValueError, match="bos=True"):
        data.Vocab("ab").encode("a", add_bos=True)
    with pytest.raises(TypeError, match="bos"):
        data.Vocab("ab", bos=1)
