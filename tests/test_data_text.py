import numpy as np
import pytest

from nnutils import data

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def test_vocab_reserved_tokens_and_order():
    vocab = data.Vocab("abracadabra")
    assert vocab.itos[:3] == ["<pad>", "<unk>", "<eos>"]
    assert (vocab.pad_id, vocab.unk_id, vocab.eos_id) == (0, 1, 2)
    assert vocab.itos[3:] == ["a", "b", "r", "c", "d"]  # most frequent first, ties in sorted order
    assert len(vocab) == 8 and "a" in vocab and "z" not in vocab
    assert vocab["a"] == 3 and vocab["z"] == vocab.unk_id


def test_vocab_encode_decode_round_trip():
    vocab = data.Vocab("to be or not to be".split())
    ids = vocab.encode(["to", "be", "or", "what"], add_eos=True)
    assert ids.dtype == np.int32 and ids.tolist() == [vocab["to"], vocab["be"], vocab["or"], 1, 2]
    assert vocab.decode(ids) == ["to", "be", "or", "<unk>", "<eos>"]
    assert vocab.decode(ids, sep=" ", skip_reserved=True) == "to be or"
    chars = data.Vocab("hello world")
    assert chars.decode(chars.encode("hello"), sep="") == "hello"
    assert chars.encode("").shape == (0,) and chars.decode([]) == []


def test_vocab_min_freq_and_max_size():
    tokens = ["a"] * 5 + ["b"] * 3 + ["c"] * 1
    assert data.Vocab(tokens, min_freq=2).itos[3:] == ["a", "b"]
    assert data.Vocab(tokens, max_size=1).itos[3:] == ["a"]
    assert data.Vocab(tokens, min_freq=2).encode(["c"]).tolist() == [1]
    assert data.Vocab(["<unk>", "x", "<pad>"]).itos == ["<pad>", "<unk>", "<eos>", "x"]  # reserved not doubled


def test_vocab_one_hot():
    vocab = data.Vocab("abc")
    hot = vocab.one_hot(vocab.encode("cab"))
    assert hot.shape == (3, 6) and hot.dtype == np.float32
    assert np.array_equal(hot.argmax(axis=1), vocab.encode("cab")) and np.all(hot.sum(axis=1) == 1)
    assert vocab.one_hot(np.zeros((2, 4), int)).shape == (2, 4, 6)


@pytest.mark.parametrize("call, error, argument", [
    (lambda: data.Vocab(5), TypeError, "tokens"),
    (lambda: data.Vocab(b"bytes"), TypeError, "tokens must be a string or an iterable of string tokens, got bytes"),
    (lambda: data.Vocab(["a", 3]), TypeError, "tokens"),
    (lambda: data.Vocab("abc", min_freq=0), ValueError, "min_freq"),
    (lambda: data.Vocab("abc", min_freq=1.5), ValueError, "min_freq"),
    (lambda: data.Vocab("abc", max_size=-1), ValueError, "max_size"),
    (lambda: data.Vocab("abc").encode(3), TypeError, "tokens"),
    (lambda: data.Vocab("abc").encode(["a", None]), TypeError, "tokens"),
    (lambda: data.Vocab("abc").decode([0, 6]), ValueError, "ids"),
    (lambda: data.Vocab("abc").decode([-1]), ValueError, "ids"),
    (lambda: data.Vocab("abc").decode([[1, 2]]), ValueError, "ids"),
    (lambda: data.Vocab("abc").decode([1.0]), ValueError, "ids"),
    (lambda: data.Vocab("abc").one_hot([7]), ValueError, "ids"),
    (lambda: data.Vocab("abc").one_hot([0.5]), ValueError, "ids"),
    (lambda: data.shakespeare_split(123), TypeError, "text"),
    (lambda: data.shakespeare_split("abcdef", train_fraction=1.0), ValueError, "train_fraction"),
    (lambda: data.shakespeare_split("abcdef", train_fraction="0.9"), ValueError, "train_fraction"),
    (lambda: data.train_test_split([1], [1]), ValueError, "x"),
    (lambda: data.train_test_split([1, 2, 3], [1, 2]), ValueError, "y"),
    (lambda: data.train_test_split([1, 2, 3], [1, 2, 3], test_fraction=0), ValueError, "test_fraction"),
    (lambda: data.lm_windows([0, 1, 2], 3), ValueError, "ids"),
    (lambda: data.lm_windows(np.zeros((2, 5), int), 2), ValueError, "ids"),
    (lambda: data.lm_windows([0.5, 1.5, 2.5], 1), ValueError, "ids"),
    (lambda: data.lm_windows([0, 1, 2], 0), ValueError, "seq_len"),
    (lambda: data.lm_windows([0, 1, 2], 1, stride=0), ValueError, "stride"),
])
def test_bad_input_names_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


