"""Notebook 06 helpers: fill-in-the-blank windows (data.blank_windows)."""

import numpy as np
import pytest

from nnutils import data

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def test_blank_windows_hides_the_centre_and_returns_it():
    ids = np.arange(10, 30)
    x, y = data.blank_windows(ids, context=3, mask_id=99)
    assert x.shape == (len(ids) - 6, 7) and y.shape == (len(ids) - 6,)
    assert x.dtype == y.dtype == np.int32
    assert np.all(x[:, 3] == 99)
    np.testing.assert_array_equal(y, ids[3:-3])  # the centre of window i is ids[i + context]
    np.testing.assert_array_equal(x[0, :3], ids[:3])
    np.testing.assert_array_equal(x[0, 4:], ids[4:7])
    np.testing.assert_array_equal(x[-1, 4:], ids[-3:])


def test_blank_windows_stride_and_input_unchanged():
    ids = np.array([5, 6, 7, 8, 9, 10, 11], dtype=np.int64)
    kept = ids.copy()
    x, y = data.blank_windows(ids, context=1, mask_id=0, stride=2)
    np.testing.assert_array_equal(y, [6, 8, 10])
    np.testing.assert_array_equal(x, [[5, 0, 7], [7, 0, 9], [9, 0, 11]])
    np.testing.assert_array_equal(ids, kept)  # the caller's ids are not overwritten by the mask


def test_blank_windows_exactly_one_window():
    x, y = data.blank_windows(np.array([1, 2, 3]), context=1, mask_id=4)
    np.testing.assert_array_equal(x, [[1, 4, 3]])
    np.testing.assert_array_equal(y, [2])


@pytest.mark.parametrize("kwargs, error, argument", [
    (dict(ids=np.zeros((2, 5), dtype=int)), ValueError, "ids"),
    (dict(ids=np.linspace(0, 1, 9)), ValueError, "ids"),
    (dict(ids=np.arange(4)), ValueError, "ids"),
    (dict(context=0), ValueError, "context"),
    (dict(context=1.5), ValueError, "context"),
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=True), ValueError, "stride"),
    (dict(mask_id=-1), ValueError, "mask_id"),
    (dict(mask_id="?"), ValueError, "mask_id"),
])
def test_blank_windows_bad_input(kwargs, error, argument):
    args = dict(ids=np.arange(9), context=2, mask_id=50) | kwargs
    with pytest.raises(error, match=argument):
        data.blank_windows(**args)


# data.WordVectorizer: TextVectorization's words and ids in NumPy

def test_word_vectorizer_vocabulary_by_count_then_word_bytes_reversed():
    vectorizer = data.WordVectorizer(max_tokens=20, sequence_length=4).adapt(["The cat, the DOG!", "a cat"])
    assert vectorizer.vocabulary == ["", "[UNK]", "the", "cat", "dog", "a"]  # ties: "the" > "cat", "dog" > "a"
    got = vectorizer(["a dog and the cat sat", "Cat."])
    np.testing.assert_array_equal(got, [[5, 4, 1, 2], [3, 0, 0, 0]])  # cut to 4 words; unknown -> 1; padded with 0
    assert got.dtype == np.int64


def test_word_vectorizer_max_tokens_counts_padding_and_unknown():
    vectorizer = data.WordVectorizer(max_tokens=3, sequence_length=2).adapt(["b b a a c"])
    assert vectorizer.vocabulary == ["", "[UNK]", "b"]  # one word fits: of the tied a and b, the larger bytes


def test_word_vectorizer_standardizes_like_tensorflow():
    words = data.WordVectorizer(10, 5).words("Don't\tSTOP—Émile's\u00a0café... (yes)")
    # ASCII letters lower-cased only (É stays), Keras's punctuation removed (not the dash —), ASCII whitespace split
    assert words == ["dont", "stop—Émiles\u00a0café", "yes"]


@pytest.mark.parametrize("call, error, words", [
    (lambda: data.WordVectorizer(2, 5), ValueError, "max_tokens must be >= 3"),
    (lambda: data.WordVectorizer(10.0, 5), TypeError, "max_tokens"),
    (lambda: data.WordVectorizer(10, 0), ValueError, "sequence_length"),
    (lambda: data.WordVectorizer(10, 5)(["a"]), ValueError, "adapt"),
    (lambda: data.WordVectorizer(10, 5).adapt("one text"), TypeError, "texts must be a list"),
    (lambda: data.WordVectorizer(10, 5).adapt(["ok", 3]), TypeError, "texts must hold strings"),
    (lambda: data.WordVectorizer(10, 5).adapt(b"one text"), TypeError, "texts must be a list of strings, got bytes"),
    (lambda: data.WordVectorizer(10, 5).adapt(["ok"])(7), TypeError, "texts must be a list of strings, got int"),
])
def test_word_vectorizer_bad_input(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_word_vectorizer_equals_text_vectorization_on_movie_reviews():
    pytest.importorskip("tensorflow")
    import keras

    texts, _ = data.load_movie_reviews()
    fit, other = list(texts[:6000]), list(texts[6000:]) + ["Tabs\tand  UPPER, \u00c9 \u00a0 case—dashes: 'quotes'"]
    theirs = keras.layers.TextVectorization(max_tokens=5000, output_sequence_length=30)
    theirs.adapt(fit)
    ours = data.WordVectorizer(5000, 30).adapt(fit)
    assert ours.vocabulary == theirs.get_vocabulary()
    np.testing.assert_array_equal(ours(other), keras.ops.convert_to_numpy(theirs(other)))
