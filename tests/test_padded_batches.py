"""text.PaddedBatches: padding, length buckets, reshuffling, and model.fit on every backend (notebooks 07, 08)."""

import importlib.util

import keras
import numpy as np
import pytest

from nnutils import config
from nnutils.text import PaddedBatches


def ragged(n, seed=0, low=1, high=20):
    """n id sequences of random lengths in [low, high), each filled with its own index + 1 (0 is padding)."""
    lengths = np.random.default_rng(seed).integers(low, high, n)
    return [np.full(length, i + 1, np.int32) for i, length in enumerate(lengths)]


def examples_of(batch):
    """The example indices in a batch whose second column holds them."""
    return batch[1].tolist()


def test_pads_each_batch_to_its_longest_sequence_and_stacks_number_columns():
    seqs = [[5, 6, 7], [8], [9, 10], [11, 12, 13, 14]]
    batches = PaddedBatches((seqs, [0, 1, 2, 3]), batch_size=2)
    assert len(batches) == 2
    ids, labels = batches[0]
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0]])
    np.testing.assert_array_equal(labels, [0, 1])
    ids, labels = batches[1]
    np.testing.assert_array_equal(ids, [[9, 10, 0, 0], [11, 12, 13, 14]])
    assert ids.dtype == np.int32


def test_to_batch_shapes_what_the_model_receives():
    seqs = [[3, 4, 5], [6, 7]]
    shifted = PaddedBatches((seqs,), 2, to_batch=lambda t: (t[:, :-1], t[:, 1:]))
    inputs, labels = shifted[0]
    np.testing.assert_array_equal(inputs, [[3, 4], [6, 7]])
    np.testing.assert_array_equal(labels, [[4, 5], [7, 0]])