def test_shakespeare_split_like_nanogpt():
    train, val = data.shakespeare_split()
    assert len(train) == 1_003_854 and len(val) == 111_540  # int(0.9 * 1,115,394)
    assert train.startswith("First Citizen:") and train + val == data.load_shakespeare()
    assert data.shakespeare_split("abcdefghij") == ("abcdefghi", "j")


def test_lm_windows():
    x, y = data.lm_windows(np.arange(11), 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    x, y = data.lm_windows(np.arange(6), 3, stride=1)
    assert x.dtype == y.dtype == np.int32 and len(x) == 3 and np.array_equal(x[:, 1:], y[:, :-1])


def test_movie_reviews_counts_and_encoding():
    texts, labels = data.load_movie_reviews()
    assert texts.shape == labels.shape == (10662,) and labels.dtype == np.int32
    assert (labels == 1).sum() == 5331 and (labels == 0).sum() == 5331 and labels[0] == 1 and labels[-1] == 0
    assert texts[0].startswith("the rock is destined to be the 21st century's new")
    assert texts[5331] == "simplistic , silly and tedious ."
    joined = "\n".join(texts)
    assert "\u0085" not in joined and "\r" not in joined  # decoded as cp1252, not Latin-1
    assert "\u2026" in joined and "\u00e9" in joined  # byte 0x85 is an ellipsis, 0xe9 an e-acute
    assert all(t and t == t.strip() for t in texts)


def test_train_test_split_is_fixed_and_seeded():
    x, y = np.arange(10662), np.arange(10662) % 2
    (x_train, y_train), (x_test, y_test) = data.train_test_split(x, y)
    assert len(x_test) == 1066 and len(x_train) == 9596
    assert sorted(np.concatenate([x_train, x_test]).tolist()) == x.tolist()
    assert np.array_equal(y_test, x_test % 2)
    (_, _), (again, _) = data.train_test_split(x, y)
    (_, _), (other, _) = data.train_test_split(x, y, seed=1)
    assert np.array_equal(x_test, again) and not np.array_equal(x_test, other)


def test_movie_reviews_offline_without_cache(tmp_path, monkeypatch):
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    fname, _, sha, subdir = data.FILES["rt-polaritydata"]
    monkeypatch.setitem(data.FILES, "rt-polaritydata", (fname, "http://127.0.0.1:9/", sha, subdir))  # refused
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.load_movie_reviews()
    message = str(error.value)
    assert fname in message and str(home / "datasets") in message and "make data" in message
    assert not (home / subdir / fname).exists()


def test_movie_reviews_corrupted_archive_is_reported(tmp_path, monkeypatch):
    home = tmp_path / "keras"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "rt-polaritydata.tar.gz").write_bytes(b"not the archive")
    monkeypatch.setenv("KERAS_HOME", str(home))
    with pytest.raises(data.CorruptedDatasetError, match="rt-polaritydata.tar.gz"):
        data.load_movie_reviews()