def test_without_shuffle_the_order_is_kept_and_drop_remainder_drops_the_last_partial_batch():
    seqs = ragged(10)
    kept = PaddedBatches((seqs, np.arange(10)), 4)
    assert [examples_of(kept[i]) for i in range(len(kept))] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = PaddedBatches((seqs, np.arange(10)), 4, drop_remainder=True)
    assert [examples_of(b) for b in dropped] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_buckets_group_examples_by_their_longest_sequence():
    n, boundaries = 300, [4, 8, 12]
    src, tgt = ragged(n, seed=1), ragged(n, seed=2)
    batches = PaddedBatches((src, np.arange(n), tgt), 16, buckets=boundaries, shuffle=True, seed=3)
    longest = np.maximum([len(s) for s in src], [len(t) for t in tgt])
    bucket = np.searchsorted(boundaries, longest, side="right")  # < 4, [4, 8), [8, 12), >= 12
    seen = []
    for b in batches:
        members = examples_of(b)
        assert len(set(bucket[members])) == 1, "a batch mixes buckets"
        assert b[0].shape[1] == max(len(src[i]) for i in members)
        seen += members
    assert sorted(seen) == list(range(n))  # every example once per epoch
    expected_batches = sum(-(-int(np.sum(bucket == k)) // 16) for k in range(len(boundaries) + 1))
    assert len(batches) == expected_batches


def test_every_epoch_draws_a_new_order_from_the_seed_and_the_epoch():
    def epochs(seed, n_epochs=3):
        batches = PaddedBatches((ragged(64), np.arange(64)), 8, shuffle=True, seed=seed, buckets=[5, 10])
        out = []
        for _ in range(n_epochs):
            batches.on_epoch_begin()  # as Keras calls it; the first call keeps the first order
            out.append([examples_of(b) for b in batches])
            assert len(batches) == len(out[0])
        return out

    first = epochs(seed=0)
    assert first == epochs(seed=0)  # reproducible
    assert first[0] != first[1] != first[2]  # reshuffled every epoch
    assert first[0] != epochs(seed=1)[0]
    assert all(sorted(sum(e, [])) == list(range(64)) for e in first)
    unshuffled = PaddedBatches((ragged(64), np.arange(64)), 8)
    before = [examples_of(b) for b in unshuffled]
    unshuffled.on_epoch_begin()
    unshuffled.on_epoch_begin()
    assert [examples_of(b) for b in unshuffled] == before


@pytest.mark.skipif(keras.backend.backend() != "tensorflow" or importlib.util.find_spec("tensorflow") is None,
                    reason="compares with tf.data, which needs the TensorFlow backend")
def test_buckets_match_tf_data_bucket_by_sequence_length():
    import tensorflow as tf

    n, boundaries, size = 200, [5, 9, 14], 8
    seqs = ragged(n, seed=4)
    for drop in (False, True):
        ds = tf.data.Dataset.from_tensor_slices((tf.ragged.constant(seqs), np.arange(n)))
        ds = ds.map(lambda s, i: (s, i))  # as in the notebooks: inside map, a ragged row is a plain tensor
        ds = ds.bucket_by_sequence_length(lambda s, _: tf.shape(s)[0], boundaries,
                                          [size] * (len(boundaries) + 1), drop_remainder=drop)
        theirs = sorted(sorted(labels.tolist()) for _, labels in ds.as_numpy_iterator())
        ours = sorted(sorted(examples_of(b)) for b in PaddedBatches((seqs, np.arange(n)), size, buckets=boundaries,
                                                                    drop_remainder=drop))
        assert ours == theirs


def test_model_fit_takes_batches_of_varying_shape_and_reshuffles_between_epochs():
    # the first two batches share their shape (length 3, size 4); later ones differ in length and size
    seqs = [[1, 2, 3]] * 8 + [[4] * 7] * 4 + [[5] * 11] * 3
    labels = np.arange(len(seqs)) % 2
    seen = []

    def to_batch(ids, y):
        seen.append(ids.shape)
        return ids, y

    config.set_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(12, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = PaddedBatches((seqs, labels), 4, buckets=[4, 8], to_batch=to_batch)
    history = model.fit(batches.keras_input(), epochs=2, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    assert {(4, 3), (4, 7), (3, 11)} <= set(seen)
    assert keras.ops.convert_to_numpy(model.evaluate(batches.keras_input(), verbose=0)) >= 0


def test_fit_sees_a_new_order_in_every_epoch_on_every_backend():
    n = 40
    seqs = ragged(n, seed=5, high=9)
    seen = []

    def to_batch(ids, index):
        seen.append(index.tolist())
        return ids, (index % 2).astype(np.int32)

    def batches():
        return PaddedBatches((seqs, np.arange(n)), 8, shuffle=True, seed=2, buckets=[4], to_batch=to_batch)

    twin = PaddedBatches((seqs, np.arange(n)), 8, shuffle=True, seed=2, buckets=[4])
    expected = []
    for _ in range(2):
        twin.on_epoch_begin()
        expected += [examples_of(b) for b in twin]
    seen.clear()
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(64, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(batches().keras_input(), epochs=2, verbose=0, shuffle=False)
    assert expected[0] != expected[len(expected) // 2]  # the two epochs differ
    assert seen[-len(expected):] == expected  # after any batch Keras reads first (JAX: to build the model)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(columns=([[1, 2]], [0, 1]), batch_size=2), ValueError, "equally long"),
    (dict(columns=(), batch_size=2), ValueError, "columns"),
    (dict(columns=([[1, 2]],), batch_size=0), ValueError, "batch_size"),
    (dict(columns=([[1, 2]],), batch_size=2.0), TypeError, "batch_size"),
    (dict(columns=([[1, 2]],), batch_size=2, buckets=[5, 3]), ValueError, "buckets"),
    (dict(columns=([[1, 2]],), batch_size=2, to_batch="tuple"), TypeError, "to_batch"),
    (dict(columns=(["a sentence"],), batch_size=2), ValueError, "id sequences"),
    (dict(columns=([[1, 2]],), batch_size=2, drop_remainder=True), ValueError, "drop_remainder"),
])
def test_bad_input_names_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        PaddedBatches(**kwargs)


def test_an_index_past_the_end_raises_index_error():
    batches = PaddedBatches(([[1], [2]],), 1)
    with pytest.raises(IndexError):
        batches[2]
